/** SQL of the health probe: cheap, needs no caller, says nothing secret. */
import type { Queryable } from "../db/database.ts";

/**
 * The jobs the migrations schedule with pg_cron, by name, with their schedules. Health checks
 * `cron.job` against this list; a test checks it against the migrations.
 */
export const SCHEDULED_JOBS: readonly { name: string; schedule: string }[] = [
  { name: "sigyl-expire-secrets", schedule: "* * * * *" },
  { name: "sigyl-purge-deleted", schedule: "17 * * * *" },
  { name: "sigyl-trim-job-history", schedule: "27 3 * * *" },
  { name: "sigyl-purge-idempotency", schedule: "* * * * *" },
];

export interface ScheduledJobRow {
  name: string;
  schedule: string;
  active: boolean;
}

export interface Probe {
  migrations: number;
  pgCron: boolean;
  /** Rows of `cron.job` for the names in SCHEDULED_JOBS; empty without pg_cron. */
  jobs: ScheduledJobRow[];
  /** The role the service acts as outside a caller's transaction: its database login. */
  login: string;
}

/**
 * One statement: `private.health_probe` (security definer, since the function's login may read
 * neither the migration history nor cron.job's rows of postgres) and the role this connection
 * acts as outside any caller's transaction, which on PostgreSQL is the login itself.
 */
export async function probe(q: Queryable): Promise<Probe> {
  const [row] = await q.query<{ migrations: number; pg_cron: boolean; jobs: ScheduledJobRow[] | string; login: string }>(
    `select p.migrations, p.pg_cron, p.jobs, current_user::text as login
       from private.health_probe($1::text[]) p`,
    [SCHEDULED_JOBS.map((j) => j.name)],
  );
  const jobs = typeof row.jobs === "string" ? JSON.parse(row.jobs) as ScheduledJobRow[] : row.jobs;
  return { migrations: row.migrations, pgCron: row.pg_cron, jobs, login: row.login };
}
