import { Hono } from "hono";
import type { Database } from "../db/database.ts";
import type { AppEnv } from "../http/app-env.ts";
import type { Keyring } from "../crypto/keyring.ts";

/**
 * `GET /health`: 200 with the database's state, 503 when it does not answer. Needs no token
 * and says nothing secret: kind of database, applied migrations, active KEK version.
 */
export function healthRoutes(deps: { db: Database; keyring: Keyring; timeoutMs?: number }) {
  const app = new Hono<AppEnv>();
  app.get("/", async (c) => {
    const started = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const probe = deps.db.query<{ migrations: number; pg_cron: boolean }>(
        `select (select count(*)::int from supabase_migrations.schema_migrations) as migrations,
                exists (select 1 from pg_extension where extname = 'pg_cron') as pg_cron`,
      );
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("health probe timed out")), deps.timeoutMs ?? 3000);
      });
      const [row] = await Promise.race([probe, timeout]);
      return c.json({
        success: true,
        data: {
          status: "ok",
          database: { kind: deps.db.kind, reachable: true, migrations: row.migrations, pgCron: row.pg_cron, latencyMs: Math.round(performance.now() - started) },
          keyring: { activeKekVersion: deps.keyring.activeVersion },
        },
      });
    } catch {
      return c.json({
        success: false,
        error: { code: "database_unavailable", message: "The database is unavailable." },
      }, 503);
    } finally {
      clearTimeout(timer);
    }
  });
  return app;
}
