/**
 * Cold start, as a new hosted instance meets it: from spawning the process to its first
 * successful answer. The service is the edge function's own entry (functions/secrets/index.ts)
 * with only the variables the hosted runtime hands it (SUPABASE_DB_URL as `sigyl_api`,
 * SUPABASE_JWKS), timed to its first 200 on a value read; the floor is bench/floor-server.ts,
 * timed to its first `select 1`. Runs alternate, so drift hits both alike; the report keeps the
 * median of each.
 *
 * Both run with the heap a hosted function gets. The edge runtime creates each function's
 * isolate with a 256 MiB heap limit (supabase/edge-runtime: `heap_limits(0, memory_limit)`,
 * 256 MiB by default); `--max-heap-size=256` gives a Deno process the same limit, V8 deriving
 * the young and old generations from it the same way (GenerationSizesFromHeapSize). Deno's
 * default heap is sized for this machine's RAM, and V8 then grows the young generation far more
 * eagerly; the memory rows measure both, once each, so the difference stays visible.
 */
import { join } from "node:path";
import { apiRoleUrl, ROOT } from "../../scripts/lib/local.ts";
import { freePort, sampleRss } from "../lib/children.ts";
import { auth, type BenchContext } from "../lib/context.ts";
import { THROUGHPUT_CONNECTIONS } from "../lib/options.ts";

/** The heap a hosted function's isolate gets (see above). */
export const HOSTED_HEAP_FLAGS = ["--v8-flags=--max-heap-size=256"];

export interface ColdStart {
  /** The function entry's peak resident memory (MB) under the R load, after its last cold start, on the hosted heap. */
  rssUnderReadMb: number | null;
  /** The bare floor server's peak resident memory (MB) under its B2j load, on the hosted heap. */
  floorRssUnderLoadMb: number | null;
  /** The same two on Deno's default heap (sized for the machine), one extra start each. */
  rssDefaultHeapMb: number | null;
  floorRssDefaultHeapMb: number | null;
  /** Milliseconds from spawn to the first successful answer, one per run (hosted heap). */
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
  script: string, flags: string[], env: Record<string, string>, probe: (origin: string) => Request,
  serving?: (origin: string, pid: number) => Promise<void>,
): Promise<number> {
  const port = freePort();
  const origin = `http://127.0.0.1:${port}`;
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    // The project's config (node_modules, as the other servers of the run): the function's own
    // deno.json would have Deno fetch its npm packages, which is the deploy harness's test.
    args: ["run", "--allow-all", ...flags, "--config", join(ROOT, "deno.json"), join(ROOT, script)],
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

type Heap = "hosted" | "default";

/** A server the cold start measures: what it runs, with which variables, what answers once it serves. */
interface Server {
  script: string;
  env: Record<string, string>;
  probe: (origin: string) => Request;
  memory: { key: string; label: string; path: string };
}
const HEAP_LABEL: Record<Heap, string> = { hosted: "hosted heap", default: "Deno's default heap" };

export async function measureColdStart(ctx: BenchContext, readerSecret: string, runs: number): Promise<ColdStart> {
  ctx.log(`cold start: the function's entry and the floor server, ${runs} runs each, alternating`);
  const token = ctx.users.reader.token;
  const servers: Record<"floor" | "service", Server> = {
    floor: {
      script: "bench/floor-server.ts", env: { DATABASE_URL: ctx.databaseUrl, SUPABASE_JWKS: ctx.jwks },
      probe: (o: string) => new Request(`${o}/b1`),
      memory: { key: "memoryFloor", label: "B2j on the bare floor server", path: `/b2j/${readerSecret}` },
    },
    service: {
      script: "functions/secrets/index.ts", env: { SUPABASE_DB_URL: apiRoleUrl(ctx.databaseUrl), SUPABASE_JWKS: ctx.jwks },
      probe: (o: string) => new Request(`${o}/secrets/${readerSecret}/value`, { headers: { authorization: `Bearer ${token}` } }),
      memory: { key: "memory", label: "R on the function entry", path: `/secrets/${readerSecret}/value` },
    },
  };
  /** One start of `server` on `heap`, timed; with `memory`, its RSS under load before it stops. */
  const spawn = async (server: Server, heap: Heap, memory: boolean) => {
    let rss: number | null = null;
    const suffix = heap === "hosted" ? "" : "DefaultHeap";
    const ms = await timeToFirstAnswer(
      server.script, heap === "hosted" ? HOSTED_HEAP_FLAGS : [], server.env, server.probe,
      memory
        ? async (origin, pid) => void (rss = await memoryUnderLoad(ctx, origin, pid, {
          key: server.memory.key + suffix, label: `${server.memory.label} (${HEAP_LABEL[heap]})`, path: server.memory.path,
        }))
        : undefined,
    );
    return { ms, rss: rss as number | null };
  };

  const serviceMs: number[] = [];
  const floorMs: number[] = [];
  let rssUnderReadMb: number | null = null;
  let floorRssUnderLoadMb: number | null = null;
  for (let i = 0; i < runs; i++) {
    const last = i === runs - 1;
    const floor = await spawn(servers.floor, "hosted", last);
    floorMs.push(floor.ms);
    const service = await spawn(servers.service, "hosted", last);
    serviceMs.push(service.ms);
    if (last) [floorRssUnderLoadMb, rssUnderReadMb] = [floor.rss, service.rss];
  }
  const floorRssDefaultHeapMb = (await spawn(servers.floor, "default", true)).rss;
  const rssDefaultHeapMb = (await spawn(servers.service, "default", true)).rss;

  const result = {
    serviceMs, floorMs, serviceMedianMs: median(serviceMs), floorMedianMs: median(floorMs),
    rssUnderReadMb, floorRssUnderLoadMb, rssDefaultHeapMb, floorRssDefaultHeapMb,
  };
  ctx.results.raw.coldStart = result;
  // p50 is the median run, p99 the slowest (few runs: no finer percentile means anything).
  ctx.results.add({
    key: "coldStartService", label: `cold start: spawn → first value read, function entry (${runs} runs, hosted heap)`, connections: 1,
    rps: null, p50: result.serviceMedianMs, p99: Math.max(...serviceMs), errors: 0, requests: runs,
  });
  ctx.results.add({
    key: "coldStartFloor", label: `cold start: spawn → first select 1, bare floor (${runs} runs, hosted heap)`, connections: 1,
    rps: null, p50: result.floorMedianMs, p99: Math.max(...floorMs), errors: 0, requests: runs,
  });
  return result;
}
