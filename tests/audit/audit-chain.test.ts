/**
 * Tamper evidence: every audit row is hash-chained to the previous row of its chain, and
 * verification (`GET/POST /admin/audit/verify`) recomputes the chains. The table owner, with
 * every trigger bypassed, deletes, edits, reorders and truncates rows; each is reported with
 * its first broken link (chain and id). Each case starts from the clean trail and puts it back.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuditService } from "../../shared/audit/audit-service.ts";
import { createHarness, type Harness, type TestUser, usingPostgres } from "../helpers/harness.ts";
import { itOrSkip, needsPostgres } from "../helpers/skip.ts";
import { copyTrail, longestChain, restoreTrail, tamper, type TrailCopy } from "./trail.ts";

let h: Harness;
let service: string;
let owner: TestUser;
let secret: { id: string };

beforeAll(async () => {
  h = await createHarness({ isolatedDatabase: true });
  service = await h.serviceToken();
  owner = await h.user("owner");
  secret = await h.createSecret(owner);
  const other = await h.createSecret(owner);
  await h.request("PATCH", `/${other.id}`, { token: owner.token, body: { description: "edited" } });
  await reads(24);
});

afterAll(async () => {
  await h?.close();
});

/** Value reads in parallel: on PostgreSQL they run on several connections, so several chains. */
async function reads(n: number) {
  const res = await Promise.all(Array.from({ length: n }, () => h.request("GET", `/${secret.id}/value`, { token: owner.token })));
  expect(res.map((r) => r.status)).toEqual(Array(n).fill(200));
}

async function verify(checkpoint?: unknown[]) {
  const res = checkpoint
    ? await h.request("POST", "/admin/audit/verify", { token: service, body: { checkpoint } })
    : await h.request("GET", "/admin/audit/verify", { token: service });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.data;
}

const rowCount = async () => Number((await h.db.query<{ n: number }>(`select count(*)::int as n from public.secret_access_logs`))[0].n);

/** Tampers, checks what verification says, puts the trail back and checks it verifies again. */
async function afterTampering(doIt: () => Promise<void>, check: (result: any) => void | Promise<void>) {
  const clean: TrailCopy = await copyTrail(h.db);
  try {
    await doIt();
    await check(await verify());
  } finally {
    await restoreTrail(h.db, clean);
  }
  const again = await verify();
  expect(again.ok, JSON.stringify(again.firstBroken)).toBe(true);
}

describe("an untouched trail", () => {
  it("verifies clean, while many reads insert rows concurrently, and counts every row", async () => {
    const [during] = await Promise.all([verify(), reads(40)]);
    expect(during.ok, JSON.stringify(during.firstBroken)).toBe(true);
    expect(during.firstBroken).toBeNull();

    const after = await verify();
    expect(after).toMatchObject({ ok: true, firstBroken: null, broken: [], brokenCount: 0, checkpointHeads: null });
    expect(after.checkedRows).toBe(await rowCount());
    const chains = await h.db.query<{ chain: number; n: number }>(
      `select chain, count(*)::int as n from public.secret_access_logs group by chain order by chain`,
    );
    expect(chains.every((c) => c.chain !== null)).toBe(true);
    expect(after.heads.map((x: any) => [x.chain, x.rowCount])).toEqual(chains.map((c) => [c.chain, c.n]));
    for (const head of after.heads) expect(head.lastHash).toMatch(/^[0-9a-f]{64}$/);
    // One backend per connection: parallel reads on PostgreSQL use several, and none waited for another's chain.
    if (usingPostgres) expect(after.heads.length).toBeGreaterThan(1);
  });

  it("gives every row the next position of its chain, whatever the inserter supplied", async () => {
    // An owner's plain insert (triggers on) that names a chain, position and hash of its own.
    await h.db.query(
      `insert into public.secret_access_logs (actor_type, action, chain, chain_seq, chain_hash)
       values ('system', 'accessed', -7, 1, '\\x00')`,
    );
    const [row] = await h.db.query<{ chain: number; seq: number; hash: string; head_count: number; head_hash: string }>(
      `select l.chain, l.chain_seq::int as seq, encode(l.chain_hash, 'hex') as hash,
              hd.row_count::int as head_count, encode(hd.last_hash, 'hex') as head_hash
         from public.secret_access_logs l join private.audit_chains hd on hd.chain = l.chain
        order by l.id desc limit 1`,
    );
    expect(row.chain).not.toBe(-7);
    expect(row.hash).toMatch(/^[0-9a-f]{64}$/);
    expect([row.seq, row.hash]).toEqual([row.head_count, row.head_hash]);
    expect((await verify()).ok).toBe(true);
  });
});

