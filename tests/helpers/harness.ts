/**
 * One database and one app per suite, called in-process with `app.request()` as Hono's own
 * tests do. The app acts as the function's login, `sigyl_api` (on PostgreSQL it logs in as it;
 * on PGlite it acts as it on the same instance), as a hosted deployment does; `db` is the
 * owner's connection, for fixtures and checks the API could not make. Users are fresh per call, so suites sharing a PostgreSQL never meet. Every value
 * a suite stores is remembered; `close()` fails the suite if any of them sits anywhere in the
 * database (as text, hex or base64) or in a log line. Every answer `request()` receives is
 * checked against the API's own OpenAPI document (./api-contract.ts): one it does not describe
 * fails the test.
 */
import { readFile } from "node:fs/promises";
import { inject } from "vitest";
import type { Clock } from "../../shared/clock.ts";
import { loadConfig } from "../../shared/config.ts";
import type { Database } from "../../shared/db/database.ts";
import { createPgliteDatabase } from "../../shared/db/pglite.ts";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";
import { createRuntime } from "../../shared/runtime.ts";
import { apiRoleUrl, ensureUser, migrateLocal, signServiceToken, signUserToken } from "../../scripts/lib/local.ts";
import { API_ROLE } from "../../shared/config.ts";
import { type ApiContract, apiContract } from "./api-contract.ts";
import { createSigylClient, type TokenSource } from "../../shared/client/client.ts";

export const usingPostgres = Boolean(process.env.DATABASE_URL);
export const JWT_SECRET = loadConfig({}).auth.jwtSecret!;

export interface TestUser {
  id: string;
  email: string;
  token: string;
}

export interface Reply<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export class TestClock implements Clock {
  offsetMs = 0;
  now() {
    return new Date(Date.now() + this.offsetMs);
  }
}

const prepare = () => process.env.SIGYL_DB_PREPARE !== "false";

/** Compiled once per document text: every harness of a worker serves the same one. */
const contracts = new Map<string, ApiContract>();

