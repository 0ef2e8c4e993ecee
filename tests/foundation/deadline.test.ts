/**
 * The request deadline: a transaction that does not finish within SIGYL_REQUEST_TIMEOUT_MS
 * (connection wait included) answers 503 `database_unavailable`, rolls back, writes nothing,
 * and leaves the pool usable once the database answers again.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../shared/config.ts";
import { asCaller, type Database, OWNER_TIMEOUT_MS, type Queryable, timeoutsFor } from "../../shared/db/database.ts";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";
import { fromDatabaseError } from "../../shared/errors.ts";
import { createRuntime } from "../../shared/runtime.ts";
import { auditOf, createHarness, type Harness, snapshot } from "../helpers/harness.ts";
import { describeOrSkip, needsPostgres } from "../helpers/skip.ts";
import { createTcpProxy } from "../helpers/tcp-proxy.ts";

const caller = { role: "authenticated" as const, claims: { sub: "u" }, headers: {} };

describe("request timeout configuration", () => {
  it("defaults to five seconds", () => {
    expect(loadConfig({}).db.requestTimeoutMs).toBe(5000);
  });

  it("reads SIGYL_REQUEST_TIMEOUT_MS in milliseconds", () => {
    expect(loadConfig({ SIGYL_REQUEST_TIMEOUT_MS: "2500" }).db.requestTimeoutMs).toBe(2500);
  });

  it.each(["abc", "50", "1.5", "600000"])("refuses SIGYL_REQUEST_TIMEOUT_MS=%s", (value) => {
    expect(() => loadConfig({ SIGYL_REQUEST_TIMEOUT_MS: value })).toThrow(/SIGYL_REQUEST_TIMEOUT_MS/);
  });

  it("gives owner transactions (KEK rotation batches) at least thirty seconds", () => {
    expect(timeoutsFor(5000)).toEqual({ requestMs: 5000, ownerMs: OWNER_TIMEOUT_MS });
    expect(timeoutsFor(60_000)).toEqual({ requestMs: 60_000, ownerMs: 60_000 });
  });

  it.each(["57014", "55P03", "25P03"])("answers PostgreSQL's %s as database_unavailable", (code) => {
    expect(fromDatabaseError({ code, message: "timeout" })?.code).toBe("database_unavailable");
  });
});

/** A database whose transactions get a connection, then never hear back. */
function stalledDatabase(requestMs: number) {
  const sent: string[] = [];
  const tx: Queryable = {
    query: (text) => (sent.push(text), new Promise(() => {})),
    exec: () => new Promise(() => {}),
  };
  const db: Database = {
    kind: "postgres", location: "stalled", timeouts: timeoutsFor(requestMs),
    query: () => new Promise(() => {}), exec: () => new Promise(() => {}), close: async () => {},
    transaction: (fn) => fn(tx),
  };
  return { db, sent };
}