describe("the table owner with triggers bypassed", () => {
  it("deletes a row in the middle of a chain: reported at the next row of that chain", async () => {
    const chain = await longestChain(h.db);
    expect(chain.length).toBeGreaterThanOrEqual(4);
    await afterTampering(
      () => tamper(h.db, `delete from public.secret_access_logs where id = $1::bigint`, [chain[1].id]),
      (r) => {
        expect(r.ok).toBe(false);
        expect(r.firstBroken).toEqual({ chain: chain[0].chain, id: chain[2].id, reason: "rows_missing" });
        expect(r.brokenCount).toBe(1);
      },
    );
  });

  it("edits one field of a row: reported at that row", async () => {
    const chain = await longestChain(h.db);
    await afterTampering(
      () => tamper(h.db, `update public.secret_access_logs set ip = '198.51.100.7' where id = $1::bigint`, [chain[1].id]),
      (r) => {
        expect(r.firstBroken).toEqual({ chain: chain[0].chain, id: chain[1].id, reason: "altered" });
        expect(r.brokenCount).toBe(1);
      },
    );
  });

  it("edits only the details of the oldest row: reported at that row", async () => {
    const chain = await longestChain(h.db);
    await afterTampering(
      () => tamper(h.db, `update public.secret_access_logs set details = details || '{"note": 1}' where id = $1::bigint`, [chain[0].id]),
      (r) => expect(r.firstBroken).toEqual({ chain: chain[0].chain, id: chain[0].id, reason: "altered" }),
    );
  });

  it("swaps the contents of two rows (a reorder): reported at the earlier one", async () => {
    const chain = await longestChain(h.db);
    const [a, b] = [chain[1].id, chain[2].id];
    const swap = `update public.secret_access_logs l
         set (secret_id, secret_name, owner_id, actor_id, actor_type, action, version, deployment_id, ip,
              user_agent, request_id, outcome, details, created_at, chain, chain_seq, chain_hash)
           = (select o.secret_id, o.secret_name, o.owner_id, o.actor_id, o.actor_type, o.action, o.version,
                     o.deployment_id, o.ip, o.user_agent, o.request_id, o.outcome, o.details, o.created_at,
                     o.chain, o.chain_seq, o.chain_hash
                from public.secret_access_logs o where o.id = case when l.id = $1::bigint then $2::bigint else $1::bigint end)
       where l.id in ($1::bigint, $2::bigint)`;
    await afterTampering(
      () => tamper(h.db, swap, [a, b]),
      (r) => expect(r.firstBroken).toEqual({ chain: chain[0].chain, id: a, reason: "out_of_order" }),
    );
  });

  it("swaps the contents of two rows but keeps each row's chain fields: reported at the earlier one", async () => {
    const chain = await longestChain(h.db);
    const [a, b] = [chain[1].id, chain[2].id];
    const swap = `update public.secret_access_logs l
         set (action, created_at, request_id) = (select o.action, o.created_at, o.request_id from public.secret_access_logs o
               where o.id = case when l.id = $1::bigint then $2::bigint else $1::bigint end)
       where l.id in ($1::bigint, $2::bigint)`;
    // Two rows of the same kind would swap into themselves: make sure they differ.
    const [ra, rb] = await h.db.query<{ request_id: string | null }>(
      `select request_id from public.secret_access_logs where id in ($1::bigint, $2::bigint) order by id`, [a, b],
    );
    expect(ra.request_id).not.toBe(rb.request_id);
    await afterTampering(
      () => tamper(h.db, swap, [a, b]),
      (r) => expect(r.firstBroken).toEqual({ chain: chain[0].chain, id: a, reason: "altered" }),
    );
  });

  it("deletes the newest rows of a chain: reported at the chain's head, the newest row it records", async () => {
    const chain = await longestChain(h.db);
    const last = chain[chain.length - 1];
    await afterTampering(
      () => tamper(h.db, `delete from public.secret_access_logs where chain = $1::int and id >= $2::bigint`, [last.chain, chain[chain.length - 2].id]),
      (r) => {
        expect(r.firstBroken).toEqual({ chain: last.chain, id: last.id, reason: "rows_missing" });
        expect(r.brokenCount).toBe(1);
      },
    );
  });

  it("truncates the table: every chain reported, the first at its first row", async () => {
    const heads = (await verify()).heads;
    const first = [...heads].sort((x: any, y: any) => Number(BigInt(x.firstId) - BigInt(y.firstId)))[0];
    await afterTampering(
      () => tamper(h.db, `truncate public.secret_access_logs`),
      (r) => {
        expect(r.checkedRows).toBe(0);
        expect(r.firstBroken).toEqual({ chain: first.chain, id: first.firstId, reason: "rows_missing" });
        expect(r.brokenCount).toBe(heads.length);
        expect(r.broken.map((b: any) => b.reason)).toEqual(Array(heads.length).fill("rows_missing"));
      },
    );
  });

  it("deletes every row and every head: the rows are gone, but the checkpoint says so", async () => {
    const checkpoint = (await verify()).heads;
    await afterTampering(
      async () => {
        await tamper(h.db, `delete from public.secret_access_logs`);
        await tamper(h.db, `delete from private.audit_chains`);
      },
      async (r) => {
        expect(r.ok).toBe(true); // nothing left inside the database to disagree
        const against = await verify(checkpoint);
        expect(against.ok).toBe(false);
        expect(against.brokenCount).toBe(checkpoint.length);
        expect(against.broken.every((b: any) => b.reason === "checkpoint_mismatch")).toBe(true);
      },
    );
  });

  it("inserts a row with the chain trigger off: reported as outside every chain", async () => {
    await afterTampering(
      () => tamper(h.db, `insert into public.secret_access_logs (actor_type, action) values ('system', 'accessed')`),
      async (r) => {
        const [row] = await h.db.query<{ id: string }>(`select max(id)::text as id from public.secret_access_logs`);
        expect(r.firstBroken).toEqual({ chain: null, id: row.id, reason: "unchained" });
      },
    );
  });

  it("deletes a chain's head: reported at that chain's last row", async () => {
    const chain = await longestChain(h.db);
    const last = chain[chain.length - 1];
    await afterTampering(
      () => tamper(h.db, `delete from private.audit_chains where chain = $1::int`, [last.chain]),
      (r) => expect(r.firstBroken).toEqual({ chain: last.chain, id: last.id, reason: "head_missing" }),
    );
  });

  it("rewrites a row and every later hash and the head consistently: only a checkpoint from before catches it", async () => {
    const checkpoint = (await verify()).heads;
    const chain = await longestChain(h.db);
    const c = chain[0].chain;
    const head = checkpoint.find((x: any) => x.chain === c);
    await afterTampering(
      () =>
        tamper(h.db, `
          do $rewrite$
          declare
            r public.secret_access_logs;
            prev bytea := (select chain_hash from public.secret_access_logs where id = ${BigInt(chain[0].id)});
          begin
            update public.secret_access_logs set ip = '203.0.113.66' where id = ${BigInt(chain[1].id)};
            for r in select * from public.secret_access_logs where chain = ${c} and id > ${BigInt(chain[0].id)} order by id loop
              prev := private.audit_link(prev, r.chain_seq, r);
              update public.secret_access_logs set chain_hash = prev where id = r.id;
            end loop;
            update private.audit_chains set last_hash = prev where chain = ${c};
          end
          $rewrite$`),
      async (r) => {
        expect(r.ok).toBe(true); // consistent: the database alone cannot tell
        const against = await verify(checkpoint);
        expect(against.ok).toBe(false);
        expect(against.firstBroken).toEqual({ chain: c, id: head.lastId, reason: "checkpoint_mismatch" });
        expect(against.checkpointHeads).toBe(checkpoint.length);
      },
    );
  });

  it("an untouched trail matches its own checkpoint, and a later one after more rows", async () => {
    const checkpoint = (await verify()).heads;
    await reads(5);
    const r = await verify(checkpoint);
    expect(r).toMatchObject({ ok: true, brokenCount: 0, checkpointHeads: checkpoint.length });
  });
});

