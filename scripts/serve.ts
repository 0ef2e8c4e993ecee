/**
 * `npm start`: the local stand-in for `supabase start` + `supabase functions serve`.
 * Opens the database (embedded PGlite under .sigyl/ by default, or DATABASE_URL), applies
 * the platform stand-in and the migrations, and serves the `secrets` function under Deno at
 * http://127.0.0.1:54321/functions/v1/secrets. Where pg_cron is missing it runs the same job
 * functions on a timer. Also answers POST /auth/v1/admin/users (service role), a stand-in
 * for Supabase Auth's admin API, so local users exist before they first call.
 */
import { ConfigError, loadConfig } from "../shared/config.ts";
import { createRuntime } from "../shared/runtime.ts";
import { ensureUser, migrateLocal, openDatabase } from "./lib/local.ts";
import type { Database } from "../shared/db/database.ts";

const FUNCTION_PREFIX = "/functions/v1";

function fail(message: string): never {
  console.error(`sigyl: ${message}`);
  Deno.exit(1);
}

async function main() {
  let config;
  try {
    config = loadConfig(Deno.env.toObject());
  } catch (err) {
    fail(err instanceof ConfigError ? err.message : String(err));
  }

  let db: Database;
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

  const runtime = await createRuntime({ config, db });
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

  const adminUsers = async (req: Request): Promise<Response> => {
    const authenticated = await runtime.authenticate(req.headers).catch(() => null);
    if (authenticated?.kind !== "service") {
      return Response.json({ code: 401, msg: "This endpoint requires a service role token" }, { status: 401 });
    }
    const body = await req.json().catch(() => null) as { email?: unknown } | null;
    if (typeof body?.email !== "string" || !/^[^@\s]+@[^@\s]+$/.test(body.email)) {
      return Response.json({ code: 400, msg: "email is required" }, { status: 400 });
    }
    const user = await ensureUser(db, body.email);
    return Response.json({ id: user.id, email: user.email, aud: "authenticated", role: "authenticated" });
  };

  const handler = (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Response | Promise<Response> => {
    const url = new URL(req.url);
    if (url.pathname === `${FUNCTION_PREFIX}/secrets` || url.pathname.startsWith(`${FUNCTION_PREFIX}/secrets/`)) {
      url.pathname = url.pathname.slice(FUNCTION_PREFIX.length);
      // As the hosted gateway does: append the address this request really came from.
      const forwarded = new Request(url, req);
      const xff = req.headers.get("x-forwarded-for");
      forwarded.headers.set("x-forwarded-for", xff ? `${xff}, ${info.remoteAddr.hostname}` : info.remoteAddr.hostname);
      return runtime.app.fetch(forwarded);
    }
    if (url.pathname === "/auth/v1/admin/users" && req.method === "POST" && !config.production) {
      return adminUsers(req);
    }
    return Response.json({ success: false, error: { code: "not_found", message: "No such route." } }, { status: 404 });
  };

  let server: Deno.HttpServer;
  try {
    server = Deno.serve({ hostname: config.host, port: config.port, onListen: () => {} }, handler);
  } catch (err) {
    await db.close().catch(() => {});
    if (err instanceof Deno.errors.AddrInUse) fail(`port ${config.port} on ${config.host} is already in use (set PORT)`);
    fail(`cannot listen on ${config.host}:${config.port}: ${(err as Error).message}`);
  }

  const base = `http://${config.host}:${config.port}${FUNCTION_PREFIX}/secrets`;
  console.log(`sigyl: serving ${base}`);
  console.log(`sigyl: database: ${db.kind === "pglite" ? `embedded PGlite at ${db.location}` : `PostgreSQL ${db.location}`}`);
  console.log(`sigyl: scheduled jobs: ${cron ? "pg_cron" : `local timer every ${config.jobIntervalSeconds}s`}`);
  console.log(`sigyl: get a token:  npm run token -- alice@example.com   (service role: npm run token -- --service)`);
  console.log(`sigyl: try:          curl ${base}/health`);

  let closing = false;
  const shutdown = async () => {
    if (closing) return;
    closing = true;
    console.log("sigyl: shutting down");
    clearInterval(jobs);
    await server.shutdown();
    await db.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", shutdown);
  Deno.addSignalListener("SIGTERM", shutdown);
}

await main();