/** The contract of the document `app` serves at /secrets/openapi.json. */
export async function contractOf(app: { request: (url: string) => Response | Promise<Response> }): Promise<ApiContract> {
  const res = await app.request("/secrets/openapi.json");
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET /secrets/openapi.json answered ${res.status}: ${text.slice(0, 200)}`);
  let contract = contracts.get(text);
  if (!contract) contracts.set(text, contract = apiContract(JSON.parse(text)));
  return contract;
}

/** The owner's connection (DATABASE_URL, or a fresh PGlite from the migrated dump). */
export async function openTestDatabase(): Promise<Database> {
  return (await openTestDatabases()).owner;
}

/**
 * The owner's connection and the function's (`sigyl_api`) to one database. On PGlite both are
 * one instance: closing `owner` closes it.
 */
export async function openTestDatabases(url = process.env.DATABASE_URL): Promise<{ owner: Database; api: Database }> {
  if (usingPostgres) {
    return {
      owner: createPostgresDatabase(url!, { max: 8, prepare: prepare() }),
      api: createPostgresDatabase(apiRoleUrl(url!), { max: 8, prepare: prepare() }),
    };
  }
  const dump = await readFile(inject("pgliteDump"));
  const owner = await createPgliteDatabase({ loadDataDir: new Blob([dump]) });
  return { owner, api: owner.loggedInAs(API_ROLE) };
}

/** A database as the function's login alone, for suites that build an app over it; `close()` closes it all. */
export async function openApiTestDatabase(): Promise<Database> {
  const { owner, api } = await openTestDatabases();
  if (!usingPostgres) return { ...api, close: () => owner.close() };
  return { ...api, close: async () => void await Promise.all([api.close(), owner.close()]) };
}

/**
 * A PostgreSQL database of its own, migrated, for a suite that changes database-wide state
 * (the KEK rotation) while other suites share DATABASE_URL. `drop()` removes it.
 */
async function openIsolatedPostgres(): Promise<{ db: Database; api: Database; drop: () => Promise<void> }> {
  const admin = createPostgresDatabase(process.env.DATABASE_URL!, { max: 1 });
  const name = `sigyl_iso_${Math.random().toString(36).slice(2, 10)}`;
  await admin.query(`create database ${name}`);
  const url = new URL(process.env.DATABASE_URL!);
  url.pathname = `/${name}`;
  const { owner: db, api } = await openTestDatabases(url.toString());
  const drop = async () => {
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.close();
  };
  try {
    await migrateLocal(db);
  } catch (err) {
    await Promise.all([db.close(), api.close()]);
    await drop();
    throw err;
  }
  return { db, api, drop };
}

/**
 * `isolatedDatabase`: on PostgreSQL, a fresh database for this suite alone (on PGlite every
 * suite already has its own).
 */
export async function createHarness(options: { isolatedDatabase?: boolean } = {}) {
  const isolated = options.isolatedDatabase && usingPostgres ? await openIsolatedPostgres() : null;
  const { db, api: apiDb } = isolated ?? await openTestDatabases().then((d) => ({ db: d.owner, api: d.api }));
  const clock = new TestClock();
  const logs: string[] = [];
  const runtime = await createRuntime({
    config: loadConfig({}),
    db: apiDb,
    clock,
    log: (event, fields) => {
      const line = JSON.stringify({ event, ...fields });
      logs.push(line);
      if (process.env.SIGYL_TEST_LOGS) console.error(line);
    },
  });
  const values = new Set<string>();
  let contract: ApiContract | undefined;
  const run = Math.random().toString(36).slice(2, 10);
  let n = 0;

  async function user(label = "user"): Promise<TestUser> {
    const u = await ensureUser(db, `${label}-${run}-${++n}@test.sigyl.dev`);
    return { ...u, token: await signUserToken(JWT_SECRET, u) };
  }

  async function request<T = any>(
    method: string,
    path: string,
    opts: { token?: string | null; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
  ): Promise<Reply<T>> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body: string | undefined = opts.rawBody;
    if (opts.body !== undefined) {
      headers["content-type"] ??= "application/json";
      body = JSON.stringify(opts.body);
    }
    const res = await runtime.app.request(`/secrets${path}`, { method, headers, body });
    const text = await res.text();
    contract ??= await contractOf(runtime.app);
    contract.check(method, `/secrets${path}`, { status: res.status, headers: res.headers, text });
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch { /* not JSON */ }
    return { status: res.status, body: parsed as T, headers: res.headers };
  }

  /**
   * The typed client (shared/client) calling this app in-process; every answer is checked
   * against the document as `request()`'s are.
   */
  function client(token?: TokenSource) {
    return createSigylClient({
      url: "http://sigyl.test",
      token,
      fetch: async (req) => {
        const res = await runtime.app.request(req);
        contract ??= await contractOf(runtime.app);
        const path = new URL(req.url).pathname;
        contract.check(req.method, path, { status: res.status, headers: res.headers, text: await res.clone().text() });
        return res;
      },
    });
  }

  /** Creates a secret as `owner` and remembers its value for the plaintext scan. */
  async function createSecret(owner: TestUser, body: Record<string, unknown> = {}) {
    const value = (body.value as string) ?? `value-${run}-${++n}-${crypto.randomUUID()}`;
    remember(value);
    const res = await request("POST", "", {
      token: owner.token,
      body: { name: `S_${run}_${++n}`, ...body, value },
    });
    if (res.status !== 201) throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`);
    return { ...res.body.data, value } as { id: string; name: string; currentVersion: number; value: string };
  }

  function remember(value: string) {
    if (value.length >= 6) values.add(value);
  }

  async function grant(owner: TestUser, secretId: string, grantee: TestUser, permission: string) {
    const res = await request("PUT", `/${secretId}/permissions`, { token: owner.token, body: { userId: grantee.id, permission } });
    if (res.status !== 200) throw new Error(`grant failed: ${res.status} ${JSON.stringify(res.body)}`);
  }

  /** Every table outside Vault, as text, searched for each remembered value in three encodings. */
  async function findPlaintext(): Promise<string[]> {
    const needles = [...values].flatMap((v) => {
      const bytes = new TextEncoder().encode(v);
      return [v, Buffer.from(bytes).toString("hex"), Buffer.from(bytes).toString("base64")];
    });
    if (needles.length === 0) return [];
    const tables = await db.query<{ name: string }>(
      `select format('%I.%I', schemaname, tablename) as name from pg_tables
        where schemaname not in ('pg_catalog', 'information_schema', 'vault')`,
    );
    const hits: string[] = [];
    for (const { name } of tables) {
      const rows = await db.query<{ hit: string }>(
        `select v as hit from ${name} t, unnest($1::text[]) v where strpos(lower(t::text), lower(v)) > 0 limit 1`,
        [needles],
      );
      if (rows.length) hits.push(name);
    }
    for (const line of logs) if (needles.some((v) => line.includes(v))) hits.push(`log: ${line.slice(0, 80)}`);
    return hits;
  }

  async function close() {
    const hits = await findPlaintext();
    await apiDb.close();
    await db.close();
    await isolated?.drop();
    if (hits.length) throw new Error(`plaintext values found at rest: ${hits.join(", ")}`);
  }

  return {
    db, apiDb, clock, logs, runtime, app: runtime.app, user, request, client, createSecret, grant, remember, findPlaintext, close,
    serviceToken: () => signServiceToken(JWT_SECRET),
  };
}

export type Harness = Awaited<ReturnType<typeof createHarness>>;

/** Rows of a table that mention an id, for "nothing changed" assertions. */
export async function snapshot(db: Database, secretId: string) {
  const q = (sql: string) => db.query(sql, [secretId]);
  return JSON.stringify({
    secret: await q(`select * from public.secrets where id = $1::uuid`),
    versions: await q(`select secret_id, version, encode(ciphertext, 'hex') c from public.secret_versions where secret_id = $1::uuid order by version`),
    grants: await q(`select * from public.secret_permissions where secret_id = $1::uuid order by user_id`),
  });
}

/** Audit rows of a secret, oldest first. */
export function auditOf(db: Database, secretId: string) {
  return db.query<{ action: string; actor_id: string | null; actor_type: string; version: number | null; outcome: string; details: any; request_id: string | null; ip: string | null; user_agent: string | null }>(
    `select action::text, actor_id, actor_type::text, version, outcome, details, request_id, ip, user_agent
       from public.secret_access_logs where secret_id = $1::uuid order by id`,
    [secretId],
  );
}
