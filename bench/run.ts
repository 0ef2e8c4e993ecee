/**
 * `npm run bench` — the service under load, on a real PostgreSQL (DATABASE_URL), driven over
 * HTTP by autocannon, every scenario in one run so the ratios hold on a noisy machine.
 *
 *   npm run bench                     full run (several minutes: 1,000,000-secret scale step)
 *   npm run bench -- --quick          every scenario scaled down, under a minute (CI)
 *   npm run bench -- --update-readme  also rewrites the generated table in README.md
 *
 * Each run creates its own database `sigyl_bench_<random>` on the DATABASE_URL server (so it
 * needs a role that may create databases and set session_replication_role, e.g. postgres),
 * applies the platform stand-in and the migrations, starts bench/server.ts (the real function
 * plus the floor routes) and bench/load.mjs (autocannon under Node; see that file for why
 * Node), and drops the database at the end, whatever happens. Every request goes to
 * 127.0.0.1; every load run has a duration or a request count, and the whole run a time limit.
 *
 * The driver is TypeScript under Deno because it reuses the project's own code: migrateLocal,
 * the Supabase-shaped tokens, the Vault keyring and the envelope sealing for the rotation's
 * 100,000 real versions. Figures go to stdout (a table) and bench/results/latest.json; a
 * missed target is reported, never an error. Exit status: 0 unless something crashed.
 */
import { join } from "node:path";
import { loadConfig, LOCAL_JWT_SECRET } from "../shared/config.ts";
import type { Database } from "../shared/db/database.ts";
import { createPostgresDatabase } from "../shared/db/postgres.ts";
import { loadKeyringFromVault } from "../shared/crypto/vault-keyring.ts";
import { FIND_SECRET_SQL, LIST_SECRETS_SQL } from "../shared/secrets/secret-dal.ts";
import { migrateLocal, ROOT, signServiceToken, signUserToken } from "../scripts/lib/local.ts";
import { type LoadResult, type LoadSpec, startLoader, startServer } from "./lib/children.ts";
import { b64, createApi, growPopulation, makeUsers, mapLimit, randomValue, sealRealVersions } from "./lib/fixtures.ts";
import { consoleTable, markdownTable, markdownTargets, ratio, type ScenarioRow, type Target, updateReadme } from "./lib/report.ts";
import { sealSeedStyle, SEED_ITERATIONS } from "./seed-design.ts";

const FLAGS = new Set(["--quick", "--update-readme"]);
const unknown = Deno.args.filter((a) => !FLAGS.has(a));
if (unknown.length) {
  console.error(`bench: unknown option ${unknown.join(" ")} (use --quick, --update-readme)`);
  Deno.exit(2);
}
const QUICK = Deno.args.includes("--quick");
const UPDATE_README = Deno.args.includes("--update-readme");

const DATABASE_URL = Deno.env.get("DATABASE_URL");
if (!DATABASE_URL) {
  console.error(
    "bench: needs a real PostgreSQL server (set DATABASE_URL); embedded PGlite serves one connection inside one process, so load figures on it would describe nothing that runs in production.",
  );
  Deno.exit(2);
}

/** Sizes of each mode. Full mode is what the issue asks for; quick keeps every scenario, smaller. */
const MODE = QUICK
  ? {
    name: "quick", duration: 1, warmup: 0.5, rounds: 1, roundDuration: 1, reads100Batches: 5, rotationSecrets: 1_000, versionsPerSecret: 5,
    scale: [{ label: "1,000", users: 100, secrets: 1_000, grants: 200 }, { label: "10,000", users: 1_000, secrets: 10_000, grants: 2_000 }],
    timeLimitS: 300,
  }
  : {
    name: "full", duration: 10, warmup: 2, rounds: 3, roundDuration: 4, reads100Batches: 30, rotationSecrets: 20_000, versionsPerSecret: 5,
    scale: [
      { label: "1,000", users: 100, secrets: 1_000, grants: 200 },
      { label: "1,000,000", users: 100_000, secrets: 1_000_000, grants: 200_000 },
    ],
    timeLimitS: 3600,
  };
