/**
 * What a transaction-mode pooler (Supavisor :6543 hosted, PgBouncer here) demands: every piece
 * of caller state lives and dies with its transaction, because the next transaction may run
 * on another server connection, and this one may serve another client next. Checked on every
 * database (PGlite, PostgreSQL, PostgreSQL behind PgBouncer); behind the pooler, the API
 * suites run the same way (`scripts/pgbouncer.sh`, SIGYL_DB_PREPARE=false).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { asCaller, asOwner, type Database } from "../../shared/db/database.ts";
import { openApiTestDatabase } from "../helpers/harness.ts";

const sessionState = `select current_user::text as "user",
  coalesce(current_setting('request.jwt.claims', true), '') as claims,
  coalesce(current_setting('request.headers', true), '') as headers`;

describe("caller state is transaction-local, as a transaction pooler needs", () => {
  let db: Database;
  let owner: string;
  beforeAll(async () => {
    db = await openApiTestDatabase();
    [{ user: owner }] = await db.query<{ user: string }>(`select current_user::text as "user"`);
  });

  it("outside a caller's transaction the service is the function's login, sigyl_api", () => {
    expect(owner).toBe("sigyl_api");
  });
  afterAll(async () => {
    await db?.close();
  });

  it("inside the transaction the caller is set; after it, nothing of it is left for the next", async () => {
    const caller = { role: "authenticated" as const, claims: { sub: crypto.randomUUID(), role: "authenticated" }, headers: { "x-request-id": "r1" } };
    for (let i = 0; i < 20; i++) {
      const inside = await asCaller(db, caller, (tx) => tx.query<{ user: string; claims: string }>(sessionState));
      expect(inside[0].user).toBe("authenticated");
      expect(JSON.parse(inside[0].claims)).toEqual(caller.claims);
      const [after] = await db.query<{ user: string; claims: string; headers: string }>(sessionState);
      expect(after).toEqual({ user: owner, claims: "", headers: "" });
    }
  });

  it("a failed transaction leaves nothing behind either", async () => {
    const caller = { role: "service_role" as const, claims: { role: "service_role" }, headers: {} };
    await expect(asCaller(db, caller, (tx) => tx.query(`select 1/0`))).rejects.toThrow();
    const [after] = await db.query<{ user: string; claims: string }>(sessionState);
    expect(after).toMatchObject({ user: owner, claims: "" });
  });

  it("the owner's context for KEK management is transaction-local too", async () => {
    const caller = { role: "service_role" as const, claims: { role: "service_role" }, headers: { "x-request-id": "r2" } };
    const inside = await asOwner(db, caller, (tx) => tx.query<{ claims: string }>(sessionState));
    expect(JSON.parse(inside[0].claims)).toEqual(caller.claims);
    const [after] = await db.query<{ claims: string }>(sessionState);
    expect(after.claims).toBe("");
  });
});
