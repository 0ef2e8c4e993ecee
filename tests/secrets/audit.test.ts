/**
 * Every action writes exactly one audit row with the right actor, action and version; value
 * reads and their audit rows come and go together; the trail is append-only and outlives
 * its secret.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditOf, createHarness, type Harness } from "../helpers/harness.ts";

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h?.close();
});

// The left entry is what a client claimed; the right one is what the trusted proxy saw.
// The client's X-Request-Id is ignored: the audit records the server's own id.
const meta = { "x-forwarded-for": "198.51.100.66, 203.0.113.7", "user-agent": "sigyl-tests/1.0", "x-request-id": "forged-request-id" };

describe("audit rows", () => {
  it("each action writes exactly one row with actor, action, version and request facts", async () => {
    const owner = await h.user("owner");
    const bob = await h.user("bob");
    const s = await h.createSecret(owner);
    const steps: [() => Promise<unknown>, string, number | null][] = [
      [() => h.request("GET", `/${s.id}/value`, { token: owner.token, headers: meta }), "accessed", 1],
      [() => h.request("PUT", `/${s.id}/value`, { token: owner.token, body: { value: "second-value-abc" }, headers: meta }), "rotated", 2],
      [() => h.request("PATCH", `/${s.id}`, { token: owner.token, body: { description: "d", tags: ["a"] }, headers: meta }), "updated", 2],
      [() => h.request("PUT", `/${s.id}/permissions`, { token: owner.token, body: { email: bob.email, permission: "read" }, headers: meta }), "shared", 2],
      [() => h.request("PUT", `/${s.id}/permissions`, { token: owner.token, body: { userId: bob.id, permission: "write" }, headers: meta }), "shared", 2],
      [() => h.request("DELETE", `/${s.id}/permissions/${bob.id}`, { token: owner.token, headers: meta }), "unshared", 2],
      [() => h.request("POST", `/${s.id}/versions/1/restore`, { token: owner.token, headers: meta }), "rotated", 3],
      [() => h.request("DELETE", `/${s.id}`, { token: owner.token, headers: meta }), "deleted", 3],
      [() => h.request("POST", `/${s.id}/restore`, { token: owner.token, headers: meta }), "restored", 3],
    ];
    h.remember("second-value-abc");
    const created = await auditOf(h.db, s.id);
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({ action: "created", actor_id: owner.id, actor_type: "user", version: 1, outcome: "success" });
    for (const [call, action, version] of steps) {
      const before = (await auditOf(h.db, s.id)).length;
      const res = (await call()) as { status: number; headers: Headers };
      expect(res.status).toBe(200);
      const serverId = res.headers.get("x-request-id");
      expect(serverId).toMatch(/^[0-9a-f-]{36}$/);
      const rows = await auditOf(h.db, s.id);
      expect(rows.length, action).toBe(before + 1);
      expect(rows.at(-1)).toMatchObject({
        action, version, actor_id: owner.id, actor_type: "user", outcome: "success",
        ip: "203.0.113.7", user_agent: "sigyl-tests/1.0", request_id: serverId,
      });
    }
    const rows = await auditOf(h.db, s.id);
    expect(rows.find((r) => r.action === "updated")?.details).toEqual({ fields: ["description", "tags"] });
    expect(rows.filter((r) => r.action === "shared").map((r) => r.details)).toEqual([
      { grantee: bob.id, permission: "read", previous: null },
      { grantee: bob.id, permission: "write", previous: "read" },
    ]);
    expect(rows.filter((r) => r.action === "rotated").at(-1)?.details).toEqual({ restoredFrom: 1 });
  });

  it("N successful reads write exactly N accessed rows; failed reads write none", async () => {
    const owner = await h.user("owner");
    const user = await h.user("use");
    const s = await h.createSecret(owner);
    await h.grant(owner, s.id, user, "use");
    const N = 7;
    for (let i = 0; i < N; i++) expect((await h.request("GET", `/${s.id}/value`, { token: owner.token })).status).toBe(200);
    const failures = [
      await h.request("GET", `/${s.id}/value`, { token: user.token }), // 403
      await h.request("GET", `/${s.id}/value?version=99`, { token: owner.token }), // 404
      await h.request("GET", `/${s.id}/value`, { token: null }), // 401
      await h.request("GET", `/${s.id}/value?version=x`, { token: owner.token }), // 400
    ];
    expect(failures.map((f) => f.status)).toEqual([403, 404, 401, 400]);
    const rows = await auditOf(h.db, s.id);
    expect(rows.filter((r) => r.action === "accessed")).toHaveLength(N);
    const denied = rows.filter((r) => r.action === "denied");
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({ actor_id: user.id, outcome: "denied", details: { reason: "forbidden" } });
  });

  it("a read whose decryption fails leaves no accessed row and returns a generic 500", async () => {
    const owner = await h.user("owner");
    const s = await h.createSecret(owner);
    // Corrupt the stored ciphertext as an attacker with database access might.
    await h.db.query(
      `update public.secret_versions set wrapped_dek = set_byte(wrapped_dek, 20, (get_byte(wrapped_dek, 20) + 1) % 256)
        where secret_id = $1::uuid`, [s.id]);
    const res = await h.request("GET", `/${s.id}/value`, { token: owner.token });
    expect(res.status).toBe(500);
    expect(res.body.error).toMatchObject({ code: "decryption_failed" });
    expect(JSON.stringify(res.body)).not.toContain(s.value);
    expect((await auditOf(h.db, s.id)).filter((r) => r.action === "accessed")).toHaveLength(0);
    expect(h.logs.some((l) => l.includes("decryption_failed"))).toBe(true);
  });

  it("a ciphertext swapped in from another secret never decrypts", async () => {
    const owner = await h.user("owner");
    const a = await h.createSecret(owner);
    const b = await h.createSecret(owner);
    await h.db.query(
      `update public.secret_versions t set wrapped_dek = s.wrapped_dek, kek_version = s.kek_version
         from public.secret_versions s where s.secret_id = $2::uuid and s.version = 1 and t.secret_id = $1::uuid and t.version = 1`,
      [a.id, b.id]);
    // Replica mode skips the immutability trigger for this transaction only.
    await h.db.transaction(async (tx) => {
      await tx.query(`set local session_replication_role = replica`);
      await tx.query(
        `update public.secret_versions t set iv = s.iv, ciphertext = s.ciphertext
           from public.secret_versions s where s.secret_id = $2::uuid and s.version = 1 and t.secret_id = $1::uuid and t.version = 1`,
        [a.id, b.id]);
    });
    const res = await h.request("GET", `/${a.id}/value`, { token: owner.token });
    expect(res.status).toBe(500);
    expect(JSON.stringify(res.body)).not.toContain(b.value);
  });

  it("the caller's audit view holds its own actions and events on secrets it administers, not others'", async () => {
    const owner = await h.user("owner");
    const admin = await h.user("admin");
    const reader = await h.user("reader");
    const s = await h.createSecret(owner);
    await h.grant(owner, s.id, admin, "admin");
    await h.grant(owner, s.id, reader, "read");
    await h.request("GET", `/${s.id}/value`, { token: reader.token });
    await h.request("GET", `/${s.id}/value`, { token: owner.token });

    const ofReader = (await h.request("GET", `/audit?secretId=${s.id}`, { token: reader.token })).body.data.items;
    expect(ofReader.map((e: any) => e.action)).toEqual(["accessed"]);
    expect(ofReader[0].actorId).toBe(reader.id);

    const ofAdmin = (await h.request("GET", `/audit?secretId=${s.id}&limit=200`, { token: admin.token })).body.data.items;
    expect(ofAdmin.filter((e: any) => e.action === "accessed")).toHaveLength(2);

    const stranger = await h.user("stranger");
    expect((await h.request("GET", `/audit?secretId=${s.id}`, { token: stranger.token })).body.data.items).toEqual([]);
  });

  it("filters by action and time and pages with a cursor, newest first", async () => {
    const owner = await h.user("owner");
    const s = await h.createSecret(owner);
    for (let i = 0; i < 5; i++) await h.request("GET", `/${s.id}/value`, { token: owner.token });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = `/${s.id}/audit?action=accessed&limit=2${cursor ? `&cursor=${cursor}` : ""}`;
      const res = await h.request("GET", q, { token: owner.token });
      expect(res.status).toBe(200);
      seen.push(...res.body.data.items.map((e: any) => e.id));
      cursor = res.body.data.nextCursor;
    } while (cursor);
    expect(seen).toHaveLength(5);
    expect([...seen].sort((a, b) => Number(b) - Number(a))).toEqual(seen);
    const future = new Date(Date.now() + 3600_000).toISOString();
    expect((await h.request("GET", `/${s.id}/audit?since=${encodeURIComponent(future)}`, { token: owner.token })).body.data.items).toEqual([]);
    expect((await h.request("GET", `/${s.id}/audit?action=nonsense`, { token: owner.token })).status).toBe(400);
  });

  it("audit rows are append-only, even for the database owner", async () => {
    const owner = await h.user("owner");
    const s = await h.createSecret(owner);
    await expect(h.db.query(`update public.secret_access_logs set action = 'accessed' where secret_id = $1::uuid`, [s.id])).rejects.toThrow(/append-only/);
    await expect(h.db.query(`delete from public.secret_access_logs where secret_id = $1::uuid`, [s.id])).rejects.toThrow(/append-only/);
    expect(await auditOf(h.db, s.id)).toHaveLength(1);
  });

  it("the trail outlives its secret", async () => {
    const owner = await h.user("owner");
    const s = await h.createSecret(owner);
    await h.request("GET", `/${s.id}/value`, { token: owner.token });
    await h.db.query(`delete from public.secrets where id = $1::uuid`, [s.id]);
    const rows = await auditOf(h.db, s.id);
    expect(rows.map((r) => r.action)).toEqual(["created", "accessed", "purged"]);
    const mine = (await h.request("GET", `/audit?secretId=${s.id}`, { token: owner.token })).body.data.items;
    expect(mine.map((e: any) => e.action)).toEqual(["purged", "accessed", "created"]);
    expect(mine[0].secretName).toBe(s.name);
  });
});