const THROUGHPUT_CONNECTIONS = 16;
const ROTATION_READ_CONNECTIONS = 4;
/** The steady read load during the rotation: busy, not saturating (R alone serves several times this). */
const ROTATION_READ_RATE = 200;
const FN = "/functions/v1/secrets";

const t0 = performance.now();
const log = (msg: string) => console.error(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}`);

const config = loadConfig(Deno.env.toObject());
const jwtSecret = config.auth.jwtSecret ?? LOCAL_JWT_SECRET;

// ---------------------------------------------------------------------------------------
// Lifecycle: database, children, cleanup on every exit path.

const admin = createPostgresDatabase(DATABASE_URL, { max: 1 });
const runTag = crypto.randomUUID().replace(/-/g, "").slice(0, 10);
const dbName = `sigyl_bench_${runTag}`;
const benchUrl = (() => {
  const u = new URL(DATABASE_URL);
  u.pathname = `/${dbName}`;
  return u.toString();
})();

let db: Database | null = null;
let server: Awaited<ReturnType<typeof startServer>> | null = null;
let loader: Awaited<ReturnType<typeof startLoader>> | null = null;
let created = false;
let cleaning: Promise<void> | null = null;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await loader?.close().catch(() => {});
    await server?.close().catch(() => {});
    await db?.close().catch(() => {});
    if (created) {
      await admin.query(`drop database if exists ${dbName} with (force)`).catch((err) =>
        console.error(`bench: could not drop ${dbName}: ${(err as Error).message}`)
      );
    }
    await admin.close().catch(() => {});
  })();
  return cleaning;
}

const interrupt = () => {
  console.error("bench: interrupted; cleaning up");
  cleanup().finally(() => Deno.exit(130));
};
Deno.addSignalListener("SIGINT", interrupt);
Deno.addSignalListener("SIGTERM", interrupt);
const watchdog = setTimeout(() => {
  console.error(`bench: exceeded its ${MODE.timeLimitS} s limit; cleaning up`);
  cleanup().finally(() => Deno.exit(1));
}, MODE.timeLimitS * 1000);

// ---------------------------------------------------------------------------------------

const rows: ScenarioRow[] = [];
const raw: Record<string, unknown> = {};

async function machine(pgVersion: string) {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const meminfo = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const kb = Number(meminfo.match(/MemTotal:\s+(\d+)/)?.[1] ?? 0);
  return {
    cpus: navigator.hardwareConcurrency,
    cpuModel: cpuinfo.match(/model name\s*:\s*(.+)/)?.[1]?.trim() ?? "unknown",
    memoryGiB: Math.round((kb / 1024 / 1024) * 10) / 10,
    postgres: pgVersion,
    deno: Deno.version.deno,
    node: loader?.node ?? "",
    autocannon: loader?.autocannon ?? "",
    os: `${Deno.build.os} ${Deno.build.arch}`,
  };
}

async function main() {
  // Database --------------------------------------------------------------------------
  log(`creating database ${dbName}`);
  await admin.query(`create database ${dbName}`);
  created = true;
  db = createPostgresDatabase(benchUrl, { max: 4 });
  const { total } = await migrateLocal(db);
  log(`migrated (${total} migrations)`);
  const [{ version: pgVersion }] = await db.query<{ version: string }>(`select version()`);

  // Children ----------------------------------------------------------------------------
  const seedMaster = b64(crypto.getRandomValues(new Uint8Array(32)));
  const serverEnv: Record<string, string> = { ...Deno.env.toObject(), DATABASE_URL: benchUrl, SIGYL_BENCH_SEED_MASTER: seedMaster };
  delete serverEnv.SUPABASE_DB_URL;
  [server, loader] = await Promise.all([startServer(serverEnv), startLoader()]);
  const origin = new URL(server.base).origin;
  const api = createApi(server.base);
  log(`server on ${server.base}; load generator: Node ${loader.node}, autocannon ${loader.autocannon}`);

  const users = await makeUsers(db, ["reader", "env", "writer", "scale", "sharer", "rotation-0"].map((l) => `${l}-${runTag}@bench.sigyl.dev`));
  const [reader, envOwner, writer, scaleUser, sharer] = users;
  const token = (u: { id: string; email: string }) => signUserToken(jwtSecret, u, { expiresInSeconds: 6 * 3600 });
  const [readerToken, envToken, writerToken, scaleToken, sharerToken] = await Promise.all(users.slice(0, 5).map(token));
  const serviceToken = await signServiceToken(jwtSecret, { expiresInSeconds: 6 * 3600 });
  const auth = (t: string) => ({ authorization: `Bearer ${t}` });

  function record(key: string, label: string, result: LoadResult) {
    raw[key] = result;
    rows.push({
      key, label, connections: result.connections, rps: result.rps, p50: result.latency.p50, p99: result.latency.p99,
      errors: result.errors, requests: result.requests,
    });
    if (result.errors) log(`  ${label}: ${result.errors} errors: ${JSON.stringify(result.statusCodes)}`);
    return result;
  }

  async function measure(key: string, label: string, spec: Omit<LoadSpec, "url">): Promise<LoadResult> {
    log(`${label}`);
    return record(key, label, await loader!.run({ url: origin, duration: MODE.duration, warmup: MODE.warmup, ...spec }));
  }

  /** Scenarios compared by a ratio run interleaved, MODE.rounds times, so drift hits them alike. */
  async function measureTogether(items: { key: string; label: string; spec: Omit<LoadSpec, "url"> }[]): Promise<LoadResult[]> {
    log(`${items.map((i) => i.label).join(" | ")} (${MODE.rounds} round${MODE.rounds > 1 ? "s" : ""} of ${MODE.roundDuration} s each)`);
    const results = await loader!.rounds(
      items.map((i) => ({ url: origin, duration: MODE.roundDuration, warmup: MODE.warmup, ...i.spec })),
      MODE.rounds,
    );
    return items.map((i, k) => record(i.key, i.label, results[k]));
  }

  // 1–4. Floors, the value read, the seed design ------------------------------------------
  const rSecret = await api.createSecret(readerToken, "OPENAI_API_KEY", randomValue());
  const sSecret = await api.createSecret(readerToken, "SEED_STYLE_KEY", randomValue());
  const seedValue = randomValue("seed");
  const seed = await sealSeedStyle(seedMaster, seedValue);
  await db.transaction(async (tx) => {
    // Replaces the envelope blob with a seed-style one (the immutability trigger is off here).
    await tx.query(`set local session_replication_role = replica`);
    await tx.query(
      `update public.secret_versions set iv = decode($2, 'base64'), ciphertext = decode($3, 'base64'), wrapped_dek = decode($4, 'base64')
        where secret_id = $1::uuid and version = 1`,
      [sSecret.id, b64(seed.iv), b64(seed.ciphertext), b64(seed.wrappedDek)],
    );
  });
  const seedCheck = await api.call<{ value: string }>("GET", `/__bench/seed/${sSecret.id}/value`, readerToken);
  if (seedCheck.value !== seedValue) throw new Error("the seed-style read did not return the sealed value");

  const c16 = { connections: THROUGHPUT_CONNECTIONS, headers: auth(readerToken) };
  const [f1, f2, r, s] = await measureTogether([
    { key: "f1", label: "F1 floor: select 1", spec: { ...c16, paths: [`${FN}/__bench/f1`] } },
    { key: "f2", label: "F2 floor: pk select + audit insert", spec: { ...c16, paths: [`${FN}/__bench/f2/${rSecret.id}`] } },
    { key: "r", label: "R value read (RLS, audit, envelope)", spec: { ...c16, paths: [`${FN}/${rSecret.id}/value`] } },
    {
      key: "s", label: `S seed design (PBKDF2 ${SEED_ITERATIONS.toLocaleString("en-US")}/decrypt)`,
      spec: { ...c16, paths: [`${FN}/__bench/seed/${sSecret.id}/value`], warmup: Math.min(MODE.warmup, 1) },
    },
  ]);
  // Its blob is no envelope: the rotation below would count it as a DEK that does not unwrap.
  await db.query(`delete from public.secrets where id = $1::uuid`, [sSecret.id]);

  // 5. Deployment env -------------------------------------------------------------------
  log("env fixtures: 100 secrets, deployments with 1, 10 and 100 bindings");
  const envNames = Array.from({ length: 100 }, (_, i) => `ENV_VAR_${String(i).padStart(3, "0")}`);
  const envSecrets = await mapLimit(envNames, 8, (name) => api.createSecret(envToken, name, randomValue()));
  const envTokens: Record<number, string> = {};
  const deployments: Record<number, string> = {};
  for (const n of [1, 10, 100]) {
    const [{ id }] = await db.query<{ id: string }>(
      `insert into public.deployments (user_id, name, required_env)
       values ($1::uuid, $2, array(select jsonb_array_elements_text($3::text::jsonb))) returning id`,
      [envOwner.id, `bench-env-${n}`, JSON.stringify(envNames.slice(0, n))],
    );
    await api.call("PUT", `/deployments/${id}/secrets`, envToken, {
      bindings: envNames.slice(0, n).map((envName, i) => ({ envName, secretId: envSecrets[i].id })),
    });
    await db.query(`update public.deployments set status = 'deploying' where id = $1::uuid`, [id]);
    envTokens[n] = (await api.call<{ token: string }>("POST", `/deployments/${id}/tokens`, envToken, { ttlSeconds: 6 * 3600 })).token;
    deployments[n] = id;
  }
  const readPaths = envSecrets.map((x) => `${FN}/${x.id}/value`);
  const [env1, env10, env100, read1] = await measureTogether([
    ...[1, 10, 100].map((n) => ({
      key: `env${n}`, label: `env, ${n} binding${n > 1 ? "s" : ""} (1 conn)`,
      spec: { connections: 1, headers: auth(envTokens[n]), paths: [`${FN}/deployments/${deployments[n]}/env`] },
    })),
    { key: "read1", label: "single value read (1 conn)", spec: { connections: 1, headers: auth(envToken), paths: readPaths } },
  ]);
  const env: Record<number, LoadResult> = { 1: env1, 10: env10, 100: env100 };
  log("100 single reads, sequential");
  const reads100 = await loader.run({
    // No warmup (it would run `amount` requests too); the single-read run just warmed this path.
    url: origin, connections: 1, headers: auth(envToken), paths: readPaths, amount: 100 * MODE.reads100Batches, groupSize: 100,
  });
  raw.reads100 = reads100;
  rows.push({
    key: "reads100", label: "100 single reads, one after another (p50/p99 per 100)", connections: 1, unit: "×100/s",
    rps: reads100.groups?.mean ? 1000 / reads100.groups.mean : null, p50: reads100.groups?.p50 ?? null,
    p99: reads100.groups?.p99 ?? null, errors: reads100.errors, requests: reads100.requests,
  });

  // 8. Rotation (before the writes and the scale step, so it re-wraps the sealed versions) --
  const rotationVersions = MODE.rotationSecrets * MODE.versionsPerSecret;
  log(`rotation fixtures: sealing ${rotationVersions.toLocaleString("en-US")} real versions`);
  const rotationUsers = await makeUsers(db, Array.from({ length: 49 }, (_, i) => `rotation-${i + 1}-${runTag}@bench.sigyl.dev`));
  const rotationReader = users[5];
  const owners = [rotationReader.id, ...rotationUsers.map((u) => u.id)];
  const keyring = await loadKeyringFromVault(db);
  const sealStarted = performance.now();
  const rotationIds = await sealRealVersions(db, keyring, {
    owners, secrets: MODE.rotationSecrets, versionsPerSecret: MODE.versionsPerSecret, namePrefix: "ROT",
  }, (done) => done % 20_000 === 0 && log(`  sealed ${done.toLocaleString("en-US")}`));
  const sealSeconds = (performance.now() - sealStarted) / 1000;
  await db.query(`analyze public.secrets, public.secret_versions`);
  const [{ n: dekTotal }] = await db.query<{ n: number }>(`select count(*)::int as n from public.secret_versions`);
  const readerSecrets = rotationIds.filter((_, i) => i % owners.length === 0);
  const rotationToken = await token(rotationReader);

  log(`KEK rotation over ${dekTotal.toLocaleString("en-US")} versions, value reads running (${ROTATION_READ_RATE}/s on ${ROTATION_READ_CONNECTIONS} conns)`);
  const reading = loader.start({
    url: origin, connections: ROTATION_READ_CONNECTIONS, overallRate: ROTATION_READ_RATE, duration: 1800, headers: auth(rotationToken),
    paths: readerSecrets.map((id) => `${FN}/${id}/value`),
  });
  await new Promise((res) => setTimeout(res, 500));
  const rotateStarted = performance.now();
  let rewrapped = 0;
  let calls = 0;
  let rotation: { fromVersion: number; toVersion: number; remaining: number; completed: boolean } | null = null;
  try {
    while (calls < 500) {
      calls++;
      const out = await api.call<{ fromVersion: number; toVersion: number; rewrapped: number; remaining: number; completed: boolean }>(
        "POST", "/admin/keys/rotate", serviceToken, {},
      );
      rewrapped += out.rewrapped;
      rotation = out;
      if (out.completed) break;
    }
  } finally {
    await new Promise((res) => setTimeout(res, 250));
    reading.stop();
  }
  const rotateSeconds = (performance.now() - rotateStarted) / 1000;
  const rotationReads = await reading.result;
  raw.rotationReads = rotationReads;
  const dekRate = rewrapped / rotateSeconds;
  raw.rotation = { ...rotation, rewrapped, calls, seconds: rotateSeconds, dekPerSecond: dekRate, sealedVersions: rotationVersions, sealSeconds };
  rows.push({
    key: "rotation", label: `KEK rotation, ${rewrapped.toLocaleString("en-US")} DEKs re-wrapped`, connections: null,
    rps: dekRate, unit: "DEK/s", p50: null, p99: null, errors: rotation?.completed ? 0 : 1, requests: calls,
  });
  rows.push({
    key: "rotationReads", label: `value reads during the rotation (${ROTATION_READ_RATE}/s offered)`, connections: ROTATION_READ_CONNECTIONS,
    rps: rotationReads.rps, p50: rotationReads.latency.p50, p99: rotationReads.latency.p99, errors: rotationReads.errors,
    requests: rotationReads.requests,
  });
  log(`  ${rewrapped} DEKs in ${rotateSeconds.toFixed(2)} s (${Math.round(dekRate)} DEK/s), completed: ${rotation?.completed}`);

  // 6. Writes ---------------------------------------------------------------------------
  const writeJson = { ...auth(writerToken), "content-type": "application/json" };
  await measure("create", "create secret", {
    connections: THROUGHPUT_CONNECTIONS, method: "POST", headers: writeJson, paths: [FN],
    bodyTemplate: JSON.stringify({ name: `W_${runTag}_{{n}}`, value: randomValue(), secretType: "api_key" }),
  });
  const writeTargets = await mapLimit(Array.from({ length: 100 }, (_, i) => `VERSIONED_${i}`), 8, (name) =>
    api.createSecret(writerToken, name, randomValue()));
  await measure("putValue", "new version (100 secrets)", {
    connections: THROUGHPUT_CONNECTIONS, method: "PUT", headers: writeJson,
    paths: writeTargets.map((x) => `${FN}/${x.id}/value`), body: JSON.stringify({ value: randomValue() }),
  });

  // 7. Scale ----------------------------------------------------------------------------
  log("scale: clearing the rotation's and the writes' secrets");
  const bulkOwners = [...owners, writer.id];
  await db.transaction(async (tx) => {
    await tx.query(`set local session_replication_role = replica`);
    await tx.query(`delete from public.secret_versions v using public.secrets s where s.id = v.secret_id and s.user_id = any($1::uuid[])`, [bulkOwners]);
    await tx.query(`delete from public.secrets where user_id = any($1::uuid[])`, [bulkOwners]);
  });
  await db.exec(`vacuum analyze public.secrets, public.secret_versions`);
  log("scale fixtures: a user with 50 secrets (45 own, 5 shared)");
  const own = await mapLimit(Array.from({ length: 45 }, (_, i) => `SCALE_${String(i).padStart(2, "0")}`), 8, (name) =>
    api.createSecret(scaleToken, name, randomValue()));
  const shared = await mapLimit(Array.from({ length: 5 }, (_, i) => `SHARED_${i}`), 5, (name) =>
    api.createSecret(sharerToken, name, randomValue()));
  for (const x of shared) await api.call("PUT", `/${x.id}/permissions`, sharerToken, { userId: scaleUser.id, permission: "read" });
  const scaleReadPaths = [...own, ...shared].map((x) => `${FN}/${x.id}/value`);
  const listed = await api.call<{ items: unknown[] }>("GET", "?limit=100", scaleToken);
  if (listed.items.length !== 50) throw new Error(`the scale user sees ${listed.items.length} secrets, not 50`);

  const [{ active: kekActive }] = await db.query<{ active: number }>(`select version as active from private.key_versions where status = 'active'`);
  const scaleClaims = JSON.stringify({ sub: scaleUser.id, role: "authenticated", aud: "authenticated", email: scaleUser.email });
  const listParams = [null, null, null, false, false, null, null, null, 51, null];
  const scale: Record<string, unknown>[] = [];
  let have = { users: 0, secrets: 0, grants: 0 };
  for (const step of MODE.scale) {
    log(`scale: growing to ${step.secrets.toLocaleString("en-US")} other secrets, ${step.grants.toLocaleString("en-US")} grants, ${step.users.toLocaleString("en-US")} users`);
    const grown = performance.now();
    await growPopulation(db, runTag, have, step, kekActive, (what) => log(`  ${what}`));
    have = { users: step.users, secrets: step.secrets, grants: step.grants };
    await db.exec(`vacuum analyze auth.users, public.secrets, public.secret_versions, public.secret_permissions, public.secret_access_logs`);
    // Flush the load's dirty pages now, so no checkpoint it triggered runs during the measurement.
    await db.exec(`checkpoint`);
    const loadSeconds = (performance.now() - grown) / 1000;
    const [counts] = await db.query<Record<string, number>>(
      `select (select count(*) from public.secrets)::int as secrets, (select count(*) from public.secret_permissions)::int as grants,
              (select count(*) from auth.users)::int as users, (select count(*) from public.secret_access_logs)::int as audit_rows`,
    );
    const list = await measure(`list_${step.secrets}`, `list 50, ${step.label} others (1 conn)`, {
      connections: 1, headers: auth(scaleToken), paths: [FN],
    });
    const read = await measure(`read_${step.secrets}`, `value read, ${step.label} others (1 conn)`, {
      connections: 1, headers: auth(scaleToken), paths: scaleReadPaths,
    });
    const plans = {
      list: await explain(db, scaleClaims, LIST_SECRETS_SQL, listParams),
      metadataById: await explain(db, scaleClaims, FIND_SECRET_SQL, [own[0].id]),
      versionsOfOne: await explain(db, scaleClaims,
        `select version, created_by, created_at, restored_from, kek_version from public.secret_versions where secret_id = $1::uuid order by version desc`,
        [own[0].id]),
    };
    scale.push({ ...step, counts, loadSeconds, list: list.latency, read: read.latency, plans });
  }

  // Report ------------------------------------------------------------------------------
  const small = scale[0] as { list: { p50: number }; read: { p50: number } };
  const large = scale[scale.length - 1] as { list: { p50: number }; read: { p50: number }; label: string; plans: Record<string, { custom: string; generic: string }> };
  // Sequential scans in the plans of each step. The target concerns the large step: on the
  // small one the planner may rightly read a table of about a thousand rows whole.
  const seqScansOf = (st: Record<string, unknown>) =>
    Object.entries(st.plans as Record<string, { custom: string; generic: string }>).flatMap(([name, p]) =>
      [...`${p.custom}\n${p.generic}`.matchAll(/Seq Scan on ([\w.]+)/g)].map((m) => `${name}: ${m[1]}`)
    );
  for (const st of scale) st.seqScans = seqScansOf(st);
  const seqScans = seqScansOf(scale[scale.length - 1]);
  const ratios = {
    "R/F1 (req/s)": ratio(r.rps, f1.rps),
    "R/F2 (req/s)": ratio(r.rps, f2.rps),
    "R/S (req/s)": ratio(r.rps, s.rps),
    "env(100)/read (p50)": ratio(env[100].latency.p50, read1.latency.p50),
    "100 reads/env(100) (p50)": ratio(reads100.groups?.p50, env[100].latency.p50),
    [`list p50, ${large.label}/1,000`]: ratio(large.list.p50, small.list.p50),
    [`read p50, ${large.label}/1,000`]: ratio(large.read.p50, small.read.p50),
  };
  // Three decimals: a ratio of 0.699 must not print as the 0.70 it misses.
  const x = (v: number | null) => (v === null ? "–" : `${v.toFixed(3)}×`);
  const targets: Target[] = [
    { name: "R vs F2", goal: "R ≥ 0.7 × F2", value: x(ratios["R/F2 (req/s)"]), met: (ratios["R/F2 (req/s)"] ?? 0) >= 0.7 },
    { name: "R vs S", goal: "R ≥ 50 × S", value: x(ratios["R/S (req/s)"]), met: (ratios["R/S (req/s)"] ?? 0) >= 50 },
    {
      name: "env(100) vs read", goal: "p50 ≤ 3 × single read", value: x(ratios["env(100)/read (p50)"]),
      met: (ratios["env(100)/read (p50)"] ?? Infinity) <= 3,
    },
    {
      name: `scale: list`, goal: `p50 at ${large.label} ≤ 1.5 × at 1,000`, value: x(ratios[`list p50, ${large.label}/1,000`]),
      met: (ratios[`list p50, ${large.label}/1,000`] ?? Infinity) <= 1.5,
    },
    {
      name: `scale: value read`, goal: `p50 at ${large.label} ≤ 1.5 × at 1,000`, value: x(ratios[`read p50, ${large.label}/1,000`]),
      met: (ratios[`read p50, ${large.label}/1,000`] ?? Infinity) <= 1.5,
    },
    {
      name: "scale: plans", goal: `no sequential scan at ${large.label}`, value: seqScans.length ? [...new Set(seqScans)].join("; ") : "none",
      met: seqScans.length === 0,
    },
    { name: "rotation rate", goal: "≥ 5,000 DEK/s", value: `${Math.round(dekRate).toLocaleString("en-US")} DEK/s`, met: dekRate >= 5000 },
    {
      name: "rotation reads", goal: "0 errors", value: `${rotationReads.errors} of ${rotationReads.requests}`,
      met: rotationReads.errors === 0 && rotationReads.requests > 0,
    },
  ];

  const info = await machine(pgVersion);
  const command = `DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres npm run bench${QUICK ? " -- --quick" : ""}`;
  const machineLine = `${info.cpus} × ${info.cpuModel}, ${info.memoryGiB} GiB RAM; ${info.postgres.split(" on ")[0]}; Deno ${info.deno}; Node ${info.node}; autocannon ${info.autocannon}`;
  const durationS = (performance.now() - t0) / 1000;
  const generated = [
    `Run: ${new Date().toISOString().slice(0, 10)}, ${MODE.name} mode, ${durationS.toFixed(0)} s. Machine: ${machineLine}. Server, load generator and PostgreSQL share the machine.`,
    "",
    "```sh",
    command,
    "```",
    "",
    markdownTable(rows),
    "",
    markdownTargets(ratios, targets),
  ].join("\n");

  const results = {
    generatedAt: new Date().toISOString(), mode: MODE.name, command, machine: info, durationS,
    settings: { durationS: MODE.duration, warmupS: MODE.warmup, rounds: MODE.rounds, roundDurationS: MODE.roundDuration, throughputConnections: THROUGHPUT_CONNECTIONS, rotationReadConnections: ROTATION_READ_CONNECTIONS, rotationReadRate: ROTATION_READ_RATE, serverPool: config.db.max },
    scenarios: rows, ratios, targets, rotation: raw.rotation, scale, raw,
  };
  const dir = join(ROOT, "bench", "results");
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, "latest.json"), JSON.stringify(results, null, 2) + "\n");
  await Deno.writeTextFile(join(dir, "latest.md"), generated + "\n");

  console.log(`\nSigyl Secrets benchmark, ${MODE.name} mode — ${machineLine}\n`);
  console.log(consoleTable(rows));
  console.log("");
  for (const [k, v] of Object.entries(ratios)) console.log(`${k.padEnd(30)} ${v === null ? "–" : v.toFixed(3)}`);
  console.log("");
  for (const t of targets) console.log(`${t.met ? "met   " : "MISSED"}  ${t.name}: ${t.goal}; measured ${t.value}`);
  console.log(`\nfigures: bench/results/latest.json; Markdown: bench/results/latest.md; ${durationS.toFixed(1)} s in all`);
  if (UPDATE_README) {
    const done = await updateReadme(join(ROOT, "README.md"), generated);
    console.log(done ? "README.md: benchmark table updated" : "README.md: no bench markers found, left alone");
  }
}

