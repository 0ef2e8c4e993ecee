/**
 * The two child processes of a benchmark run: the bench server (Deno, bench/server.ts) and
 * the load generator (Node, bench/load.mjs). Both listen or connect on 127.0.0.1 only, and
 * both are stopped by `close()` (the loader also exits when its stdin closes).
 */
import { join } from "node:path";
import { ROOT } from "../../scripts/lib/local.ts";
import { eventually } from "../../scripts/lib/poll.ts";
import { rssOf } from "../../scripts/lib/soak-server.ts";

/** Keeps the last `limit` characters of a stream, for the error message of a crash. */
function tail(stream: ReadableStream<Uint8Array>, limit = 20_000) {
  let text = "";
  const done = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      text = (text + decoder.decode(chunk, { stream: true })).slice(-limit);
    }
  })().catch(() => {});
  return { text: () => text, done };
}

/** Samples a process's resident memory every 100 ms until `stop()`, which returns the peak (MB). */
export function sampleRss(pid: number): { stop(): number | null } {
  let peak: number | null = null;
  const sample = () => {
    const mb = rssOf(pid);
    if (mb !== null) peak = Math.max(peak ?? 0, mb);
  };
  sample();
  const timer = setInterval(sample, 100);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return peak;
    },
  };
}

export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

export interface BenchServer {
  base: string;
  pid: number;
  output(): string;
  close(): Promise<void>;
}

/** What `startServer` runs: a script under bench/, and the path that answers 200 once it serves. */
export interface ServerKind {
  script: string;
  /** The base URL the scenarios append paths to, given the origin. */
  base: (origin: string) => string;
  ready: (base: string) => string;
}

/** The service: the real function plus the bench-only routes. */
export const SERVICE: ServerKind = {
  script: "server.ts", base: (origin) => `${origin}/functions/v1/secrets`, ready: (base) => `${base}/health`,
};
/** The bare floors: the stack without the project's code. */
export const FLOOR: ServerKind = { script: "floor-server.ts", base: (origin) => origin, ready: (base) => `${base}/b1` };

/** Starts a bench server on a free loopback port and waits until it answers 200. */
export async function startServer(env: Record<string, string>, kind: ServerKind = SERVICE): Promise<BenchServer> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", join(ROOT, "bench", kind.script)],
    cwd: ROOT,
    env: { ...env, HOST: "127.0.0.1", PORT: String(port), SIGYL_BENCH: "1", NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = tail(child.stdout);
  const err = tail(child.stderr);
  let exited: Deno.CommandStatus | null = null;
  const status = child.status.then((s) => (exited = s));
  const base = kind.base(`http://127.0.0.1:${port}`);
  const output = () => `${out.text()}${err.text()}`;
  try {
    await eventually(async () => {
      if (exited) throw new Error(`it exited with ${exited.code}: ${output().slice(-2000)}`);
      const res = await fetch(kind.ready(base));
      await res.body?.cancel();
      return res.status === 200 ? true : undefined;
    }, 90_000, 200, `bench/${kind.script} did not answer ${kind.ready(base)}`);
  } catch (error) {
    if (!exited) child.kill("SIGKILL");
    await status;
    throw error;
  }
  return {
    base,
    pid: child.pid,
    output,
    async close() {
      if (!exited) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => !exited && child.kill("SIGKILL"), 10_000);
        await status;
        clearTimeout(timer);
      }
      await Promise.all([out.done, err.done]);
    },
  };
}

export interface LoadSpec {
  /** Base URL; `paths` (round robin) are appended by autocannon as request paths. */
  url: string;
  connections: number;
  duration?: number;
  amount?: number;
  warmup?: number;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  bodyTemplate?: string;
  paths?: string[];
  groupSize?: number;
  /** Requests per second across all connections (a steady background load); default: flat out. */
  overallRate?: number;
}

export interface Summary {
  count: number;
  mean: number | null;
  p50: number | null;
  p99: number | null;
  max: number | null;
}

export interface LoadResult {
  connections: number;
  durationS: number;
  requests: number;
  ok: number;
  rps: number;
  latency: Summary;
  errors: number;
  connectionErrors: number;
  timeouts: number;
  non2xx: number;
  statusCodes: Record<string, number>;
  groups?: Summary;
}

