/**
 * The benchmark's server: the real function built exactly as `npm start` builds it
 * (loadConfig → PostgreSQL → migrateLocal → createRuntime over the `sigyl_api` login → the same
 * HTTP front), with two bench-only routes mounted on a wrapper app in front of `runtime.app`:
 *
 *   GET /secrets/__bench/f1             F1: one `select 1` behind the service's own middleware
 *                                           and authentication (our framework floor)
 *   GET /secrets/__bench/seed/:id/value S: the real value read (RLS, read_value, its audit
 *                                           row) with the seed's PBKDF2 decryption instead of
 *                                           the envelope
 *
 * The bench routes pass through the same middleware as every real route (request id,
 * security headers, CORS, body limit, authentication). Everything else goes to `runtime.app`
 * untouched. The bare floors, without any of this code, are bench/floor-server.ts's. This
 * process refuses to start unless it is clearly a benchmark: SIGYL_BENCH=1, not production,
 * and a database whose name starts with `sigyl_bench_` (the driver creates and drops one per
 * run). Only bench/run.ts starts it; nothing in functions/ or scripts/ imports it.
 *
 * Deliberately absent: the local timer for the scheduled jobs (`npm start` runs it where
 * pg_cron is missing). Hosted, those jobs are pg_cron's, not the function's, and a job firing
 * mid-scenario would only add noise.
 */
import { Hono } from "hono";
import { errorHandler, requestMiddleware, stderrLogger } from "../shared/app.ts";
import { ConfigError, loadConfig } from "../shared/config.ts";
import { asCaller } from "../shared/db/database.ts";
import { appError } from "../shared/errors.ts";
import type { AppEnv } from "../shared/http/app-env.ts";
import { ok } from "../shared/http/envelope.ts";
import { authenticate, noStore } from "../shared/http/middleware.ts";
import { UUID_PATTERN } from "../shared/http/validation.ts";
import { createRuntime } from "../shared/runtime.ts";
import { readValue } from "../shared/secrets/secret-dal.ts";
import { createFunctionHandler } from "../scripts/lib/function-handler.ts";
import { migrateLocal, openApiDatabase, openDatabase } from "../scripts/lib/local.ts";
import { openSeedStyle } from "./seed-design.ts";

function fail(message: string): never {
  console.error(`bench server: ${message}`);
  Deno.exit(1);
}

const env = Deno.env.toObject();
let config;
try {
  config = loadConfig(env);
} catch (err) {
  fail(err instanceof ConfigError ? err.message : String(err));
}
const seedMaster = env.SIGYL_BENCH_SEED_MASTER ?? "";
const databaseName = config.databaseUrl ? new URL(config.databaseUrl).pathname.slice(1) : "";
if (env.SIGYL_BENCH !== "1" || config.production || !databaseName.startsWith("sigyl_bench_")) {
  fail("refusing to start: this server exposes benchmark-only routes; bench/run.ts starts it on its own sigyl_bench_* database");
}
if (seedMaster.length < 16) fail("SIGYL_BENCH_SEED_MASTER is missing");

const db = await openDatabase(config);
await migrateLocal(db);
// As npm start and a hosted deployment: the function logs in as sigyl_api.
const apiDb = await openApiDatabase(db, config);
const runtime = await createRuntime({ config, db: apiDb });

const uuidParam = (id: string) => {
  if (!UUID_PATTERN.test(id)) throw appError("invalid_request", "id must be a uuid");
  return id;
};

const bench = new Hono<AppEnv>();
for (const middleware of requestMiddleware(config.corsOrigins)) bench.use("*", middleware);
bench.use("*", authenticate(runtime.authenticate, config.trustedProxyHops));

bench.get("/f1", async (c) => {
  const [row] = await db.query<{ one: number }>("select 1 as one");
  return ok(c, row);
});

bench.get("/seed/:id/value", noStore, async (c) => {
  const id = uuidParam(c.req.param("id"));
  const result = await asCaller(apiDb, c.get("ctx"), async (tx) => {
    const r = await readValue(tx, id, null);
    if (r.outcome !== "ok") return { ok: false as const, outcome: r.outcome };
    return { ok: true as const, version: r.version, value: await openSeedStyle(seedMaster, r.sealed) };
  });
  if (!result.ok) throw appError(result.outcome);
  return ok(c, { id, version: result.version, value: result.value });
});

const app = new Hono<AppEnv>().basePath("/secrets");
app.route("/__bench", bench);
app.all("*", (c) => runtime.app.fetch(c.req.raw));
app.onError(errorHandler(stderrLogger));

const handler = createFunctionHandler({ app, authenticate: runtime.authenticate, db, production: config.production });
const server = Deno.serve({ hostname: config.host, port: config.port, onListen: () => {} }, handler);
console.log(`bench server: serving http://${config.host}:${config.port}/functions/v1/secrets (pool ${config.db.max})`);

let closing = false;
const shutdown = async () => {
  if (closing) return;
  closing = true;
  await server.shutdown();
  await apiDb.close();
  await db.close();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", shutdown);
Deno.addSignalListener("SIGTERM", shutdown);
