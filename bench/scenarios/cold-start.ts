/**
 * Cold start, as a new hosted instance meets it: from spawning the process to its first
 * successful answer. The service is the edge function's own entry (functions/secrets/index.ts)
 * with only the variables the hosted runtime hands it (SUPABASE_DB_URL as `sigyl_api`,
 * SUPABASE_JWKS), timed to its first 200 on a value read; the floor is bench/floor-server.ts,
 * timed to its first `select 1`. Runs alternate, so drift hits both alike; the report keeps the
 * median of each.
 */
import { join } from "node:path";
import { apiRoleUrl, ROOT } from "../../scripts/lib/local.ts";
import { freePort, sampleRss } from "../lib/children.ts";
import { auth, type BenchContext } from "../lib/context.ts";
import { THROUGHPUT_CONNECTIONS } from "../lib/options.ts";

export interface ColdStart {
  /** The function entry's peak resident memory (MB) under the R load, after its last cold start. */
  rssUnderReadMb: number | null;
  /** The bare floor server's peak resident memory (MB) under its B2j load, for comparison. */
  floorRssUnderLoadMb: number | null;
  /** Milliseconds from spawn to the first successful answer, one per run. */
  serviceMs: number[];
  floorMs: number[];
  serviceMedianMs: number;
  floorMedianMs: number;
}

const POLL_MS = 5;
const GIVE_UP_MS = 60_000;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Spawns `script` with exactly `env` and times it to the first 200 of `probe`; then, before the
 * process is stopped, hands it to `serving` (origin and pid) if given.
 */
async function timeToFirstAnswer(
  script: string, env: Record<string, string>, probe: (origin: string) => Request,
  serving?: (origin: string, pid: number) => Promise<void>,
): Promise<number> {
  const port = freePort();
  const origin = `http://127.0.0.1:${port}`;
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    // The project's config (node_modules, as the other servers of the run): the function's own
    // deno.json would have Deno fetch its npm packages, which is the deploy harness's test.
    args: ["run", "--allow-all", "--config", join(ROOT, "deno.json"), join(ROOT, script)],
    cwd: ROOT,
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "", HOME: Deno.env.get("HOME") ?? "", NO_COLOR: "1", PORT: String(port), DENO_SERVE_ADDRESS: `tcp:127.0.0.1:${port}`, ...env },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  let exited: Deno.CommandStatus | null = null;
  const status = child.status.then((s) => (exited = s));
  const reading = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) stderr = (stderr + chunk).slice(-4000);
  })();
  try {
    while (performance.now() - started < GIVE_UP_MS) {
      if (exited) throw new Error(`${script} exited with ${(exited as Deno.CommandStatus).code}: ${stderr}`);
      try {
        const res = await fetch(probe(origin));
        await res.body?.cancel();
        if (res.status === 200) {
          const ms = performance.now() - started;
          await serving?.(origin, child.pid);
          return ms;
        }
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    throw new Error(`${script} gave no successful answer within ${GIVE_UP_MS} ms: ${stderr}`);
  } finally {
    if (!exited) child.kill("SIGKILL");
    await status;
    await reading.catch(() => {});
  }
}

/**
 * A freshly started server under 16 connections of `path` with `token`, its resident memory
 * sampled throughout; the peak, in MB. Hosted functions get 256 MB. Measured for the function
 * entry (as hosted runs it: one pool, nothing of the benchmark) under the R load, and for the
 * bare floor server under its B2j load, so the report shows what the stack alone takes.
 */
async function memoryUnderLoad(
  ctx: BenchContext, origin: string, pid: number, row: { key: string; label: string; path: string },
): Promise<number | null> {
  ctx.log(`memory: ${row.label} (16 connections)`);
  const peak = sampleRss(pid);
  const load = await ctx.loader.run({
    url: origin, connections: THROUGHPUT_CONNECTIONS, duration: ctx.mode.duration, warmup: ctx.mode.warmup,
    headers: auth(ctx.users.reader.token), paths: [row.path],
  });
  const mb = peak.stop();
  ctx.results.raw[`${row.key}Load`] = load;
  ctx.results.add({
    key: row.key, label: `${row.label}, RSS peak ${mb === null ? "–" : `${mb.toFixed(0)} MB`}`, connections: THROUGHPUT_CONNECTIONS,
    rps: load.rps, p50: load.latency.p50, p99: load.latency.p99, errors: load.errors, requests: load.requests,
  });
  return mb;
}

export async function measureColdStart(ctx: BenchContext, readerSecret: string, runs: number): Promise<ColdStart> {
  ctx.log(`cold start: the function's entry and the floor server, ${runs} runs each, alternating`);
  const ownerUrl = ctx.databaseUrl;
  const jwks = ctx.jwks;
  const token = ctx.users.reader.token;
  const serviceMs: number[] = [];
  let rssUnderReadMb: number | null = null;
  let floorRssUnderLoadMb: number | null = null;
  const floorMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const last = i === runs - 1;
    floorMs.push(await timeToFirstAnswer("bench/floor-server.ts", { DATABASE_URL: ownerUrl, SUPABASE_JWKS: jwks }, (o) =>
      new Request(`${o}/b1`),
      last ? async (origin, pid) => void (floorRssUnderLoadMb = await memoryUnderLoad(ctx, origin, pid, {
        key: "memoryFloor", label: "B2j on the bare floor server", path: `/b2j/${readerSecret}` })) : undefined));
    serviceMs.push(await timeToFirstAnswer("functions/secrets/index.ts", { SUPABASE_DB_URL: apiRoleUrl(ownerUrl), SUPABASE_JWKS: jwks }, (o) =>
      new Request(`${o}/secrets/${readerSecret}/value`, { headers: { authorization: `Bearer ${token}` } }),
      last ? async (origin, pid) => void (rssUnderReadMb = await memoryUnderLoad(ctx, origin, pid, {
        key: "memory", label: "R on the function entry", path: `/secrets/${readerSecret}/value` })) : undefined));
  }
  const result = {
    serviceMs, floorMs, serviceMedianMs: median(serviceMs), floorMedianMs: median(floorMs), rssUnderReadMb, floorRssUnderLoadMb,
  };
  ctx.results.raw.coldStart = result;
  // p50 is the median run, p99 the slowest (few runs: no finer percentile means anything).
  ctx.results.add({
    key: "coldStartService", label: `cold start: spawn → first value read, function entry (${runs} runs)`, connections: 1,
    rps: null, p50: result.serviceMedianMs, p99: Math.max(...serviceMs), errors: 0, requests: runs,
  });
  ctx.results.add({
    key: "coldStartFloor", label: `cold start: spawn → first select 1, bare floor (${runs} runs)`, connections: 1,
    rps: null, p50: result.floorMedianMs, p99: Math.max(...floorMs), errors: 0, requests: runs,
  });
  return result;
}
