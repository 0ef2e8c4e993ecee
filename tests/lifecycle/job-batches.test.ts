/**
 * The expiry and purge jobs work in bounded batches: each run takes at most
 * private.settings.job_batch_size secrets, the next run takes the rest, and every secret
 * still gets exactly one expired (or purged) audit row. The batch size is database-wide, so
 * on PostgreSQL this suite runs in a database of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditOf, createHarness, type Harness } from "../helpers/harness.ts";

let h: Harness;
beforeAll(async () => {
  h = await createHarness({ isolatedDatabase: true });
  await h.db.query(`update private.settings set job_batch_size = 2`);
});
afterAll(async () => {
  await h?.close();
});

const run = async (job: string) =>
  (await h.db.query<{ n: number }>(`select private.${job}() as n`))[0].n;

describe("job batches", () => {
  it("expiry switches off at most a batch per run, oldest expiry first, with one expired row each", async () => {
    const owner = await h.user();
    const secrets = [await h.createSecret(owner), await h.createSecret(owner), await h.createSecret(owner)];
    const ids = secrets.map((s) => s.id);
    await h.db.query(
      `update public.secrets set expires_at = now() - interval '1 hour' * (3 - array_position($1::uuid[], id)) - interval '1 minute'
        where id = any($1::uuid[])`, [ids]);
    expect(await run("deactivate_expired_secrets")).toBe(2);
    const active = await h.db.query<{ id: string }>(`select id from public.secrets where id = any($1::uuid[]) and is_active`, [ids]);
    expect(active).toEqual([{ id: ids[2] }]);
    expect(await run("deactivate_expired_secrets")).toBe(1);
    expect(await run("deactivate_expired_secrets")).toBe(0);
    for (const id of ids) {
      expect((await auditOf(h.db, id)).filter((a) => a.action === "expired"), id).toHaveLength(1);
    }
  });

  it("the purge removes at most a batch per run, and the next run the rest", async () => {
    const owner = await h.user();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const s = await h.createSecret(owner);
      expect((await h.request("DELETE", `/${s.id}`, { token: owner.token })).status).toBeLessThan(300);
      ids.push(s.id);
    }
    await h.db.query(`update public.secrets set deleted_at = now() - interval '8 days' where id = any($1::uuid[])`, [ids]);
    const [{ result }] = await h.db.query<{ result: { purged: number } }>(`select private.run_scheduled_jobs() as result`);
    expect(result.purged).toBe(2);
    expect(await h.db.query(`select 1 from public.secrets where id = any($1::uuid[])`, [ids])).toHaveLength(1);
    expect(await run("purge_deleted_secrets")).toBe(1);
    expect(await run("purge_deleted_secrets")).toBe(0);
    for (const id of ids) {
      expect((await auditOf(h.db, id)).filter((a) => a.action === "purged"), id).toHaveLength(1);
    }
  });
});
