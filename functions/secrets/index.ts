// Edge Function `secrets`: builds the app from the environment and serves it. Hosted, the
// runtime routes /functions/v1/secrets/* here with the path starting at /secrets.
// It serves at once: the runtime (which reads the keyring through the database) is built on
// the first request, and until the database answers every request gets 503
// database_unavailable, retried on later requests (shared/boot.ts). Locally,
// DENO_SERVE_ADDRESS=tcp:127.0.0.1:<port> chooses where it listens.
import { createLazyRuntime } from "../../shared/boot.ts";
import { loadConfig } from "../../shared/config.ts";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";
import { createRuntime } from "../../shared/runtime.ts";

// Production unless SIGYL_ENV=local says otherwise: no JWT secret configured means no start.
const config = loadConfig(Deno.env.toObject(), { defaultEnv: "production" });
if (!config.databaseUrl) throw new Error("SUPABASE_DB_URL (or DATABASE_URL) is not set");
// Refuses a remote URL without TLS; connects on the first query, not here.
const db = createPostgresDatabase(config.databaseUrl, config.db);
// No local timer here: hosted, only pg_cron runs the scheduled jobs, and health says if it does not.
const runtime = createLazyRuntime({
  build: () => createRuntime({ config, db, localJobTimer: false }),
  corsOrigins: config.corsOrigins,
});

Deno.serve(runtime.fetch);
