/**
 * `runWithEnv` (the heart of `sigyl run`) in this process, where the caller's own environment
 * can be inspected directly: the env reaches the child, and `process.env` (the CLI's) is the
 * same object with the same contents afterwards. Also: a `--watch` poll that fails leaves the
 * command running and says so once, without a value.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { childEnvironment, type EnvFetch, runWithEnv } from "../../cli/run.ts";
import { PROBE } from "./cli-harness.ts";

const run = Math.random().toString(36).slice(2, 8);
const env = { IN_PROCESS_A: `value a ${run}\n$X "y"`, IN_PROCESS_B: `ünïcode=${run}\\` };
const sha256 = (v: string) => createHash("sha256").update(v, "utf8").digest("hex");

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
    const pending = probeRun(fetchEnv, {
      watch: { intervalMs: 50, graceMs: 1000 },
      parentEnv: { ...process.env, PROBE_MODE: "wait", PROBE_EXIT: "9", PROBE_EXPECT },
    });
    // Let several checks fail, then end the command as an operator would.
    await new Promise((r) => setTimeout(r, 800));
    expect(calls).toBeGreaterThan(3);
    process.kill(process.pid, "SIGTERM");
    const { code, logs } = await pending;
    expect(code).toBe(9);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(logs).toEqual([`sigyl: watching the env failed (fetch failed); ${process.execPath} keeps running`]);
    for (const value of Object.values(env)) expect(logs.join("\n")).not.toContain(value);
  });
});
