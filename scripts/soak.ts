/**
 * `npm run soak -- --minutes 10`: the service under steady mixed traffic for a bounded time,
 * watched for errors, latency, memory and audit gaps.
 *
 * It creates a database of its own on the DATABASE_URL server (loopback only), starts
 * `npm start`'s server on it (scripts/serve.ts, as a user runs it), makes 8 users with 4
 * secrets each and a deploying deployment with 2 bindings and its token, then runs
 * `--connections` (default 32) loops of mixed calls until `--minutes` (fractional allowed)
 * have passed: value reads 45%, metadata lists 15%, metadata reads 10%, new versions 15%,
 * deployment env reads 10% (with the deployment token), creates 5%.
 *
 * Per interval (a minute; a third of the run when it is shorter than three minutes) it prints
 * requests, errors, p50/p99, the server's RSS (VmRSS) and the values read by successful reads
 * against the `accessed` audit rows written for those requests (found by request id). It exits
 * 1 when any call failed, when audited reads differ from successful reads (per interval, or over
 * the run: every `accessed` row in its database), or when the server's RSS grew beyond the
 * stated bound from the first interval to the last; 2 when it cannot run. The database, the
 * server and the scratch data dir are removed however the run ends.
 */
import { loadConfig } from "../shared/config.ts";
import { ensureUser, localSigner, readLocalKeys, signUserToken } from "./lib/local.ts";
import {
  formatTable,
  type IntervalRow,
  intervalMs,
  intervalRow,
  parseSoakArgs,
  rssBoundMb,
  type SoakCall,
  verdict,
} from "./lib/soak-report.ts";
import { refuseTarget, type SoakRun, startSoak } from "./lib/soak-server.ts";

const log = (msg: string) => console.error(`soak: ${msg}`);

const options = parseSoakArgs(Deno.args);
if ("error" in options) {
  log(options.error);
  Deno.exit(2);
}
const databaseUrl = Deno.env.get("DATABASE_URL");
const refused = refuseTarget(databaseUrl);
if (refused) {
  log(refused);
  Deno.exit(2);
}

/** Slots of the traffic mix, 20 in all: each loop walks them from its own offset. */
const MIX = [
  ...Array(9).fill("read"), ...Array(3).fill("list"), ...Array(2).fill("get"),
  ...Array(3).fill("put"), ...Array(2).fill("env"), "create",
] as const;
type Op = (typeof MIX)[number];
const USERS = 8;
const SECRETS_PER_USER = 4;
const BINDINGS = 2;

let run: SoakRun | null = null;
const finish = async (code: number) => {
  await run?.cleanup();
  Deno.exit(code);
};
Deno.addSignalListener("SIGINT", () => (log("interrupted; cleaning up"), finish(130)));
Deno.addSignalListener("SIGTERM", () => (log("terminated; cleaning up"), finish(130)));
// The whole run, setup and cleanup included, is bounded.
const limitMs = options.minutes * 60_000 + 180_000;
setTimeout(() => (log(`exceeded its ${Math.round(limitMs / 1000)} s limit; cleaning up`), finish(1)), limitMs);

