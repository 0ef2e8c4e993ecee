/**
 * The real pg_cron run: a secret expiring now is switched off by the scheduled job, not by
 * the test calling the job function. Runs where the database has pg_cron attached (CI,
 * scripts/setup-postgres.sh); elsewhere it says why it is skipped.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";
import { auditOf, createHarness, type Harness } from "../helpers/harness.ts";
import { eventually } from "../helpers/processes.ts";
import { describeOrSkip } from "../helpers/skip.ts";

async function cronReason(): Promise<string | null> {
  if (!process.env.DATABASE_URL) return "needs DATABASE_URL (PostgreSQL with pg_cron)";
  const db = createPostgresDatabase(process.env.DATABASE_URL, { max: 1 });
  try {
    const [row] = await db.query<{ ext: boolean; target: string | null; current: string }>(
      `select exists (select 1 from pg_extension where extname = 'pg_cron') as ext,
              current_setting('cron.database_name', true) as target, current_database() as current`);
    if (!row.ext) return "pg_cron is not installed in this database (run scripts/setup-postgres.sh)";
    if (row.target !== row.current) return `pg_cron schedules jobs in ${row.target}, not ${row.current}`;
    return null;
  } finally {
    await db.close();
  }
}

describeOrSkip("pg_cron", await cronReason(), () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("the scheduled job deactivates a secret that expires now and audits it once, as the system", async () => {
    const [job] = await h.db.query<{ schedule: string; active: boolean }>(
      `select schedule, active from cron.job where jobname = 'sigyl-expire-secrets'`);
    expect(job).toEqual({ schedule: "* * * * *", active: true });

    const owner = await h.user();
    const s = await h.createSecret(owner, { expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
    // It expires now (set in SQL: an expiry a few seconds ahead could pass before a slow create).
    await h.db.query(`update public.secrets set expires_at = now() where id = $1::uuid`, [s.id]);
    const started = new Date();
    const off = await eventually(async () => {
      const [row] = await h.db.query<{ is_active: boolean }>(`select is_active from public.secrets where id = $1::uuid`, [s.id]);
      return row.is_active ? undefined : row;
    }, 90_000, 1000);
    expect(off.is_active).toBe(false);
    const expired = (await auditOf(h.db, s.id)).filter((a) => a.action === "expired");
    expect(expired).toHaveLength(1);
    expect(expired[0]).toMatchObject({ actor_type: "system", actor_id: null });
    // The scheduler records a run's end in a transaction of its own, after the job's commit.
    const succeeded = await eventually(async () => {
      const runs = await h.db.query<{ status: string }>(
        `select d.status from cron.job_run_details d join cron.job j using (jobid)
          where j.jobname = 'sigyl-expire-secrets' and d.start_time >= $1::timestamptz and d.status = 'succeeded'`,
        [started.toISOString()]);
      return runs.length ? runs : undefined;
    }, 15_000, 250);
    expect(succeeded.length).toBeGreaterThan(0);
  }, 120_000);
});
