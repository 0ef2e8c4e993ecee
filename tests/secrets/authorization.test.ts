/**
 * The permission table of the API, route by route and caller by caller, and the token
 * failures every route must turn away. A call that is refused changes no row.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SignJWT } from "jose";
import { auditOf, createHarness, type Harness, JWT_SECRET, snapshot, type TestUser } from "../helpers/harness.ts";

type Role = "owner" | "admin" | "write" | "read" | "use" | "stranger";
const ROLES: Role[] = ["owner", "admin", "write", "read", "use", "stranger"];

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h?.close();
});

interface Fixture {
  id: string;
  users: Record<Role, TestUser>;
  victim: TestUser; // a grantee whose grant admins may revoke
}

async function fixture(opts: { deleted?: boolean } = {}): Promise<Fixture> {
  const users = {} as Record<Role, TestUser>;
  for (const r of ROLES) users[r] = await h.user(r);
  const victim = await h.user("victim");
  const secret = await h.createSecret(users.owner);
  for (const r of ["admin", "write", "read", "use"] as const) await h.grant(users.owner, secret.id, users[r], r);
  await h.grant(users.owner, secret.id, victim, "read");
  const next = `next-value-${crypto.randomUUID()}`;
  h.remember(next);
  await h.request("PUT", `/${secret.id}/value`, { token: users.owner.token, body: { value: next } });
  if (opts.deleted) await h.request("DELETE", `/${secret.id}`, { token: users.owner.token });
  return { id: secret.id, users, victim };
}

interface Route {
  name: string;
  allowed: Role[];
  /** Visible but not allowed: 403; stranger, or below admin on a deleted secret: 404 (list: absent). */
  call: (f: Fixture, token: string | null) => Promise<{ status: number; body: any }>;
  deleted?: boolean;
  mutates?: boolean;
}

const ALL: Role[] = ["owner", "admin", "write", "read", "use"];
const routes: Route[] = [
  { name: "GET /:id (metadata)", allowed: ALL, call: (f, t) => h.request("GET", `/${f.id}`, { token: t }) },
  { name: "GET /:id/value", allowed: ["owner", "admin", "write", "read"], call: (f, t) => h.request("GET", `/${f.id}/value`, { token: t }) },
  { name: "GET /:id/value?version=1", allowed: ["owner", "admin", "write", "read"], call: (f, t) => h.request("GET", `/${f.id}/value?version=1`, { token: t }) },
  { name: "GET /:id/versions", allowed: ["owner", "admin", "write", "read"], call: (f, t) => h.request("GET", `/${f.id}/versions`, { token: t }) },
  {
    name: "PUT /:id/value", allowed: ["owner", "admin", "write"], mutates: true,
    call: (f, t) => {
      const value = `written-${crypto.randomUUID()}`;
      h.remember(value);
      return h.request("PUT", `/${f.id}/value`, { token: t, body: { value } });
    },
  },
  { name: "POST /:id/versions/1/restore", allowed: ["owner", "admin", "write"], mutates: true, call: (f, t) => h.request("POST", `/${f.id}/versions/1/restore`, { token: t }) },
  { name: "PATCH /:id", allowed: ["owner", "admin", "write"], mutates: true, call: (f, t) => h.request("PATCH", `/${f.id}`, { token: t, body: { description: "changed" } }) },
  { name: "DELETE /:id", allowed: ["owner", "admin"], mutates: true, call: (f, t) => h.request("DELETE", `/${f.id}`, { token: t }) },
  { name: "POST /:id/restore", allowed: ["owner", "admin"], mutates: true, deleted: true, call: (f, t) => h.request("POST", `/${f.id}/restore`, { token: t }) },
  { name: "GET /:id/permissions", allowed: ["owner", "admin"], call: (f, t) => h.request("GET", `/${f.id}/permissions`, { token: t }) },
  {
    name: "PUT /:id/permissions", allowed: ["owner", "admin"], mutates: true,
    call: (f, t) => h.request("PUT", `/${f.id}/permissions`, { token: t, body: { userId: f.victim.id, permission: "write" } }),
  },
  { name: "DELETE /:id/permissions/:userId", allowed: ["owner", "admin"], mutates: true, call: (f, t) => h.request("DELETE", `/${f.id}/permissions/${f.victim.id}`, { token: t }) },
  { name: "GET /:id/audit", allowed: ["owner", "admin"], call: (f, t) => h.request("GET", `/${f.id}/audit`, { token: t }) },
];