export interface Loader {
  node: string;
  autocannon: string;
  /** Starts a run; `result` settles when it ends (duration, amount, or `stop()`). */
  start(spec: LoadSpec): { result: Promise<LoadResult>; stop(): void };
  run(spec: LoadSpec): Promise<LoadResult>;
  /** Each spec for its duration in turn, `rounds` times over; one result per spec. */
  rounds(specs: LoadSpec[], rounds: number): Promise<LoadResult[]>;
  close(): Promise<void>;
}

/** Calls `onMessage` with each line of `stream` that parses as JSON; other lines are skipped. */
// deno-lint-ignore no-explicit-any
async function readJsonLines(stream: ReadableStream<Uint8Array>, onMessage: (msg: any) => void) {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of stream) {
    buffer += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      let msg;
      try {
        msg = JSON.parse(line);
      } catch {
        continue;
      }
      onMessage(msg);
    }
  }
}

/** The loader's requests awaiting their answer, by id. */
function createRequests(send: (msg: unknown) => Promise<void>) {
  // deno-lint-ignore no-explicit-any
  const waiting = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  return {
    nextId: () => nextId++,
    /** Sends `msg` under a new id; `result` settles with the answer to that id. */
    send<T>(msg: Record<string, unknown>) {
      const id = nextId++;
      const result = new Promise<T>((resolve, reject) => waiting.set(id, { resolve, reject }));
      send({ id, ...msg });
      return { id, result };
    },
    // deno-lint-ignore no-explicit-any
    answer(msg: any) {
      const waiter = waiting.get(msg.id);
      if (!waiter) return;
      waiting.delete(msg.id);
      if (msg.ok) waiter.resolve(msg.result);
      else waiter.reject(new Error(`load generator: ${msg.error}`));
    },
    failAll(error: Error) {
      for (const w of waiting.values()) w.reject(error);
      waiting.clear();
    },
  };
}

/** Starts bench/load.mjs under Node and speaks its line protocol. */
export async function startLoader(): Promise<Loader> {
  const child = new Deno.Command("node", { args: [join(ROOT, "bench", "load.mjs")], cwd: ROOT, stdin: "piped", stdout: "piped", stderr: "piped" })
    .spawn();
  const err = tail(child.stderr);
  const writer = child.stdin.getWriter();
  const encoder = new TextEncoder();
  const send = (msg: unknown) => writer.write(encoder.encode(JSON.stringify(msg) + "\n"));
  const requests = createRequests(send);
  let ready: (info: { node: string; autocannon: string }) => void = () => {};
  const readyInfo = new Promise<{ node: string; autocannon: string }>((r) => (ready = r));
  let exited = false;

  const reading = readJsonLines(child.stdout, (msg) => {
    if (msg.ready) ready({ node: msg.node, autocannon: msg.autocannon });
    requests.answer(msg);
  });
  const status = child.status.then((s) => {
    exited = true;
    requests.failAll(new Error(`the load generator exited (${s.code}): ${err.text().slice(-2000)}`));
    return s;
  });

  const info = await Promise.race([
    readyInfo,
    status.then((s) => {
      throw new Error(`the load generator did not start (${s.code}): ${err.text().slice(-2000)}`);
    }),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the load generator did not start in 30 s")), 30_000)),
  ]);

  function start(spec: LoadSpec) {
    const { id, result } = requests.send<LoadResult>({ op: "run", spec });
    return {
      result,
      stop: () => {
        send({ id: requests.nextId(), op: "stop", target: id });
      },
    };
  }

  return {
    ...info,
    start,
    run: (spec) => start(spec).result,
    rounds: (specs, rounds) => requests.send<LoadResult[]>({ op: "rounds", specs, rounds }).result,
    async close() {
      if (!exited) {
        await send({ op: "exit" }).catch(() => {});
        await writer.close().catch(() => {});
        const timer = setTimeout(() => !exited && child.kill("SIGKILL"), 5_000);
        await status;
        clearTimeout(timer);
      }
      await reading.catch(() => {});
      await err.done;
    },
  };
}
