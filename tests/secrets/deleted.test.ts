/**
 * A deleted secret is visible only to its admins (owner, admin grantees, the service role):
 * everyone else gets 404 `secret_not_found` on every route, exactly as for a secret that never
 * existed, and nothing changes. Admins keep their answers (metadata, restore, grants, audit;
 * 410 on the value and on changes).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditOf, createHarness, type Harness, snapshot, type TestUser } from "../helpers/harness.ts";

type Role = "owner" | "admin" | "service" | "write" | "read" | "use" | "stranger";
const ROLES: Role[] = ["owner", "admin", "service", "write", "read", "use", "stranger"];
const ADMINS: Role[] = ["owner", "admin", "service"];

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h?.close();
});

interface Fixture {
  id: string;
  tokens: Record<Role, string>;
  users: Record<Exclude<Role, "service">, TestUser>;
  victim: TestUser;
}

/** A secret with two versions, shared at every level, then deleted by its owner. */
async function deletedSecret(): Promise<Fixture> {
  const users = {} as Fixture["users"];
  for (const r of ROLES) if (r !== "service") users[r] = await h.user(r);
  const victim = await h.user("victim");
  const secret = await h.createSecret(users.owner);
  for (const r of ["admin", "write", "read", "use"] as const) await h.grant(users.owner, secret.id, users[r], r);
  await h.grant(users.owner, secret.id, victim, "read");
  const next = `next-value-${crypto.randomUUID()}`;
  h.remember(next);
  expect((await h.request("PUT", `/${secret.id}/value`, { token: users.owner.token, body: { value: next } })).status).toBe(200);
  expect((await h.request("DELETE", `/${secret.id}`, { token: users.owner.token })).status).toBe(200);
  const tokens = Object.fromEntries(Object.entries(users).map(([r, u]) => [r, u.token])) as Record<Role, string>;
  tokens.service = await h.serviceToken();
  return { id: secret.id, tokens, users, victim };
}

interface Route {
  name: string;
  /** What an admin of the deleted secret gets (unchanged by the rule). */
  admin: number;
  call: (f: Fixture, token: string) => Promise<{ status: number; body: any }>;
}

const routes: Route[] = [
  { name: "GET /:id", admin: 200, call: (f, t) => h.request("GET", `/${f.id}`, { token: t }) },
  { name: "GET /:id/value", admin: 410, call: (f, t) => h.request("GET", `/${f.id}/value`, { token: t }) },
  { name: "GET /:id/value?version=1", admin: 410, call: (f, t) => h.request("GET", `/${f.id}/value?version=1`, { token: t }) },
  { name: "GET /:id/versions", admin: 200, call: (f, t) => h.request("GET", `/${f.id}/versions`, { token: t }) },
  {
    name: "PUT /:id/value", admin: 410,
    call: (f, t) => {
      const value = `written-${crypto.randomUUID()}`;
      h.remember(value);
      return h.request("PUT", `/${f.id}/value`, { token: t, body: { value } });
    },
  },
  { name: "POST /:id/versions/1/restore", admin: 410, call: (f, t) => h.request("POST", `/${f.id}/versions/1/restore`, { token: t }) },
  { name: "PATCH /:id", admin: 410, call: (f, t) => h.request("PATCH", `/${f.id}`, { token: t, body: { description: "changed" } }) },
  { name: "DELETE /:id", admin: 410, call: (f, t) => h.request("DELETE", `/${f.id}`, { token: t }) },
  { name: "POST /:id/restore", admin: 200, call: (f, t) => h.request("POST", `/${f.id}/restore`, { token: t }) },
  { name: "GET /:id/permissions", admin: 200, call: (f, t) => h.request("GET", `/${f.id}/permissions`, { token: t }) },
  {
    name: "PUT /:id/permissions", admin: 410,
    call: (f, t) => h.request("PUT", `/${f.id}/permissions`, { token: t, body: { userId: f.victim.id, permission: "write" } }),
  },
  { name: "DELETE /:id/permissions/:userId", admin: 200, call: (f, t) => h.request("DELETE", `/${f.id}/permissions/${f.victim.id}`, { token: t }) },
  { name: "GET /:id/audit", admin: 200, call: (f, t) => h.request("GET", `/${f.id}/audit`, { token: t }) },
];

describe("a deleted secret", () => {
  for (const route of routes) {
    describe(route.name, () => {
      for (const role of ROLES) {
        const admin = ADMINS.includes(role);
        const expected = admin ? route.admin : 404;
        it(`${role} gets ${expected}${admin ? "" : " secret_not_found and changes nothing"}`, async () => {
          const f = await deletedSecret();
          const before = await snapshot(h.db, f.id);
          const auditBefore = (await auditOf(h.db, f.id)).length;
          const res = await route.call(f, f.tokens[role]);
          expect(res.status, JSON.stringify(res.body)).toBe(expected);
          if (!admin) {
            expect(res.body).toEqual({ success: false, error: expect.objectContaining({ code: "secret_not_found" }) });
            expect(await snapshot(h.db, f.id)).toBe(before);
            // Answered like a secret that does not exist: no audit row either.
            expect((await auditOf(h.db, f.id)).length).toBe(auditBefore);
          }
        });
      }
    });
  }

  it("a grantee below admin may not drop its own grant of a deleted secret: it is not there", async () => {
    const f = await deletedSecret();
    const before = await snapshot(h.db, f.id);
    const res = await h.request("DELETE", `/${f.id}/permissions/${f.users.read.id}`, { token: f.tokens.read });
    expect(res.status).toBe(404);
    expect(await snapshot(h.db, f.id)).toBe(before);
  });

  it("a read grantee sees none of a deleted secret's version rows over REST", async () => {
    const f = await deletedSecret();
    const rows = await h.db.transaction(async (tx) => {
      await tx.query(`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)`,
        [JSON.stringify({ sub: f.users.read.id, role: "authenticated" })]);
      return tx.query<{ version: number }>(`select version from public.secret_versions where secret_id = $1::uuid`, [f.id]);
    });
    expect(rows).toEqual([]);
  });

  it("after a restore every grantee sees it again", async () => {
    const f = await deletedSecret();
    expect((await h.request("POST", `/${f.id}/restore`, { token: f.tokens.owner })).status).toBe(200);
    expect((await h.request("GET", `/${f.id}/value`, { token: f.tokens.read })).status).toBe(200);
    expect((await h.request("GET", `/${f.id}`, { token: f.tokens.use })).status).toBe(200);
    expect((await h.request("GET", `/${f.id}/versions`, { token: f.tokens.read })).body.data).toHaveLength(2);
  });
});
