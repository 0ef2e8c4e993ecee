/** Child processes for end-to-end tests: the real Deno server and scripts, as a user runs them. */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { ROOT } from "../../scripts/lib/local.ts";
import { eventually } from "../../scripts/lib/poll.ts";

export const DENO = join(ROOT, "node_modules", ".bin", "deno");

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface Started {
  child: ChildProcess;
  output: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

export function startDeno(script: string, args: string[], env: Record<string, string | undefined>): Started {
  const child = spawn(DENO, ["run", "--allow-all", script, ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, output: () => out, stderr: () => err, exited };
}

export async function runDeno(script: string, args: string[], env: Record<string, string | undefined>) {
  const p = startDeno(script, args, env);
  const code = await p.exited;
  return { code, stdout: p.output(), stderr: p.stderr() };
}

/** `npm start` on a free port, once its health route answers 200. */
export async function startServer(env: Record<string, string | undefined>) {
  const port = await freePort();
  const server = startDeno("scripts/serve.ts", [], { PORT: String(port), ...env });
  const base = `http://127.0.0.1:${port}/functions/v1/secrets`;
  const started = Date.now();
  const health = await eventually(async () => {
    if (server.child.exitCode !== null) throw new Error(`server exited: ${server.stderr()}`);
    const res = await fetch(`${base}/health`);
    return res.status === 200 ? await res.json() : undefined;
  }, 110_000); // under the test timeout, so a slow boot fails on its measured time, not a timeout
  return { server, port, base, health, bootMs: Date.now() - started };
}

/** Stops a started process as Ctrl-C (or `signal`) would; resolves to its exit code. */
export async function stopProcess(process: Started, signal: NodeJS.Signals = "SIGINT") {
  process.child.kill(signal);
  return await process.exited;
}

export { eventually };
