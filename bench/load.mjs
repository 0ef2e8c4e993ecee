// The benchmark's load generator: autocannon under Node, driven by bench/run.ts over stdin
// and stdout (one JSON object per line). Plain JavaScript run by Node rather than TypeScript
// under Deno: against the same trivial Deno server, autocannon under Deno's npm compatibility
// layer delivered about 20% fewer requests per second than under Node, and the response
// times it reported were not credible (a 0.06 ms median at 16 connections and 18,000 req/s,
// where Little's law requires about 0.9 ms). The driver stays TypeScript under Deno because
// it reuses the project's own migration, token and envelope code.
//
// Requests:  {"id": 1, "op": "run", "spec": {...}}   → {"id": 1, "ok": true, "result": {...}}
//            {"id": 2, "op": "rounds", "specs": [...], "rounds": 3}  → one result per spec, the
//                                                    specs run in turn, round after round
//            {"id": 3, "op": "stop", "target": 1}    ends run 1 early (its result follows)
//            {"op": "exit"}
// spec: url (base), connections, duration (s) or amount, warmup (s), method, headers, body,
// overallRate (requests per second across all connections; default: as fast as answered),
// paths (round robin over all connections), bodyTemplate ("{{n}}" → a counter unique in this
// process), groupSize (with one connection: percentiles of the sum of each run of groupSize
// consecutive response times, i.e. the wall time of that many sequential requests).
// Latencies are kept exactly (milliseconds, from the 'response' event) because autocannon's
// own histogram has a 1 ms resolution, too coarse for sub-millisecond routes.
import { createRequire } from "node:module";
import { createInterface } from "node:readline";

const require = createRequire(import.meta.url);
const autocannon = require("autocannon");
const { version: autocannonVersion } = require("autocannon/package.json");

let counter = 0;
const running = new Map();

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

function summarize(values) {
  const sorted = Float64Array.from(values).sort();
  const sum = values.reduce((a, b) => a + b, 0);
  return {
    count: values.length,
    mean: values.length ? sum / values.length : null,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : null,
  };
}

function options(spec) {
  const paths = spec.paths ?? null;
  let next = 0;
  const request = {
    method: spec.method ?? "GET",
    setupRequest(req) {
      if (paths) req.path = paths[next++ % paths.length];
      if (spec.bodyTemplate) req.body = spec.bodyTemplate.replaceAll("{{n}}", String(++counter));
      return req;
    },
  };
  return {
    url: spec.url,
    connections: spec.connections ?? 1,
    duration: spec.duration ?? 10,
    amount: spec.amount,
    timeout: spec.timeout ?? 10,
    method: spec.method ?? "GET",
    headers: spec.headers ?? {},
    body: spec.body,
    requests: [request],
    warmup: spec.warmup ? { connections: spec.connections ?? 1, duration: spec.warmup } : undefined,
    overallRate: spec.overallRate,
  };
}

/** Totals of one spec over one or more autocannon runs. */
function tally() {
  return { latencies: [], statusCodes: {}, durationS: 0, non2xx: 0, errors: 0, timeouts: 0, mismatches: 0, connections: 0 };
}

async function once(id, spec, t) {
  const instance = autocannon(options(spec));
  running.set(id, instance);
  instance.on("response", (_client, statusCode, _bytes, responseTime) => {
    t.statusCodes[statusCode] = (t.statusCodes[statusCode] ?? 0) + 1;
    if (statusCode >= 200 && statusCode < 300) t.latencies.push(responseTime);
  });
  const result = await instance;
  running.delete(id);
  t.connections = result.connections;
  t.durationS += result.duration;
  t.non2xx += result.non2xx ?? 0;
  t.errors += result.errors ?? 0;
  t.timeouts += result.timeouts ?? 0;
  t.mismatches += result.mismatches ?? 0;
}

function report(spec, t) {
  const latencies = t.latencies;
  const ok2xx = latencies.length;
  const out = {
    connections: t.connections,
    durationS: t.durationS,
    requests: ok2xx + t.non2xx,
    ok: ok2xx,
    rps: t.durationS > 0 ? ok2xx / t.durationS : 0,
    latency: summarize(latencies),
    errors: t.errors + t.non2xx + t.mismatches,
    connectionErrors: t.errors,
    timeouts: t.timeouts,
    non2xx: t.non2xx,
    statusCodes: t.statusCodes,
  };
  if (spec.groupSize && latencies.length >= spec.groupSize) {
    const sums = [];
    for (let i = 0; i + spec.groupSize <= latencies.length; i += spec.groupSize) {
      let s = 0;
      for (let j = i; j < i + spec.groupSize; j++) s += latencies[j];
      sums.push(s);
    }
    out.groups = summarize(sums);
  }
  return out;
}

async function run(id, spec) {
  const t = tally();
  await once(id, spec, t);
  return report(spec, t);
}

/**
 * Interleaved runs: every spec for `duration` seconds, in turn, `rounds` times (warmup only in
 * the first round), so a machine that slows down mid-run slows every spec alike.
 */
async function runRounds(id, specs, rounds) {
  const tallies = specs.map(() => tally());
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < specs.length; i++) {
      await once(id, r === 0 ? specs[i] : { ...specs[i], warmup: undefined }, tallies[i]);
    }
  }
  return specs.map((spec, i) => report(spec, tallies[i]));
}

function reply(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

reply({ ready: true, node: process.version, autocannon: autocannonVersion });

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    return;
  }
  if (msg.op === "exit") {
    // A run still in its warmup has no stop() yet (autocannon adds it when the measured part starts).
    for (const instance of running.values()) instance.stop?.();
    process.exit(0);
  }
  if (msg.op === "stop") {
    running.get(msg.target)?.stop?.();
    reply({ id: msg.id, ok: true });
    return;
  }
  if (msg.op === "rounds") {
    runRounds(msg.id, msg.specs, msg.rounds).then(
      (result) => reply({ id: msg.id, ok: true, result }),
      (err) => reply({ id: msg.id, ok: false, error: String(err?.message ?? err) }),
    );
    return;
  }
  if (msg.op === "run") {
    run(msg.id, msg.spec).then(
      (result) => reply({ id: msg.id, ok: true, result }),
      (err) => reply({ id: msg.id, ok: false, error: String(err?.message ?? err) }),
    );
  }
});
// The driver closing our stdin (it exited or crashed) ends this process too.
lines.on("close", () => process.exit(0));