describe("the permission table", () => {
  for (const route of routes) {
    describe(route.name, () => {
      for (const role of ROLES) {
        // A deleted secret is visible only to its admins: to everyone else it does not exist.
        const expected = route.allowed.includes(role) ? 200 : role === "stranger" || route.deleted ? 404 : 403;
        it(`${role} gets ${expected}${expected !== 200 ? " and changes nothing" : ""}`, async () => {
          const f = await fixture({ deleted: route.deleted });
          const before = await snapshot(h.db, f.id);
          const accessedBefore = (await auditOf(h.db, f.id)).filter((a) => a.action === "accessed").length;
          const res = await route.call(f, f.users[role].token);
          expect(res.status, JSON.stringify(res.body)).toBe(expected);
          if (expected === 200) {
            expect(res.body.success).toBe(true);
            if (route.mutates) expect(await snapshot(h.db, f.id)).not.toBe(before);
          } else {
            expect(res.body).toEqual({ success: false, error: expect.objectContaining({ code: expected === 404 ? "secret_not_found" : "forbidden" }) });
            expect(await snapshot(h.db, f.id)).toBe(before);
            const accessedAfter = (await auditOf(h.db, f.id)).filter((a) => a.action === "accessed").length;
            expect(accessedAfter).toBe(accessedBefore);
          }
        });
      }
    });
  }

  it("lists a secret for every grantee and never for a stranger", async () => {
    const f = await fixture();
    for (const role of ROLES) {
      const res = await h.request("GET", "?limit=100", { token: f.users[role].token });
      expect(res.status).toBe(200);
      const item = res.body.data.items.find((s: any) => s.id === f.id);
      if (role === "stranger") expect(item).toBeUndefined();
      else expect(item?.permission).toBe(role);
    }
  });

  it("a reader cannot see who else the secret is shared with", async () => {
    const f = await fixture();
    const rows = await h.db.transaction(async (tx) => {
      await tx.query(`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)`,
        [JSON.stringify({ sub: f.users.read.id, role: "authenticated" })]);
      return tx.query<{ user_id: string }>(`select user_id from public.secret_permissions where secret_id = $1::uuid`, [f.id]);
    });
    expect(rows.map((r) => r.user_id)).toEqual([f.users.read.id]);
  });

  it("a grantee may drop its own grant, and then loses the secret", async () => {
    const f = await fixture();
    const res = await h.request("DELETE", `/${f.id}/permissions/${f.users.use.id}`, { token: f.users.use.token });
    expect(res.status).toBe(200);
    expect((await h.request("GET", `/${f.id}`, { token: f.users.use.token })).status).toBe(404);
  });

  it("a user with use can never read the value, not even an old version", async () => {
    const f = await fixture();
    for (const path of [`/${f.id}/value`, `/${f.id}/value?version=1`, `/${f.id}/value?version=2`]) {
      const res = await h.request("GET", path, { token: f.users.use.token });
      expect(res.status).toBe(403);
      expect(JSON.stringify(res.body)).not.toMatch(/value-|next-value-/);
    }
  });
});

describe("tokens every route turns away", () => {
  const encoder = new TextEncoder();
  const now = () => Math.floor(Date.now() / 1000);
  const claimsOf = (u: TestUser) => ({ sub: u.id, email: u.email, role: "authenticated", aud: "authenticated" });
  const unsigned = (payload: object) => {
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    return `${enc({ alg: "none", typ: "JWT" })}.${enc(payload)}.`;
  };
  const bad: Record<string, (u: TestUser) => Promise<string | null>> = {
    "no token": async () => null,
    "expired token": (u) => new SignJWT(claimsOf(u)).setProtectedHeader({ alg: "HS256" }).setIssuedAt(now() - 7200).setExpirationTime(now() - 3600).sign(encoder.encode(JWT_SECRET)),
    "wrong signature": (u) => new SignJWT(claimsOf(u)).setProtectedHeader({ alg: "HS256" }).setExpirationTime(now() + 3600).sign(encoder.encode("another-secret-another-secret-another-secret")),
    "alg none": async (u) => unsigned({ ...claimsOf(u), exp: now() + 3600 }),
    "no exp": (u) => new SignJWT(claimsOf(u)).setProtectedHeader({ alg: "HS256" }).sign(encoder.encode(JWT_SECRET)),
    "wrong audience": (u) => new SignJWT({ ...claimsOf(u), aud: "somebody-else" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime(now() + 3600).sign(encoder.encode(JWT_SECRET)),
    "anon role": (u) => new SignJWT({ ...claimsOf(u), role: "anon" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime(now() + 3600).sign(encoder.encode(JWT_SECRET)),
    "garbage": async () => "not.a.jwt",
  };

  for (const [label, make] of Object.entries(bad)) {
    it(`${label}: 401 on every route, same message, nothing changed`, async () => {
      const f = await fixture();
      const token = await make(f.users.owner);
      const before = await snapshot(h.db, f.id);
      const auditBefore = (await auditOf(h.db, f.id)).length;
      const calls = [...routes.map((r) => r.call(f, token)), h.request("GET", "", { token }), h.request("GET", "/audit", { token }),
        h.request("GET", "/deployments", { token }),
        h.request("POST", "", { token, body: { name: "X", value: "abcdefgh" } })];
      for (const res of await Promise.all(calls)) {
        expect(res.status).toBe(401);
        expect(res.body).toEqual({ success: false, error: { code: "unauthenticated", message: "A valid access token is required." } });
      }
      expect(await snapshot(h.db, f.id)).toBe(before);
      expect((await auditOf(h.db, f.id)).length).toBe(auditBefore);
    });
  }

  it("the service role reaches every route", async () => {
    const f = await fixture();
    const token = await h.serviceToken();
    expect((await h.request("GET", `/${f.id}/value`, { token })).status).toBe(200);
    expect((await h.request("GET", `/${f.id}/audit`, { token })).status).toBe(200);
    const audit = await auditOf(h.db, f.id);
    expect(audit.at(-1)).toMatchObject({ action: "accessed", actor_type: "service", actor_id: null });
  });
});
