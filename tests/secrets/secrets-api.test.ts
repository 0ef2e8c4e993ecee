/**
 * Behaviour of the secrets API beyond authorisation: create and list, metadata, values and
 * versions with check-and-set, roll back, delete and restore, grants, limits.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditOf, createHarness, type Harness, snapshot } from "../helpers/harness.ts";

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h?.close();
});

describe("creating and reading", () => {
  it("stores a secret, returns metadata without the value, and gives the value back only from /value", async () => {
    const owner = await h.user();
    const value = "postgres://app:p@ss w0rd@db.internal:5432/app?sslmode=require";
    h.remember(value);
    const res = await h.request("POST", "", {
      token: owner.token,
      body: { name: "DATABASE_URL", value, secretType: "database_url", description: "main db", tags: ["prod", "db"] },
    });
    expect(res.status).toBe(201);
    expect(res.headers.get("etag")).toBe('"1"');
    expect(res.headers.get("location")).toBe(`/secrets/${res.body.data.id}`);
    expect(res.body.data).toMatchObject({
      name: "DATABASE_URL", secretType: "database_url", description: "main db", tags: ["prod", "db"],
      ownerId: owner.id, permission: "owner", currentVersion: 1, status: "active", isActive: true, expiresAt: null, deletedAt: null,
    });
    expect(JSON.stringify(res.body)).not.toContain(value);
    const id = res.body.data.id;

    const meta = await h.request("GET", `/${id}`, { token: owner.token });
    expect(meta.status).toBe(200);
    expect(meta.headers.get("etag")).toBe('"1"');
    expect(JSON.stringify(meta.body)).not.toContain(value);

    const read = await h.request("GET", `/${id}/value`, { token: owner.token });
    expect(read.status).toBe(200);
    expect(read.headers.get("cache-control")).toBe("no-store");
    expect(read.body.data).toEqual({ id, version: 1, value });
  });

  it("refuses a second live secret with the same name (409), allows it for another owner", async () => {
    const a = await h.user();
    const b = await h.user();
    const s = await h.createSecret(a, { name: "SAME_NAME" });
    const again = await h.request("POST", "", { token: a.token, body: { name: "SAME_NAME", value: "another-value" } });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("name_taken");
    expect((await h.request("POST", "", { token: b.token, body: { name: "SAME_NAME", value: "b-value-123" } })).status).toBe(201);
    h.remember("b-value-123");
    expect((await h.request("GET", `?prefix=SAME_NAME`, { token: a.token })).body.data.items.map((x: any) => x.id)).toEqual([s.id]);
  });

  it("enforces the limits with a clear 400 and writes nothing", async () => {
    const owner = await h.user();
    const cases: Record<string, unknown>[] = [
      { name: "", value: "v" },
      { name: "1starts_with_digit", value: "v" },
      { name: "a".repeat(129), value: "v" },
      { name: "has space", value: "v" },
      { name: "OK", value: "" },
      { name: "OK", value: "x".repeat(64 * 1024 + 1) },
      { name: "OK", value: "é".repeat(32 * 1024 + 1) },
      { name: "OK", value: "v", tags: Array.from({ length: 21 }, (_, i) => `t${i}`) },
      { name: "OK", value: "v", tags: ["x".repeat(65)] },
      { name: "OK", value: "v", description: "d".repeat(1001) },
      { name: "OK", value: "v", expiresAt: new Date(Date.now() - 1000).toISOString() },
      { name: "OK", value: "v", expiresAt: "tomorrow" },
      { name: "OK", value: "v", secretType: "password" },
      { name: "OK", value: "v", extra: true },
      { name: "OK", value: "v", ownerId: owner.id },
    ];
    for (const body of cases) {
      const res = await h.request("POST", "", { token: owner.token, body });
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(res.body.error.code).toBe("invalid_request");
      expect(typeof res.body.error.message).toBe("string");
    }
    const [{ n }] = await h.db.query<{ n: number }>(`select count(*)::int as n from public.secrets where user_id = $1::uuid`, [owner.id]);
    expect(n).toBe(0);
    expect((await h.request("POST", "", { token: owner.token, body: { name: "_ok.name-1", value: "x".repeat(64 * 1024) } })).status).toBe(201);
  });

  it("rejects a body over 128 KiB with 413 and malformed JSON with 400", async () => {
    const owner = await h.user();
    const big = await h.request("POST", "", { token: owner.token, rawBody: JSON.stringify({ name: "BIG", value: "x".repeat(130 * 1024) }), headers: { "content-type": "application/json" } });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe("payload_too_large");
    const bad = await h.request("POST", "", { token: owner.token, rawBody: "{not json", headers: { "content-type": "application/json" } });
    expect(bad.status).toBe(400);
    expect(bad.body.success).toBe(false);
  });

  it("sends security headers on every response, errors included", async () => {
    for (const res of [await h.request("GET", "/health"), await h.request("GET", "", { token: null })]) {
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("x-frame-options")).toBe("SAMEORIGIN");
      expect(res.headers.get("strict-transport-security")).toContain("max-age=");
      expect(res.headers.get("x-request-id")).toBeTruthy();
    }
  });
});

describe("ids", () => {
  it("an id spelled in upper case names the same secret and seals nothing unreadable", async () => {
    const owner = await h.user();
    const s = await h.createSecret(owner);
    h.remember("upper-case-path-value");
    const put = await h.request("PUT", `/${s.id.toUpperCase()}/value`, { token: owner.token, body: { value: "upper-case-path-value" } });
    expect(put.status).toBe(200);
    expect(put.body.data.id).toBe(s.id);
    for (const id of [s.id, s.id.toUpperCase()]) {
      const read = await h.request("GET", `/${id}/value`, { token: owner.token });
      expect(read.status).toBe(200);
      expect(read.body.data).toEqual({ id: s.id, version: 2, value: "upper-case-path-value" });
    }
  });
});

describe("listing", () => {
  it("filters by type, tag, prefix and activity, and pages with a cursor", async () => {
    const owner = await h.user();
    const mk = (name: string, extra: Record<string, unknown> = {}) => h.createSecret(owner, { name, ...extra });
    await mk("API_A", { secretType: "api_key", tags: ["prod"] });
    await mk("API_B", { secretType: "api_key", tags: ["dev"] });
    await mk("DB_A", { secretType: "database_url", tags: ["prod"] });
    const off = await mk("OFF_A");
    await h.request("PATCH", `/${off.id}`, { token: owner.token, body: { isActive: false } });
    const names = async (q: string) => (await h.request("GET", q, { token: owner.token })).body.data.items.map((s: any) => s.name);
    expect(await names("?type=api_key")).toEqual(["API_A", "API_B"]);
    expect(await names("?tag=prod")).toEqual(["API_A", "DB_A"]);
    expect(await names("?prefix=API_")).toEqual(["API_A", "API_B"]);
    expect(await names("?prefix=%25")).toEqual([]);
    expect(await names("")).toEqual(["API_A", "API_B", "DB_A"]);
    expect(await names("?includeInactive=true")).toEqual(["API_A", "API_B", "DB_A", "OFF_A"]);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: any = await h.request("GET", `?includeInactive=true&limit=1${cursor ? `&cursor=${cursor}` : ""}`, { token: owner.token });
      seen.push(...res.body.data.items.map((s: any) => s.name));
      cursor = res.body.data.nextCursor;
    } while (cursor);
    expect(seen).toEqual(["API_A", "API_B", "DB_A", "OFF_A"]);
    expect((await h.request("GET", "?cursor=garbage", { token: owner.token })).status).toBe(400);
    expect((await h.request("GET", "?limit=1000", { token: owner.token })).status).toBe(400);
  });
});

describe("values and versions", () => {
  it("check-and-set: a stale expected version gets 409 and writes nothing", async () => {
    const owner = await h.user();
    const s = await h.createSecret(owner);
    h.remember("value-two-xyz");
    const ok = await h.request("PUT", `/${s.id}/value`, { token: owner.token, body: { value: "value-two-xyz", expectedVersion: 1 } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("etag")).toBe('"2"');
    const before = await snapshot(h.db, s.id);
    const stale = await h.request("PUT", `/${s.id}/value`, { token: owner.token, body: { value: "value-stale" }, headers: { "if-match": '"1"' } });
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe("version_conflict");
    expect(await snapshot(h.db, s.id)).toBe(before);
    expect((await h.request("GET", `/${s.id}/value`, { token: owner.token })).body.data).toMatchObject({ version: 2, value: "value-two-xyz" });
    expect((await h.request("GET", `/${s.id}/value?version=1`, { token: owner.token })).body.data).toMatchObject({ version: 1, value: s.value });
  });

  it("20 concurrent writers with the same expected version: one wins, 19 get 409, versions stay contiguous", async () => {
    const owner = await h.user();
    const s = await h.createSecret(owner);
    const values = Array.from({ length: 20 }, (_, i) => `concurrent-${i}-${crypto.randomUUID()}`);
    values.forEach(h.remember);
    const results = await Promise.all(values.map((value) =>
      h.request("PUT", `/${s.id}/value`, { token: owner.token, body: { value, expectedVersion: 1 } })));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((x) => x === 200)).toHaveLength(1);
    expect(statuses.filter((x) => x === 409)).toHaveLength(19);
    const versions = await h.db.query<{ version: number }>(`select version from public.secret_versions where secret_id = $1::uuid order by version`, [s.id]);
    expect(versions.map((v) => v.version)).toEqual([1, 2]);
    const winner = values[results.findIndex((r) => r.status === 200)];
    expect((await h.request("GET", `/${s.id}/value`, { token: owner.token })).body.data.value).toBe(winner);
    expect((await auditOf(h.db, s.id)).filter((a) => a.action === "rotated")).toHaveLength(1);
  });

  it("without an expected version, concurrent writes all land as contiguous versions", async () => {
    const owner = await h.user();
    const s = await h.createSecret(owner);
    const values = Array.from({ length: 8 }, (_, i) => `free-${i}-${crypto.randomUUID()}`);
    values.forEach(h.remember);
    const results = await Promise.all(values.map((value) => h.request("PUT", `/${s.id}/value`, { token: owner.token, body: { value } })));
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(200));
    const versions = await h.db.query<{ version: number }>(`select version from public.secret_versions where secret_id = $1::uuid order by version`, [s.id]);
    expect(versions.map((v) => v.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("rolls back to version n as a new version holding n's value, and lists versions without values", async () => {
    const owner = await h.user();
    const s = await h.createSecret(owner);
    h.remember("rollback-v2-value");
    await h.request("PUT", `/${s.id}/value`, { token: owner.token, body: { value: "rollback-v2-value" } });
    const rb = await h.request("POST", `/${s.id}/versions/1/restore`, { token: owner.token, body: { expectedVersion: 2 } });
    expect(rb.status).toBe(200);
    expect(rb.body.data.currentVersion).toBe(3);
    expect((await h.request("GET", `/${s.id}/value`, { token: owner.token })).body.data).toMatchObject({ version: 3, value: s.value });
    const versions = await h.request("GET", `/${s.id}/versions`, { token: owner.token });
    expect(versions.body.data.map((v: any) => [v.version, v.restoredFrom, v.current])).toEqual([[3, 1, true], [2, null, false], [1, null, false]]);
    expect(JSON.stringify(versions.body)).not.toMatch(/rollback-v2-value|ciphertext|wrapped/);
    expect((await h.request("POST", `/${s.id}/versions/9/restore`, { token: owner.token })).status).toBe(404);
    expect((await h.request("POST", `/${s.id}/versions/1/restore`, { token: owner.token, body: { expectedVersion: 1 } })).status).toBe(409);
  });

  it("an inactive or expired secret keeps its metadata but its value is gone (410)", async () => {
    const owner = await h.user();
    const s = await h.createSecret(owner, { expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
    expect((await h.request("GET", `/${s.id}/value`, { token: owner.token })).status).toBe(200);
    // Its expiry passes (moved into the past in SQL rather than waited for, so a slow machine
    // cannot see it expire before the first read).
    await h.db.query(`update public.secrets set expires_at = now() - interval '1 second' where id = $1::uuid`, [s.id]);
    const expired = await h.request("GET", `/${s.id}/value`, { token: owner.token });
    expect(expired.status).toBe(410);
    expect(expired.body.error.code).toBe("secret_expired");
    expect((await h.request("GET", `/${s.id}`, { token: owner.token })).body.data.status).toBe("expired");

    const t = await h.createSecret(owner);
    await h.request("PATCH", `/${t.id}`, { token: owner.token, body: { isActive: false } });
    const inactive = await h.request("GET", `/${t.id}/value`, { token: owner.token });
    expect(inactive.status).toBe(410);
    expect(inactive.body.error.code).toBe("secret_inactive");
  });
});

describe("delete and restore", () => {
  it("soft-deletes, hides from lists, frees the name, and restores unless the name was taken", async () => {
    const owner = await h.user();
    const reader = await h.user();
    const s = await h.createSecret(owner, { name: "RECOVER_ME" });
    await h.grant(owner, s.id, reader, "read");
    expect((await h.request("DELETE", `/${s.id}`, { token: owner.token })).body.data.status).toBe("deleted");
    expect((await h.request("GET", "", { token: owner.token })).body.data.items).toEqual([]);
    expect((await h.request("GET", "?deleted=true", { token: owner.token })).body.data.items.map((x: any) => x.id)).toEqual([s.id]);
    expect((await h.request("GET", `/${s.id}`, { token: reader.token })).status).toBe(404);
    expect((await h.request("GET", `/${s.id}/value`, { token: owner.token })).status).toBe(410);
    expect((await h.request("DELETE", `/${s.id}`, { token: owner.token })).status).toBe(410);

    const restored = await h.request("POST", `/${s.id}/restore`, { token: owner.token });
    expect(restored.status).toBe(200);
    expect((await h.request("GET", `/${s.id}/value`, { token: reader.token })).body.data.value).toBe(s.value);

    await h.request("DELETE", `/${s.id}`, { token: owner.token });
    const twin = await h.createSecret(owner, { name: "RECOVER_ME" });
    const clash = await h.request("POST", `/${s.id}/restore`, { token: owner.token });
    expect(clash.status).toBe(409);
    expect(clash.body.error.code).toBe("name_taken");
    expect(twin.id).not.toBe(s.id);
  });
});

describe("grants", () => {
  it("grants by email or id, changes the level, lists grants for admins, and refuses odd grantees", async () => {
    const owner = await h.user();
    const bob = await h.user();
    const s = await h.createSecret(owner);
    const byEmail = await h.request("PUT", `/${s.id}/permissions`, { token: owner.token, body: { email: bob.email.toUpperCase(), permission: "read" } });
    expect(byEmail.status).toBe(200);
    expect(byEmail.body.data).toMatchObject({ userId: bob.id, permission: "read", grantedBy: owner.id });
    await h.request("PUT", `/${s.id}/permissions`, { token: owner.token, body: { userId: bob.id, permission: "admin" } });
    const list = await h.request("GET", `/${s.id}/permissions`, { token: owner.token });
    expect(list.body.data).toEqual([expect.objectContaining({ userId: bob.id, email: bob.email, permission: "admin" })]);

    const nobody = await h.request("PUT", `/${s.id}/permissions`, { token: owner.token, body: { email: "nobody@nowhere.test", permission: "read" } });
    expect(nobody.status).toBe(404);
    expect(nobody.body.error.code).toBe("user_not_found");
    const self = await h.request("PUT", `/${s.id}/permissions`, { token: bob.token, body: { userId: owner.id, permission: "read" } });
    expect(self.status).toBe(400);
    expect(self.body.error.code).toBe("cannot_grant_owner");
    const missing = await h.request("DELETE", `/${s.id}/permissions/${owner.id}`, { token: owner.token });
    expect(missing.status).toBe(404);
  });
});

describe("service role", () => {
  it("creates secrets for a named owner, and must name one", async () => {
    const owner = await h.user();
    const token = await h.serviceToken();
    h.remember("service-made-value");
    const made = await h.request("POST", "", { token, body: { name: "FROM_SERVICE", value: "service-made-value", ownerId: owner.id } });
    expect(made.status).toBe(201);
    expect(made.body.data.ownerId).toBe(owner.id);
    const audit = await auditOf(h.db, made.body.data.id);
    expect(audit[0]).toMatchObject({ action: "created", actor_type: "service", actor_id: null });
    const noOwner = await h.request("POST", "", { token, body: { name: "NO_OWNER", value: "service-made-value" } });
    expect(noOwner.status).toBe(400);
    expect(noOwner.body.error.code).toBe("owner_required");
  });
});

describe("expiring soon", () => {
  it("lists live secrets expiring within a duration, soonest first, and pages them", async () => {
    const owner = await h.user();
    const inHours = (n: number) => new Date(Date.now() + n * 3600_000).toISOString();
    await h.createSecret(owner, { name: "LATER", expiresAt: inHours(24 * 6) });
    await h.createSecret(owner, { name: "SOON", expiresAt: inHours(2) });
    await h.createSecret(owner, { name: "NEVER" });
    await h.createSecret(owner, { name: "FAR", expiresAt: inHours(24 * 30) });
    const names = async (q: string) => (await h.request("GET", q, { token: owner.token })).body.data.items.map((s: any) => s.name);
    expect(await names("?expiringWithin=7d")).toEqual(["SOON", "LATER"]);
    expect(await names("?expiringWithin=3h")).toEqual(["SOON"]);
    expect(await names("?expiringWithin=5w")).toEqual(["SOON", "LATER", "FAR"]);
    const first = await h.request("GET", "?expiringWithin=5w&limit=2", { token: owner.token });
    const rest = await h.request("GET", `?expiringWithin=5w&limit=2&cursor=${first.body.data.nextCursor}`, { token: owner.token });
    expect(rest.body.data.items.map((s: any) => s.name)).toEqual(["FAR"]);
    for (const bad of ["7", "0d", "7y", "-1d", "1.5d"]) {
      expect((await h.request("GET", `?expiringWithin=${bad}`, { token: owner.token })).status, bad).toBe(400);
    }
  });
});
