import { z } from "zod";
import { appError } from "../errors.ts";
import type { Database } from "../db/database.ts";
import type { AppEnv } from "../http/app-env.ts";
import { fail } from "../http/envelope.ts";
import { defineRoute, featureApp } from "../http/openapi.ts";
import type { Keyring } from "../crypto/keyring.ts";
import { probe } from "./health-dal.ts";
import { assessJobs } from "./health-jobs.ts";
import { assessLogin } from "./health-login.ts";

export interface HealthDeps {
  db: Database;
  keyring: Keyring;
  /** This process runs the scheduled jobs on a timer where pg_cron is missing (the local server). */
  localJobTimer?: boolean;
  timeoutMs?: number;
}

/**
 * `GET /health`: the database's state and who runs the scheduled jobs. Needs no token and
 * says nothing secret: kind of database, applied migrations, active KEK version, job names.
 *
 * - `ok` (200): the database answers, the service acts as `sigyl_api` and the scheduled jobs
 *   have a runner.
 * - `degraded` (200): the database answers, so every request is served, but a scheduled job
 *   has no runner (`jobs.missing`: expiry and purge silently stop), or the service logged in
 *   as another role than `sigyl_api` (`database.login`, with `database.fix`: the owner could
 *   switch off the triggers that keep versions immutable and the audit append-only). 200
 *   because the service does answer correctly and a 5xx would take a working instance out of
 *   rotation; monitors read `status`.
 * - 503 `database_unavailable`: the database does not answer (or not within the timeout).
 */
/** `data` of a health answer (see the README's "Health"). */
export const healthDto = z.strictObject({
  status: z.enum(["ok", "degraded"]),
  database: z.strictObject({
    kind: z.enum(["postgres", "pglite"]),
    reachable: z.literal(true),
    /** Applied migrations. */
    migrations: z.number().int().min(0),
    pgCron: z.boolean(),
    latencyMs: z.number().int().min(0),
    /** The role the function acts as outside a caller's transaction. */
    login: z.string(),
    /** What to do when `login` is not `sigyl_api`. */
    fix: z.string().optional(),
  }),
  keyring: z.strictObject({ activeKekVersion: z.number().int().min(1) }),
  jobs: z.strictObject({
    scheduler: z.enum(["pg_cron", "local timer", "missing"]),
    missing: z.array(z.string()),
    fix: z.string().optional(),
  }),
});

export function healthRoutes(deps: HealthDeps) {
  const app = featureApp<AppEnv>();
  defineRoute(app, {
    method: "get", path: "/", tag: "health", callers: [], data: healthDto, errors: [],
    summary: "The database's state, the function's login and who runs the scheduled jobs; no token needed.",
  }, async (c) => {
    const started = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("health probe timed out")), deps.timeoutMs ?? 3000);
      });
      const row = await Promise.race([probe(deps.db), timeout]);
      const jobs = assessJobs(row, { localTimer: deps.localJobTimer ?? false });
      const login = assessLogin(row.login);
      return c.json({
        success: true,
        data: {
          status: jobs.missing.length || login.fix ? "degraded" : "ok",
          database: {
            kind: deps.db.kind, reachable: true, migrations: row.migrations, pgCron: row.pgCron,
            latencyMs: Math.round(performance.now() - started), ...login,
          },
          keyring: { activeKekVersion: deps.keyring.activeVersion },
          jobs,
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
