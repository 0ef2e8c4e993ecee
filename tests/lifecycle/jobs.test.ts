/**
 * The scheduled jobs as SQL functions: expiry, purge after the recovery window, and trimming
 * pg_cron's history. Each takes the time as a parameter, so these tests move the clock;
 * on a shared PostgreSQL they move it only by backdating their own rows.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditOf, createHarness, type Harness, usingPostgres } from "../helpers/harness.ts";
import { itOrSkip, needsPostgres, skipNow } from "../helpers/skip.ts";

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h?.close();
});

const isActive = async (id: string) =>
  (await h.db.query<{ is_active: boolean }>(`select is_active from public.secrets where id = $1::uuid`, [id]))[0]?.is_active;

describe("expiry", () => {
  const movesEveryClock = usingPostgres ? "moves the clock for every row, which a PostgreSQL shared by the suites cannot allow (runs on PGlite)" : null;
  itOrSkip("at an injected time, switches off what has expired by then, once, audited as the system", movesEveryClock, async () => {
    const owner = await h.user();
    const soon = await h.createSecret(owner, { expiresAt: new Date(Date.now() + 30 * 60_000).toISOString() });
    const later = await h.createSecret(owner, { expiresAt: new Date(Date.now() + 3 * 3600_000).toISOString() });
    const [{ n: before }] = await h.db.query<{ n: number }>(`select private.deactivate_expired_secrets(now()) as n`);
    expect(before).toBe(0);
    const [{ n }] = await h.db.query<{ n: number }>(`select private.deactivate_expired_secrets(now() + interval '1 hour') as n`);
    expect(n).toBe(1);
    expect(await isActive(soon.id)).toBe(false);
    expect(await isActive(later.id)).toBe(true);
    await h.db.query(`select private.deactivate_expired_secrets(now() + interval '1 hour')`);
    const expired = (await auditOf(h.db, soon.id)).filter((a) => a.action === "expired");
    expect(expired).toHaveLength(1);
    expect(expired[0]).toMatchObject({ actor_type: "system", actor_id: null });
    const read = await h.request("GET", `/${soon.id}/value`, { token: owner.token });
    expect(read.status).toBe(410);
    const meta = await h.request("GET", `/${soon.id}`, { token: owner.token });
    expect(meta.status).toBe(200);
    expect(meta.body.data.isActive).toBe(false);
  });

  it("switches off a secret whose expiry has passed and leaves deleted ones alone", async () => {
    const owner = await h.user();
    const s = await h.createSecret(owner, { expiresAt: new Date(Date.now() + 3600_000).toISOString() });
    const gone = await h.createSecret(owner, { expiresAt: new Date(Date.now() + 3600_000).toISOString() });
    await h.request("DELETE", `/${gone.id}`, { token: owner.token });
    await h.db.query(`update public.secrets set expires_at = now() - interval '1 minute' where id = any($1::uuid[])`, [[s.id, gone.id]]);
    await h.db.query(`select private.run_scheduled_jobs()`);
    expect(await isActive(s.id)).toBe(false);
    expect(await isActive(gone.id)).toBe(true);
  });
});

describe("delete, recovery window, purge", () => {
  it("restores within the window, refuses after it, and the purge removes the secret but keeps its trail", async () => {
    const owner = await h.user();
    const reader = await h.user();
    const s = await h.createSecret(owner);
    await h.grant(owner, s.id, reader, "read");
    await h.request("GET", `/${s.id}/value`, { token: owner.token });
    await h.request("DELETE", `/${s.id}`, { token: owner.token });
    await h.db.query(`update public.secrets set deleted_at = now() - interval '6 days' where id = $1::uuid`, [s.id]);
    await h.db.query(`select private.purge_deleted_secrets()`);
    expect((await h.request("POST", `/${s.id}/restore`, { token: owner.token })).status).toBe(200);

    await h.request("DELETE", `/${s.id}`, { token: owner.token });
    await h.db.query(`update public.secrets set deleted_at = now() - interval '7 days 1 minute' where id = $1::uuid`, [s.id]);
    const late = await h.request("POST", `/${s.id}/restore`, { token: owner.token });
    expect(late.status).toBe(410);
    expect(late.body.error.code).toBe("recovery_window_passed");

    const [{ result }] = await h.db.query<{ result: any }>(`select private.run_scheduled_jobs() as result`);
    expect(result.purged).toBeGreaterThanOrEqual(1);
    for (const table of ["secrets", "secret_versions", "secret_permissions"]) {
      const col = table === "secrets" ? "id" : "secret_id";
      expect(await h.db.query(`select 1 from public.${table} where ${col} = $1::uuid`, [s.id]), table).toEqual([]);
    }
    const trail = (await auditOf(h.db, s.id)).map((a) => a.action);
    expect(trail).toEqual(["created", "shared", "accessed", "deleted", "restored", "deleted", "purged"]);
    expect((await h.request("GET", `/${s.id}`, { token: owner.token })).status).toBe(404);
    const mine = await h.request("GET", `/audit?secretId=${s.id}&limit=20`, { token: owner.token });
    expect(mine.body.data.items.map((e: any) => e.action)[0]).toBe("purged");
  });

  it("the recovery window is the operator's setting", async () => {
    const [row] = await h.db.query<{ d: string }>(`select extract(epoch from deleted_retention)::int::text as d from private.settings`);
    expect(row.d).toBe(String(7 * 24 * 3600));
  });
});

describe("pg_cron history", () => {
  itOrSkip("is trimmed past its retention when pg_cron is installed, for our jobs only", needsPostgres, async (ctx) => {
    const [{ cron }] = await h.db.query<{ cron: boolean }>(`select to_regclass('cron.job_run_details') is not null as cron`);
    if (!cron) skipNow(ctx, "pg_cron is not installed in this database (run scripts/setup-postgres.sh)");
    const [ours] = await h.db.query<{ jobid: string }>(`select jobid::text from cron.job where jobname = 'sigyl-trim-job-history'`);
    if (!ours) skipNow(ctx, "the Sigyl jobs are not scheduled in this database (pg_cron does not run here)");
    const tag = `trim-${crypto.randomUUID()}`;
    // Ours, and a job that is not ours (jobid 0: no job of ours has it), both 30 days old.
    await h.db.query(
      `insert into cron.job_run_details (jobid, job_pid, database, username, command, status, return_message, start_time, end_time)
       select j, 0, current_database(), current_user, 'select 1', 'succeeded', $2 || ' ' || j, now() - interval '30 days', now() - interval '30 days'
         from unnest(array[$1::bigint, 0]) j`, [ours.jobid, tag]);
    try {
      const [{ n }] = await h.db.query<{ n: number }>(`select private.trim_job_history() as n`);
      expect(n).toBeGreaterThanOrEqual(1);
      const left = await h.db.query<{ jobid: string }>(`select jobid::text from cron.job_run_details where return_message like $1 || '%'`, [tag]);
      expect(left).toEqual([{ jobid: "0" }]);
    } finally {
      await h.db.query(`delete from cron.job_run_details where return_message like $1 || '%'`, [tag]);
    }
  });

  it("trimming is a no-op where pg_cron is missing", async () => {
    const [{ n }] = await h.db.query<{ n: number }>(`select private.trim_job_history() as n`);
    expect(n).toBeGreaterThanOrEqual(0);
  });
});