describe("a bounded number of chains", () => {
  it("every row is in one of 256 chains, its backend's pid modulo 256, and there are at most 256 heads", async () => {
    await reads(10);
    const [r] = await h.db.query<{ bad: number; heads: number; mine: boolean }>(
      `select (select count(*)::int from public.secret_access_logs where chain not between 0 and 255) as bad,
              (select count(*)::int from private.audit_chains) as heads,
              (select private.audit_chain_of(pg_backend_pid()) = pg_backend_pid() % 256) as mine`,
    );
    expect(r).toEqual({ bad: 0, heads: expect.any(Number), mine: true });
    expect(r.heads).toBeLessThanOrEqual(256);
    const heads = (await verify()).heads;
    expect(heads.every((x: any) => x.chain >= 0 && x.chain < 256)).toBe(true);
  });

  it("a row whose id was drawn before its chain's newest (it waited for the chain's lock) gets a new id after it", async () => {
    // As if drawn early: an id below every row of the chain, which the trigger must not keep.
    const [row] = await h.db.query<{ id: string; newest_before: string }>(
      `with before as (select max(id) as m from public.secret_access_logs)
       insert into public.secret_access_logs (id, actor_type, action) overriding system value
       select 1, 'system', 'accessed' from before
       returning id::text as id, (select m::text from before) as newest_before`,
    );
    expect(BigInt(row.id)).toBeGreaterThan(BigInt(row.newest_before));
    expect((await verify()).ok).toBe(true);
  });

  itOrSkip("two transactions on one chain: the second waits for the first to commit, and links after it", needsPostgres, async () => {
    // Two connections of one pool seldom share a chain; a transaction that holds the lock of
    // the other's chain stands in for a colliding backend.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const hasLocked = new Promise<void>((r) => (locked = r));
    const holder = h.db.transaction(async (tx) => {
      // Every chain's lock: whichever backend the next read runs on, it must wait.
      await tx.query(`select pg_advisory_xact_lock(-659277875, c) from generate_series(0, 255) c`);
      await tx.query(`select private.write_audit(null, 'first', null, 'accessed')`);
      locked();
      await gate;
    });
    await hasLocked;
    let done = false;
    const read = h.request("GET", `/${secret.id}/value`, { token: owner.token }).then((r) => ((done = true), r));
    await new Promise((r) => setTimeout(r, 300));
    expect(done).toBe(false);
    release();
    await holder;
    expect((await read).status).toBe(200);
    const r = await verify();
    expect(r.ok, JSON.stringify(r.firstBroken)).toBe(true);
  });
});

