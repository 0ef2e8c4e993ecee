// Edge Function `secrets`: builds the app from the environment and serves it. Hosted, the
// runtime routes /functions/v1/secrets/* here with the path starting at /secrets.
import { loadConfig } from "../../shared/config.ts";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";
import { createRuntime } from "../../shared/runtime.ts";

const config = loadConfig(Deno.env.toObject());
if (!config.databaseUrl) throw new Error("SUPABASE_DB_URL (or DATABASE_URL) is not set");
const db = createPostgresDatabase(config.databaseUrl, config.db);
const { app } = await createRuntime({ config, db });

Deno.serve(app.fetch);
