/** Child processes for end-to-end tests: the real Deno server and scripts, as a user runs them. */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { ROOT } from "../../scripts/lib/local.ts";

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

export { eventually } from "../../scripts/lib/poll.ts";
