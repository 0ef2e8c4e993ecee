// Edge Function `secrets`: builds the app from the environment and serves it. Hosted, the
// runtime routes /functions/v1/secrets/* here with the path starting at /secrets.
// It serves at once: the runtime (which reads the keyring through the database) is built on
// the first request, and until the database answers every request gets 503
// database_unavailable, retried on later requests (shared/boot.ts). Locally,
// DENO_SERVE_ADDRESS=tcp:127.0.0.1:<port> chooses where it listens.
import { loadConfig } from "../../shared/config.ts";
import type { Keyring } from "../../shared/crypto/keyring.ts";
import { loadKeyringFromVault } from "../../shared/crypto/vault-keyring.ts";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";

// Production unless SIGYL_ENV=local says otherwise: no JWT secret configured means no start.
const config = loadConfig(Deno.env.toObject(), { defaultEnv: "production" });
if (!config.databaseUrl) throw new Error("SUPABASE_DB_URL (or DATABASE_URL) is not set");
// Refuses a remote URL without TLS; connects on the first query, not here.
const db = createPostgresDatabase(config.databaseUrl, config.db);

// A cold start's first request waits for the connection and the keyring's read from Vault:
// start both now, so they overlap the loading of the app's modules below (about half the
// start-up). A failure here is only the first build's: the lazy runtime answers 503 and
// reads the keyring anew on a later request.
let keyringUnderWay: Promise<Keyring> | undefined = loadKeyringFromVault(db);
keyringUnderWay.catch(() => {});

const { createLazyRuntime } = await import("../../shared/boot.ts");
const { createRuntime } = await import("../../shared/runtime.ts");

// No local timer here: hosted, only pg_cron runs the scheduled jobs, and health says if it does not.
const runtime = createLazyRuntime({
  build: () => {
    const keyring = keyringUnderWay;
    keyringUnderWay = undefined;
    return createRuntime({ config, db, localJobTimer: false, keyring });
  },
  corsOrigins: config.corsOrigins,
});

Deno.serve(runtime.fetch);
