import { Hono } from "hono";
import { appError } from "../errors.ts";
import type { Database } from "../db/database.ts";
import type { AppEnv } from "../http/app-env.ts";
import { fail } from "../http/envelope.ts";
import type { Keyring } from "../crypto/keyring.ts";
import { probe } from "./health-dal.ts";

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
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("health probe timed out")), deps.timeoutMs ?? 3000);
      });
      const row = await Promise.race([probe(deps.db), timeout]);
      return c.json({
        success: true,
        data: {
          status: "ok",
          database: { kind: deps.db.kind, reachable: true, migrations: row.migrations, pgCron: row.pgCron, latencyMs: Math.round(performance.now() - started) },
          keyring: { activeKekVersion: deps.keyring.activeVersion },
        },
      });
    } catch {
      return fail(c, appError("database_unavailable"));
    } finally {
      clearTimeout(timer);
    }
  });
  return app;
}
