/**
 * `npm start`: the local stand-in for `supabase start` + `supabase functions serve`.
 * Opens the database (embedded PGlite under .sigyl/ by default, or DATABASE_URL), applies
 * the platform stand-in and the migrations, and serves the `secrets` function under Deno at
 * http://127.0.0.1:54321/functions/v1/secrets. Where pg_cron is missing it runs the same job
 * functions on a timer. Also answers POST /auth/v1/admin/users (service role), a stand-in
 * for Supabase Auth's admin API, so local users exist before they first call, and the
 * sign-in routes supabase-js uses (sign-up, password and refresh grants, the user, sign-out:
 * scripts/lib/auth/), so the web console signs in locally as it does hosted.
 *
 * It plays the platform's part in authentication too: the data dir keeps a local ES256 signing
 * key and `sb_secret_`/`sb_publishable_` API keys (made on first start; scripts/lib/local.ts),
 * the public key set is served at /auth/v1/.well-known/jwks.json, and the function is
 * configured from the variables the hosted runtime hands it (`SUPABASE_URL`, `SUPABASE_JWKS`,
 * `SUPABASE_SECRET_KEYS`, `SUPABASE_PUBLISHABLE_KEYS`), so it verifies callers exactly as it
 * does hosted. `npm run token` signs with the same key.
 *
 * The database is migrated as the login DATABASE_URL names (the owner), and the function is
 * served as `sigyl_api`, the role hosted deployments log in as (scripts/lib/local.ts
 * openApiDatabase): on PostgreSQL a second connection as that user, on PGlite the same
 * instance acting as it. A server that refuses that login (it wants a password) is served as
 * the owner, with a warning, and health reports `degraded`.
 *
 * A PGlite data dir is held under its lock (scripts/lib/data-dir-lock.ts) from open to
 * shutdown, so a second process on it stops with one line; once listening, the server writes
 * its URL into the lock file, where `npm run token` finds it whatever the PORT.
 *
 * The web console (web/, built into web/dist by `npm start`'s prestart step) is served at `/`
 * with its config.json (scripts/lib/console-static.ts).
 */
import { join } from "node:path";
import { ConfigError, loadConfig } from "../shared/config.ts";
import { createRuntime } from "../shared/runtime.ts";
import {
  type LocalDatabase,
  localKeys,
  localKeysPath,
  localSigner,
  migrateLocal,
  openApiDatabase,
  openDatabase,
  platformVariables,
  publicKeySet,
  ROOT,
} from "./lib/local.ts";
import { createFunctionHandler, FUNCTION_PREFIX, JWKS_PATH } from "./lib/function-handler.ts";
import { AUTH_PREFIX, createLocalAuthRoutes } from "./lib/auth/auth-routes.ts";
import { createLocalAuthService, DEFAULT_AUTH_SETTINGS } from "./lib/auth/auth-service.ts";
import { systemClock } from "../shared/clock.ts";
import { createApiDocsHandler, DOCS_PATH } from "./lib/api-docs.ts";
import { createConsoleHandler } from "./lib/console-static.ts";

function fail(message: string): never {
  console.error(`sigyl: ${message}`);
  Deno.exit(1);
}

