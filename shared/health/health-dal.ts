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
}

export async function probe(q: Queryable): Promise<Probe> {
  const [row] = await q.query<{ migrations: number; pg_cron: boolean }>(
    `select (select count(*)::int from supabase_migrations.schema_migrations) as migrations,
            exists (select 1 from pg_extension where extname = 'pg_cron')
              and to_regclass('cron.job') is not null as pg_cron`,
  );
  // cron.job exists only where pg_cron does, so it is named only after that check.
  const jobs = row.pg_cron
    ? await q.query<ScheduledJobRow>(
      `select jobname::text as name, schedule, active from cron.job where jobname = any($1::text[]) order by jobid`,
      [SCHEDULED_JOBS.map((j) => j.name)],
    )
    : [];
  return { migrations: row.migrations, pgCron: row.pg_cron, jobs };
}