describe("verification in bounded calls", () => {
  it("a call stops after its bound and returns a cursor; following it checks every row once, heads on the first call only", async () => {
    const svc = createAuditService({ db: h.db, verifyStepRows: 3, verifyCallRows: 5 });
    const ctx = { role: "service_role", claims: { role: "service_role" }, headers: {} } as const;
    const first = await svc.verify(ctx as any);
    expect(first.finished).toBe(false);
    expect(first.nextCursor).toMatch(/^\d+\.\d*\.[0-9a-f]*\.\d+$/);
    expect(first.heads!.length).toBeGreaterThan(0);
    let total = first.checkedRows;
    let cursor = first.nextCursor;
    let calls = 1;
    while (cursor) {
      const next = await svc.verify(ctx as any, { cursor });
      expect(next.ok).toBe(true);
      expect(next.heads).toBeNull();
      expect(next.checkedRows).toBeLessThanOrEqual(5 + 3);
      total += next.checkedRows;
      cursor = next.nextCursor;
      calls++;
    }
    expect(calls).toBeGreaterThan(2);
    expect(total).toBe(await rowCount());

    // Over HTTP: the cursor goes on from where a call stopped; one the API never gave is 400.
    const res = await h.request("GET", `/admin/audit/verify?cursor=${encodeURIComponent(first.nextCursor!)}`, { token: service });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ ok: true, finished: true, nextCursor: null, heads: null });
    expect(res.body.data.checkedRows).toBe(total - first.checkedRows);
    for (const bad of ["x", "1.2.3.4", "256...0", "-1...0"]) {
      const r = await h.request("GET", `/admin/audit/verify?cursor=${encodeURIComponent(bad)}`, { token: service });
      expect(r.status, bad).toBe(400);
    }
  });

  it("POST /admin/audit/verify ignores an Idempotency-Key: it changes nothing, and a retry runs again", async () => {
    const headers = { "idempotency-key": `verify-${Date.now()}` };
    const a = await h.request("POST", "/admin/audit/verify", { token: service, body: {}, headers });
    expect(a.status).toBe(200);
    await reads(2);
    const b = await h.request("POST", "/admin/audit/verify", { token: service, body: {}, headers });
    expect(b.status).toBe(200);
    expect(b.headers.get("idempotent-replayed")).toBeNull();
    expect(b.body.data.checkedRows).toBe(a.body.data.checkedRows + 2);
    const [{ n }] = await h.db.query<{ n: number }>(`select count(*)::int as n from private.idempotency_keys`);
    expect(n).toBe(0);
  });
});