/** EXPLAIN ANALYZE of `sql` as the user (role authenticated, its claims): the custom plan and the generic one. */
async function explain(db: Database, claims: string, sql: string, params: unknown[]) {
  const literal = (v: unknown) =>
    v === null ? "null" : typeof v === "number" || typeof v === "boolean" ? String(v) : `'${String(v).replace(/'/g, "''")}'`;
  return await db.transaction(async (tx) => {
    await tx.query(`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)`, [claims]);
    const text = (rows: Record<string, unknown>[]) => rows.map((r) => r["QUERY PLAN"]).join("\n");
    const custom = text(await tx.query(`explain (analyze, buffers) ${sql}`, params));
    await tx.query(`set local plan_cache_mode = force_generic_plan`);
    await tx.query(`prepare bench_plan as ${sql}`);
    const generic = text(await tx.query(`explain (analyze, buffers) execute bench_plan(${params.map(literal).join(", ")})`));
    await tx.query(`deallocate bench_plan`);
    return { custom, generic };
  });
}

let failed = false;
try {
  await main();
} catch (err) {
  failed = true;
  console.error(`bench: failed: ${(err as Error)?.stack ?? err}`);
  const running = server as { output(): string } | null;
  if (running) console.error(`bench server output (tail):\n${running.output().slice(-4000)}`);
} finally {
  clearTimeout(watchdog);
  await cleanup();
}
Deno.exit(failed ? 1 : 0);