async function main() {
  const env = Deno.env.toObject();
  let config;
  try {
    config = loadConfig(env);
  } catch (err) {
    fail(err instanceof ConfigError ? err.message : String(err));
  }

  let db: LocalDatabase;
  try {
    db = await openDatabase(config);
  } catch (err) {
    fail((err as Error).message);
  }

  try {
    const { applied, total } = await migrateLocal(db);
    console.log(`sigyl: migrations: ${applied.length} applied now, ${total} in all`);
  } catch (err) {
    await db.close().catch(() => {});
    fail((err as Error).message);
  }

  // The platform's variables win over the shell's, as hosted, where names starting with
  // SUPABASE_ are the platform's alone.
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  const projectUrl = `http://${host}:${config.port}`;
  let keys, functionConfig;
  try {
    keys = await localKeys(config);
    functionConfig = loadConfig({ ...env, ...platformVariables(keys, projectUrl) });
  } catch (err) {
    await db.close().catch(() => {});
    fail(err instanceof ConfigError ? err.message : (err as Error).message);
  }

  // The function's login; the owner's connection keeps the jobs timer and the local auth admin API.
  let apiDb;
  try {
    apiDb = await openApiDatabase(db, config);
  } catch (err) {
    console.error(`sigyl: ${(err as Error).message}; serving as the migration's login (health: degraded)`);
    apiDb = db;
  }
  const runtime = await createRuntime({ config: functionConfig, db: apiDb });
  const [{ cron }] = await db.query<{ cron: boolean }>(
    `select exists (select 1 from pg_extension where extname = 'pg_cron') as cron`);
  let jobs: ReturnType<typeof setInterval> | undefined;
  if (!cron) {
    const runJobs = () =>
      db.query(`select private.run_scheduled_jobs() as result`).catch((err) =>
        console.error(`sigyl: scheduled jobs failed: ${(err as Error).message}`)
      );
    jobs = setInterval(runJobs, config.jobIntervalSeconds * 1000);
    runJobs();
  }

  // Supabase Auth writes its own schema as its own administrator: the owner's connection.
  const signIn = createLocalAuthRoutes({
    auth: createLocalAuthService({
      db,
      signer: await localSigner(keys),
      jwks: publicKeySet(keys),
      clock: systemClock,
      settings: { ...DEFAULT_AUTH_SETTINGS, issuer: `${projectUrl}${AUTH_PREFIX}`, reuseIntervalSeconds: config.authReuseIntervalSeconds },
    }),
    apiKeys: [keys.publishableKey, keys.secretKey],
    corsOrigins: config.corsOrigins,
  });
  const handler = createFunctionHandler({
    app: runtime.app, authenticate: runtime.authenticate, db, production: config.production, jwks: publicKeySet(keys), auth: signIn,
  });

  const consoleFiles = createConsoleHandler({ dir: join(ROOT, "web", "dist"), publishableKey: keys.publishableKey });

  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    const apiDocs = createApiDocsHandler(ROOT);
    server = Deno.serve({ hostname: config.host, port: config.port, onListen: () => {} },
      (req, info) => apiDocs(req) ?? consoleFiles(req) ?? handler(req, info));
  } catch (err) {
    await db.close().catch(() => {});
    if (err instanceof Deno.errors.AddrInUse) fail(`port ${config.port} on ${config.host} is already in use (set PORT)`);
    fail(`cannot listen on ${config.host}:${config.port}: ${(err as Error).message}`);
  }

  const { hostname, port } = server.addr;
  const origin = `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  // In the data dir's lock file, so `npm run token` finds this server whatever PORT it has.
  db.advertise(origin);
  const base = `${origin}${FUNCTION_PREFIX}/secrets`;
  console.log(`sigyl: serving ${base}`);
  console.log(`sigyl: web console: ${origin}/`);
  console.log(`sigyl: API docs: ${origin}${DOCS_PATH} (the OpenAPI document: ${base}/openapi.json)`);
  console.log(`sigyl: database: ${db.kind === "pglite" ? `embedded PGlite at ${db.location}` : `PostgreSQL ${db.location}`}`);
  console.log(`sigyl: the function acts as ${apiDb === db ? "the migration's login (not sigyl_api)" : "sigyl_api"}`);
  console.log(`sigyl: scheduled jobs: ${cron ? "pg_cron" : `local timer every ${config.jobIntervalSeconds}s`}`);
  console.log(`sigyl: auth as hosted: ES256 user tokens under ${origin}${JWKS_PATH}, the service role by its sb_secret_ key; keys in ${localKeysPath(config)}`);
  console.log(`sigyl: sign-in as hosted (supabase-js): ${origin}${AUTH_PREFIX} with the publishable key ${keys.publishableKey}`);
  console.log(`sigyl: get a token:  npm run token -- alice@example.com   (service role: npm run token -- --service)`);
  console.log(`sigyl: try:          curl ${base}/health`);
  console.log(`sigyl: walk-through: ${port === 54321 ? "" : `PORT=${port} `}sh scripts/try-it.sh`);

  let closing = false;
  const shutdown = async () => {
    if (closing) return;
    closing = true;
    console.log("sigyl: shutting down");
    clearInterval(jobs);
    await server.shutdown();
    if (apiDb !== db) await apiDb.close();
    await db.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", shutdown);
  Deno.addSignalListener("SIGTERM", shutdown);
}

await main();
