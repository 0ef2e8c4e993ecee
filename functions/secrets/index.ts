// Edge Function `secrets`: builds the app from the environment and serves it. Hosted, the
// runtime routes /functions/v1/secrets/* here with the path starting at /secrets.
import { loadConfig } from "../../shared/config.ts";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";
import { createRuntime } from "../../shared/runtime.ts";

// Production unless SIGYL_ENV=local says otherwise: no JWT secret configured means no start.
const config = loadConfig(Deno.env.toObject(), { defaultEnv: "production" });
if (!config.databaseUrl) throw new Error("SUPABASE_DB_URL (or DATABASE_URL) is not set");
const db = createPostgresDatabase(config.databaseUrl, config.db);
const { app } = await createRuntime({ config, db });

Deno.serve(app.fetch);
