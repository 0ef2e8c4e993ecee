/**
 * The request path's caches (verified tokens, unwrapped DEKs) change nothing anyone may do:
 * with both warm, an expired token, a revoked grant, a deleted, deactivated or expired secret,
 * a revoked deployment token and a KEK rotation each take effect on the very next request, and
 * no refused read leaves an `accessed` row.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signUserToken } from "../../scripts/lib/local.ts";
import { auditOf, createHarness, type Harness, JWT_SECRET } from "../helpers/harness.ts";

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h?.close();
});

const read = (token: string, id: string) => h.request("GET", `/${id}/value`, { token });
const accessed = async (id: string) => (await auditOf(h.db, id)).filter((a) => a.action === "accessed").length;

/** A secret read twice by `token` (both caches warm), and its accessed count after that. */
async function warm(token: string, id: string, value: string) {
  for (let i = 0; i < 2; i++) {
    const res = await read(token, id);
    expect(res.status).toBe(200);
    expect(res.body.data.value).toBe(value);
  }
  return await accessed(id);
}

describe("with the caches warm", () => {
  it("refuses a user's token the moment it expires", async () => {
    const owner = await h.user("owner");
    const short = await signUserToken(JWT_SECRET, owner, { expiresInSeconds: 20, now: h.clock.now() });
    const s = await h.createSecret(owner);
    const before = await warm(short, s.id, s.value);
    h.clock.offsetMs += 20_000;
    try {
      const res = await read(short, s.id);
      expect(res.status).toBe(401);
      expect(await accessed(s.id)).toBe(before);
      // The owner's other token still works: nothing but that token was affected.
      expect((await read(owner.token, s.id)).status).toBe(200);
    } finally {
      h.clock.offsetMs -= 20_000;
    }
  });

  it("refuses a grantee whose grant was revoked, on the next read", async () => {
    const owner = await h.user("owner");
    const reader = await h.user("reader");
    const s = await h.createSecret(owner);
    await h.grant(owner, s.id, reader, "read");
    const before = await warm(reader.token, s.id, s.value);
    expect((await h.request("DELETE", `/${s.id}/permissions/${reader.id}`, { token: owner.token })).status).toBe(200);
    expect((await read(reader.token, s.id)).status).toBe(404);
    expect(await accessed(s.id)).toBe(before);
  });

  it("refuses a grant lowered to use, on the next read", async () => {
    const owner = await h.user("owner");
    const reader = await h.user("reader");
    const s = await h.createSecret(owner);
    await h.grant(owner, s.id, reader, "read");
    const before = await warm(reader.token, s.id, s.value);
    await h.grant(owner, s.id, reader, "use");
    expect((await read(reader.token, s.id)).status).toBe(403);
    expect((await auditOf(h.db, s.id)).filter((a) => a.action === "accessed" && a.actor_id === reader.id)).toHaveLength(before);
  });

  it("gives no value of a secret once it is deleted, deactivated or expired", async () => {
    const owner = await h.user("owner");
    const deleted = await h.createSecret(owner);
    const inactive = await h.createSecret(owner);
    const expired = await h.createSecret(owner);
    const before = await Promise.all([deleted, inactive, expired].map((s) => warm(owner.token, s.id, s.value)));
    expect((await h.request("DELETE", `/${deleted.id}`, { token: owner.token })).status).toBe(200);
    expect((await h.request("PATCH", `/${inactive.id}`, { token: owner.token, body: { isActive: false } })).status).toBe(200);
    await h.db.query(`update public.secrets set expires_at = now() - interval '1 second' where id = $1::uuid`, [expired.id]);
    for (const s of [deleted, inactive, expired]) expect((await read(owner.token, s.id)).status).toBe(410);
    expect(await Promise.all([deleted, inactive, expired].map((s) => accessed(s.id)))).toEqual(before);
  });

  it("reads a new version's value, not the cached one, right after it is written", async () => {
    const owner = await h.user("owner");
    const s = await h.createSecret(owner);
    await warm(owner.token, s.id, s.value);
    const next = `next-${crypto.randomUUID()}`;
    h.remember(next);
    expect((await h.request("PUT", `/${s.id}/value`, { token: owner.token, body: { value: next } })).status).toBe(200);
    expect((await read(owner.token, s.id)).body.data).toMatchObject({ version: 2, value: next });
  });

  it("refuses a revoked deployment token on the next env request", async () => {
    const owner = await h.user("owner");
    const s = await h.createSecret(owner);
    const [{ id }] = await h.db.query<{ id: string }>(
      `insert into public.deployments (user_id, name, required_env, status) values ($1::uuid, 'cache-test', '{API_KEY}', 'pending') returning id`,
      [owner.id],
    );
    expect((await h.request("PUT", `/deployments/${id}/secrets`, { token: owner.token, body: { bindings: [{ envName: "API_KEY", secretId: s.id }] } })).status).toBe(200);
    await h.db.query(`update public.deployments set status = 'deploying' where id = $1::uuid`, [id]);
    const minted = await h.request("POST", `/deployments/${id}/tokens`, { token: owner.token });
    const token = minted.body.data.token as string;
    h.remember(token);
    for (let i = 0; i < 2; i++) {
      const env = await h.request("GET", `/deployments/${id}/env`, { token });
      expect(env.status).toBe(200);
      expect(env.body.data).toEqual({ API_KEY: s.value });
    }
    const before = await accessed(s.id);
    expect((await h.request("DELETE", `/deployments/${id}/tokens/${minted.body.data.id}`, { token: owner.token })).status).toBe(200);
    expect((await h.request("GET", `/deployments/${id}/env`, { token })).status).toBe(401);
    expect(await accessed(s.id)).toBe(before);
  });

  it("opens a version tampered with after it was cached only if it still decrypts: a changed ciphertext is refused", async () => {
    const owner = await h.user("owner");
    const s = await h.createSecret(owner);
    const before = await warm(owner.token, s.id, s.value);
    await h.db.transaction(async (tx) => {
      await tx.query(`set local session_replication_role = replica`);
      await tx.query(
        `update public.secret_versions set ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1) where secret_id = $1::uuid`,
        [s.id],
      );
    });
    const res = await read(owner.token, s.id);
    expect(res.status).toBe(500);
    expect(res.body.error.code).toBe("decryption_failed");
    // The failed read rolled back its audit row, as every failed decryption does.
    expect(await accessed(s.id)).toBe(before);
  });
});