describe("the deadline around a transaction", () => {
  it("answers database_unavailable within the budget when the database never answers", async () => {
    const { db } = stalledDatabase(200);
    const started = Date.now();
    await expect(asCaller(db, caller, (tx) => tx.query("select 1"))).rejects.toMatchObject({ code: "database_unavailable", status: 503 });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("sends the timeouts with the context, in the same statement", async () => {
    const { db, sent } = stalledDatabase(300);
    await asCaller(db, caller, (tx) => tx.query("select 1")).catch(() => {});
    expect(sent[0]).toMatch(/^select set_config/);
    expect(sent[0].match(/set_config/g)).toHaveLength(6);
  });

  it("refuses the statements a transaction issues after its deadline", async () => {
    const { db, sent } = stalledDatabase(100);
    let later: Promise<unknown> | null = null;
    await asCaller(db, caller, async (tx) => {
      await new Promise((r) => setTimeout(r, 250));
      later = tx.query("update late");
      return later;
    }).catch(() => {});
    await new Promise((r) => setTimeout(r, 300));
    await expect(later).rejects.toMatchObject({ code: "database_unavailable" });
    expect(sent).not.toContain("update late");
  });

  it("sets no deadline on a database without timeouts (PGlite)", async () => {
    const { db } = stalledDatabase(100);
    const plain = { ...db, timeouts: undefined };
    const outcome = await Promise.race([
      asCaller(plain, caller, (tx) => tx.query("select 1")).then(() => "answered", () => "failed"),
      new Promise((r) => setTimeout(() => r("still waiting"), 300)),
    ]);
    expect(outcome).toBe("still waiting");
  });
});

const BUDGET_MS = 1000;
/** Room for a loaded machine; a call without the deadline waits for as long as the fault lasts. */
const MARGIN_MS = 3000;

describeOrSkip("the request deadline against PostgreSQL", needsPostgres, () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  /** The app over its own pool on `url`, with a one-second budget. */
  async function appOn(url: string) {
    const db = createPostgresDatabase(url, { max: 2, prepare: process.env.SIGYL_DB_PREPARE !== "false", requestTimeoutMs: BUDGET_MS });
    const runtime = await createRuntime({ config: loadConfig({}), db, clock: h.clock, log: () => {} });
    const request = async (method: string, path: string, token: string, body?: unknown) => {
      const res = await runtime.app.request(`/secrets${path}`, {
        method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    };
    return { db, request };
  }

  it("answers 503 within the budget while the database stalls, and serves again when it answers", async () => {
    const owner = await h.user("owner");
    const s = await h.createSecret(owner);
    const proxy = await createTcpProxy(process.env.DATABASE_URL!);
    const { db, request } = await appOn(proxy.urlFor(process.env.DATABASE_URL!));
    try {
      expect((await request("GET", `/${s.id}`, owner.token)).status).toBe(200);
      proxy.stall();
      // More stalled calls than the pool has connections: the last ones wait for one, within the budget too.
      const calls = Array.from({ length: 4 }, async () => {
        const started = Date.now();
        const res = await request("GET", `/${s.id}`, owner.token);
        return { ...res, ms: Date.now() - started };
      });
      for (const res of await Promise.all(calls)) {
        expect(res.status).toBe(503);
        expect(res.body.error.code).toBe("database_unavailable");
        expect(res.ms).toBeLessThan(BUDGET_MS + MARGIN_MS);
      }
      proxy.resume();
      for (let i = 0; i < 4; i++) expect((await request("GET", `/${s.id}`, owner.token)).status).toBe(200);
      const put = await request("PUT", `/${s.id}/value`, owner.token, { value: "after-the-stall-value" });
      h.remember("after-the-stall-value");
      expect(put.status).toBe(200);
    } finally {
      proxy.resume();
      await db.close();
      await proxy.down();
    }
  });

  it("a write waiting on a locked row answers 503 within the lock timeout and writes nothing", async () => {
    const owner = await h.user("owner");
    const s = await h.createSecret(owner);
    const { db, request } = await appOn(process.env.DATABASE_URL!);
    const before = await snapshot(h.db, s.id);
    const auditBefore = await auditOf(h.db, s.id);
    let release!: () => void;
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => locked = r);
    const holder = h.db.transaction(async (tx) => {
      await tx.query(`select 1 from public.secrets where id = $1::uuid for update`, [s.id]);
      locked();
      await new Promise<void>((r) => release = r);
    });
    try {
      await isLocked;
      const started = Date.now();
      h.remember("blocked-by-the-lock-value");
      const res = await request("PUT", `/${s.id}/value`, owner.token, { value: "blocked-by-the-lock-value" });
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe("database_unavailable");
      expect(Date.now() - started).toBeLessThan(BUDGET_MS + MARGIN_MS);
    } finally {
      release();
      await holder;
    }
    expect(await snapshot(h.db, s.id)).toBe(before);
    expect(await auditOf(h.db, s.id)).toEqual(auditBefore);
    // The pool is not left stuck: the same write goes through once the lock is gone.
    const again = await request("PUT", `/${s.id}/value`, owner.token, { value: "blocked-by-the-lock-value" });
    expect(again.status).toBe(200);
    await db.close();
  });
});
