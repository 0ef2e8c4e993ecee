/**
 * Reading what must never be an argument (a secret's value, a token, a password): piped stdin,
 * or a prompt on the terminal that does not echo. And writing results: stdout for data,
 * stderr for everything a human reads along the way.
 */
import { CliError, EXIT } from "./errors.ts";

/** All of stdin, as UTF-8. */
export async function readStdin(stdin: NodeJS.ReadableStream = process.stdin): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Drops one line ending at the end (`echo` adds one); everything else is kept as sent. */
export const withoutFinalNewline = (text: string) => text.replace(/\r?\n$/, "");

/** Asks on stderr and reads one line from the terminal without echoing it. */
export function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) throw new CliError("no terminal to prompt on; pipe the value on stdin", "usage", EXIT.usage);
  process.stderr.write(question);
  return new Promise((resolve, reject) => {
    let answer = "";
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off("data", onData);
      process.stderr.write("\n");
      if (err) reject(err);
      else resolve(answer);
    };
    const onData = (data: Buffer) => {
      for (const ch of data.toString("utf8")) {
        if (ch === "\r" || ch === "\n" || ch === "\u0004") return done();
        if (ch === "\u0003") return done(new CliError("cancelled", "cancelled", 130));
        if (ch === "\u007f" || ch === "\b") answer = [...answer].slice(0, -1).join("");
        else answer += ch;
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on("data", onData);
  });
}

/**
 * A secret read from piped stdin (one final newline dropped unless `keepFinalNewline`), or
 * from a no-echo prompt when stdin is a terminal. Never empty.
 */
export async function readSecretInput(question: string, options: { keepFinalNewline?: boolean } = {}): Promise<string> {
  const raw = process.stdin.isTTY ? await promptHidden(question) : await readStdin();
  const value = options.keepFinalNewline || process.stdin.isTTY ? raw : withoutFinalNewline(raw);
  if (value === "") throw new CliError("nothing was given (pipe it on stdin, or type it at the prompt)", "usage", EXIT.usage);
  return value;
}

export function print(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}
export function note(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** A plain table: columns padded to their widest cell. */
export function table(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null || c === undefined ? "" : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ")).join("\n") + "\n";
}