try {
  run = await startSoak(databaseUrl!, log);
  const { db, server } = run;
  const config = loadConfig({ ...Deno.env.toObject(), SIGYL_DATA_DIR: run.dataDir });
  const keys = await readLocalKeys(config);
  if (!keys) throw new Error("the server made no local keys");
  const signer = await localSigner(keys);
  const expiresInSeconds = Math.ceil(options.minutes * 60) + 900;
  const issuer = `${server.origin}/auth/v1`;

  async function api(method: string, path: string, token: string, body?: unknown) {
    const res = await fetch(`${server.base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 200)}`);
    return JSON.parse(text).data;
  }
  const randomValue = () => `soak-${crypto.randomUUID()}`;

  log(`fixtures: ${USERS} users, ${USERS * SECRETS_PER_USER} secrets, a deployment with ${BINDINGS} bindings`);
  const users: { id: string; email: string; token: string; secrets: string[] }[] = [];
  for (let u = 0; u < USERS; u++) {
    const user = await ensureUser(db, `soak-${run.tag}-${u}@soak.sigyl.dev`);
    const token = await signUserToken(signer, user, { expiresInSeconds, issuer });
    const secrets: string[] = [];
    for (let s = 0; s < SECRETS_PER_USER; s++) {
      secrets.push((await api("POST", "", token, { name: `SOAK_${u}_${s}`, value: randomValue(), secretType: "api_key" })).id);
    }
    users.push({ ...user, token, secrets });
  }
  const owner = users[0];
  const envNames = Array.from({ length: BINDINGS }, (_, i) => `SOAK_ENV_${i}`);
  const [{ id: deploymentId }] = await db.query<{ id: string }>(
    `insert into public.deployments (user_id, name, required_env)
     values ($1::uuid, 'soak', array(select jsonb_array_elements_text($2::text::jsonb))) returning id`,
    [owner.id, JSON.stringify(envNames)],
  );
  await api("PUT", `/deployments/${deploymentId}/secrets`, owner.token, {
    bindings: envNames.map((envName, i) => ({ envName, secretId: owner.secrets[i] })),
  });
  await db.query(`update public.deployments set status = 'deploying' where id = $1::uuid`, [deploymentId]);
  const { token: deploymentToken } = await api("POST", `/deployments/${deploymentId}/tokens`, owner.token, {
    ttlSeconds: Math.min(86_400, Math.max(60, expiresInSeconds)),
  });

  const totalMs = options.minutes * 60_000;
  const stepMs = intervalMs(options.minutes);
  const intervals = Math.max(1, Math.round(totalMs / stepMs));
  const cpus = navigator.hardwareConcurrency;
  const memory = Deno.systemMemoryInfo();
  console.log(`soak: ${options.minutes} min, ${options.connections} connections, ${intervals} intervals of ${(stepMs / 1000).toFixed(1)} s`);
  console.log(`soak: machine: ${cpus} CPUs, ${(memory.total / 2 ** 30).toFixed(1)} GiB memory; Deno ${Deno.version.deno}`);
  console.log(`soak: database: ${run.pgVersion.split(" on ")[0]} (own database, loopback); server pid ${server.pid}`);

  const started = performance.now();
  const buckets: (SoakCall & { status?: number })[][] = Array.from({ length: intervals }, () => []);
  const bucketOf = (t: number) => Math.min(intervals - 1, Math.floor((t - started) / stepMs));
  let stopping = false;
  let created = 0;

  async function call(op: Op, worker: number, n: number): Promise<void> {
    const user = users[worker % USERS];
    const secret = user.secrets[n % user.secrets.length];
    let method = "GET";
    let path = `/${secret}/value`;
    let token = user.token;
    let body: unknown;
    if (op === "list") path = "?limit=20";
    else if (op === "get") path = `/${secret}`;
    else if (op === "put") (method = "PUT", body = { value: randomValue() });
    else if (op === "env") (path = `/deployments/${deploymentId}/env`, token = deploymentToken);
    else if (op === "create") (method = "POST", path = "", body = { name: `SOAK_NEW_${worker}_${++created}`, value: randomValue() });
    const t0 = performance.now();
    let status: number | undefined;
    let requestId: string | null = null;
    try {
      const res = await fetch(`${server.base}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      await res.body?.cancel();
      status = res.status;
      requestId = res.headers.get("x-request-id");
    } catch { /* no answer: counted as an error */ }
    const t1 = performance.now();
    const ok = status !== undefined && status >= 200 && status < 300;
    const valuesRead = !ok ? 0 : op === "read" ? 1 : op === "env" ? BINDINGS : 0;
    buckets[bucketOf(t1)].push({ op, ok, ms: t1 - t0, valuesRead, requestId, status });
  }

  async function loop(worker: number) {
    for (let n = worker; !stopping; n++) await call(MIX[n % MIX.length], worker, n);
  }

  /** The `accessed` rows written for the successful reads of an interval, by request id. */
  async function auditedFor(calls: SoakCall[]): Promise<number> {
    const ids = calls.filter((c) => c.ok && c.valuesRead > 0 && c.requestId).map((c) => c.requestId!);
    if (ids.length === 0) return 0;
    const [{ n }] = await db.query<{ n: number }>(
      `select count(*)::int as n from public.secret_access_logs where action = 'accessed' and request_id = any($1::text[])`, [ids]);
    return n;
  }

  const rows: IntervalRow[] = [];
  const workers = Array.from({ length: options.connections }, (_, i) => loop(i));
  const closeInterval = async (i: number, rssMb: number | null) => {
    const calls = buckets[i];
    const row = intervalRow(i + 1, ((i + 1) * stepMs) / 1000, calls, rssMb, await auditedFor(calls));
    rows.push(row);
    log(`interval ${row.index}/${intervals}: ${row.requests} requests, ${row.errors} errors, p99 ${row.p99?.toFixed(1)} ms, RSS ${row.rssMb?.toFixed(1)} MB, ` +
      `${row.readsOk} values read / ${row.audited} audited`);
  };
  for (let i = 0; i < intervals; i++) {
    const end = started + (i + 1) * stepMs;
    await new Promise((r) => setTimeout(r, Math.max(0, end - performance.now())));
    if (server.exited()) throw new Error(`the server exited during the run: ${server.output().slice(-2000)}`);
    const rss = server.rssMb();
    if (i === intervals - 1) {
      stopping = true;
      await Promise.all(workers);
    }
    // Calls still running at a boundary land in the next interval; the last takes the stragglers.
    await closeInterval(i, rss);
  }
  const [{ n: auditedAll }] = await db.query<{ n: number }>(
    `select count(*)::int as n from public.secret_access_logs where action = 'accessed'`);
  const readsOk = rows.reduce((n, r) => n + r.readsOk, 0);

  console.log("");
  console.log(formatTable(rows));
  console.log("");
  const first = rows[0]?.rssMb;
  console.log(`soak: ${rows.reduce((n, r) => n + r.requests, 0)} requests, ${rows.reduce((n, r) => n + r.errors, 0)} errors; ` +
    `${readsOk} values read, ${auditedAll} accessed rows in the database; ` +
    `RSS bound +${first == null ? "?" : rssBoundMb(first).toFixed(1)} MB from the first interval`);
  const problems = verdict(rows, { readsOk, auditedAll });
  if (problems.length) {
    for (const p of problems) console.log(`soak: FAIL: ${p}`);
    await finish(1);
  }
  console.log("soak: PASS");
  await finish(0);
} catch (err) {
  log(`failed: ${(err as Error).message}`);
  await finish(1);
}
