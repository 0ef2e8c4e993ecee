/**
 * `runWithEnv` (the heart of `sigyl run`) in this process, where the caller's own environment
 * can be inspected directly: the env reaches the child, and `process.env` (the CLI's) is the
 * same object with the same contents afterwards. Also: a `--watch` poll that fails leaves the
 * command running and says so once, without a value.
 */
import { createHash } from "node:crypto";
import { describe, expect, it, vi } from "vitest";
import { childEnvironment, type EnvFetch, runWithEnv } from "../../cli/run.ts";
import { PROBE } from "./cli-harness.ts";

const run = Math.random().toString(36).slice(2, 8);
const env = { IN_PROCESS_A: `value a ${run}\n$X "y"`, IN_PROCESS_B: `ünïcode=${run}\\` };
const sha256 = (v: string) => createHash("sha256").update(v, "utf8").digest("hex");

/** How many commands have said they are ready (their handlers in place), by SIGUSR2. */
let readySignals = 0;
process.on("SIGUSR2", () => readySignals++);

async function readyCount(count: number): Promise<void> {
  while (readySignals < count) await new Promise((r) => setTimeout(r, 20));
}

/** The probe exits 99 unless it received exactly these values. */
const PROBE_EXPECT = JSON.stringify(Object.fromEntries(Object.entries(env).map(([n, v]) => [n, sha256(v)])));

/** Runs the probe with `fetchEnv`; its exit code is the outcome. */
async function probeRun(fetchEnv: EnvFetch, extra: Partial<Parameters<typeof runWithEnv>[0]> = {}) {
  const logs: string[] = [];
  const code = await runWithEnv({
    command: process.execPath, args: [PROBE, ...Object.keys(env)],
    fetchEnv, log: (l) => logs.push(l), ...extra,
  });
  return { code, logs };
}

describe("runWithEnv", () => {
  it("hands the env to the child only: this process's environment is untouched", async () => {
    const before = { ...process.env };
    const parentEnv = { PATH: process.env.PATH, SIGYL_DEPLOYMENT_TOKEN: "sgd_kept_out", KEEP: "me" };
    const merged = childEnvironment(parentEnv, env);
    expect(parentEnv).toEqual({ PATH: process.env.PATH, SIGYL_DEPLOYMENT_TOKEN: "sgd_kept_out", KEEP: "me" });
    expect(merged).toMatchObject({ ...env, KEEP: "me" });
    expect(merged).not.toHaveProperty("SIGYL_DEPLOYMENT_TOKEN");

    const { code } = await probeRun(async () => ({ env, etag: '"1"' }), { parentEnv: { ...process.env, PROBE_EXIT: "5", PROBE_EXPECT } });
    expect(code).toBe(5);
    // The probe does tell a wrong value apart.
    const wrong = await probeRun(async () => ({ env: { ...env, IN_PROCESS_B: "other" }, etag: '"1"' }), {
      parentEnv: { ...process.env, PROBE_EXIT: "5", PROBE_EXPECT },
    });
    expect(wrong.code).toBe(99);
    expect(process.env).toEqual(before);
    for (const value of Object.values(env)) expect(Object.values(process.env)).not.toContain(value);
  });

  it("keeps the command running when a --watch check fails, and says so once without a value", async () => {
    let calls = 0;
    const fetchEnv: EnvFetch = async (etag) => {
      calls++;
      if (!etag) return { env, etag: '"1"' };
      throw new TypeError("fetch failed");
    };
    const started = Date.now();
    readySignals = 0;
    const pending = probeRun(fetchEnv, {
      watch: { intervalMs: 50, graceMs: 1000 },
      parentEnv: { ...process.env, PROBE_MODE: "wait", PROBE_EXIT: "9", PROBE_EXPECT, PROBE_READY_SIGNAL: "SIGUSR2" },
    });
    // Let several checks fail, then end the command as an operator would.
    await readyCount(1);
    await vi.waitFor(() => expect(calls).toBeGreaterThan(3), { timeout: 15_000, interval: 20 });
    process.kill(process.pid, "SIGTERM");
    const { code, logs } = await pending;
    expect(code).toBe(9);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(logs).toEqual([`sigyl: watching the env failed (fetch failed); ${process.execPath} keeps running`]);
    for (const value of Object.values(env)) expect(logs.join("\n")).not.toContain(value);
  });

  it("on a changed env, kills a command that ignores SIGTERM once the grace period is over, and starts it with the new env", async () => {
    const next = { IN_PROCESS_A: `second a ${run}`, IN_PROCESS_B: `second b ${run}` };
    let pollsWithNewEtag = 0;
    const fetchEnv: EnvFetch = async (etag) => {
      if (etag === '"2"') pollsWithNewEtag++;
      if (!etag) return { env, etag: '"1"' };
      // The change shows once the first command can shrug off the SIGTERM it brings.
      if (etag === '"1"') return readySignals >= 1 ? { env: next, etag: '"2"' } : null;
      return null; // 304 from then on
    };
    const expectNext = JSON.stringify(Object.fromEntries(Object.entries(next).map(([n, v]) => [n, sha256(v)])));
    const started = Date.now();
    const logs: string[] = [];
    readySignals = 0;
    const pending = runWithEnv({
      command: process.execPath, args: [PROBE, ...Object.keys(env)],
      fetchEnv, log: (l) => logs.push(l),
      watch: { intervalMs: 100, graceMs: 700 },
      // The first command ignores SIGTERM; the second is told to expect the new values (99 if not).
      parentEnv: {
        ...process.env, PROBE_MODE: "wait", PROBE_IGNORE: "SIGTERM", PROBE_EXPECT: expectNext, PROBE_READY_SIGNAL: "SIGUSR2",
      },
    });
    await readyCount(2);
    expect(logs).toEqual([`sigyl: the deployment's env changed; restarting ${process.execPath}`]);
    // Polling pauses while the command restarts; once it resumes, it asks with the new fingerprint.
    while (pollsWithNewEtag === 0) await new Promise((r) => setTimeout(r, 20));
    process.kill(process.pid, "SIGHUP");
    // The second command got the new values (else its exit would be 99) and ends on SIGHUP with 0;
    // without the SIGKILL the first would still run, and exit 99 on SIGHUP.
    expect(await pending).toBe(0);
    expect(pollsWithNewEtag).toBeGreaterThan(0);
    expect(Date.now() - started).toBeGreaterThan(700);
  });
});
