/**
 * What every route shares: a wrong method on a known path is 405 with `Allow` (after the token
 * check, so it reveals nothing to strangers), an unknown path 404, and a bad choice in a body
 * or query names its field and the values allowed, never the value sent.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, type Harness, snapshot, type TestUser } from "../helpers/harness.ts";

let h: Harness;
let alice: TestUser;
beforeAll(async () => {
  h = await createHarness();
  alice = await h.user("alice");
});
afterAll(async () => {
  await h?.close();
});

describe("methods and paths", () => {
  it("answers a known path with another method 405, listing the methods it takes", async () => {
    const s = await h.createSecret(alice);
    const before = await snapshot(h.db, s.id);
    const value = await h.request("POST", `/${s.id}/value`, { token: alice.token, body: { value: "x" } });
    expect(value.status).toBe(405);
    expect(value.body.error.code).toBe("method_not_allowed");
    // No HEAD on the audited reads (value, env): it would read for nothing.
    expect(value.headers.get("allow")?.split(", ").sort()).toEqual(["GET", "PUT"]);
    const keys = await h.request("DELETE", "/admin/keys", { token: await h.serviceToken() });
    expect(keys.status).toBe(405);
    expect(keys.headers.get("allow")).toBe("GET, HEAD");
    const env = await h.request("POST", `/deployments/${crypto.randomUUID()}/env`, { token: alice.token });
    expect(env.status).toBe(405);
    expect(env.headers.get("allow")).toBe("GET");
    expect(await snapshot(h.db, s.id)).toBe(before);
  });

  it("answers an unknown path 404 without Allow, and either one 401 without a token", async () => {
    const unknown = await h.request("GET", "/no/such/route", { token: alice.token });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("not_found");
    expect(unknown.headers.get("allow")).toBeNull();
    const s = await h.createSecret(alice);
    for (const [method, path] of [["POST", `/${s.id}/value`], ["GET", "/no/such/route"]]) {
      const res = await h.request(method, path);
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.headers.get("allow")).toBeNull();
    }
  });
});

describe("choices", () => {
  it("an unknown permission names the field and the allowed levels, and grants nothing", async () => {
    const s = await h.createSecret(alice);
    const bob = await h.user("bob");
    const before = await snapshot(h.db, s.id);
    const res = await h.request("PUT", `/${s.id}/permissions`, {
      token: alice.token, body: { userId: bob.id, permission: "superuser" },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.details).toEqual([{ path: "permission", message: "must be one of: use, read, write, admin" }]);
    expect(JSON.stringify(res.body)).not.toContain("superuser");
    expect(await snapshot(h.db, s.id)).toBe(before);
  });

  it("a grant names exactly one of userId and email", async () => {
    const s = await h.createSecret(alice);
    const bob = await h.user("bob");
    for (const body of [{ permission: "read" }, { userId: bob.id, email: bob.email, permission: "read" }]) {
      const res = await h.request("PUT", `/${s.id}/permissions`, { token: alice.token, body });
      expect(res.status).toBe(400);
      expect(res.body.error.details).toEqual([{ path: "userId", message: "exactly one of userId and email" }]);
    }
    expect((await h.request("GET", `/${s.id}/permissions`, { token: alice.token })).body.data).toEqual([]);
  });

  it("an unknown type or flag in a query names the field and the allowed values", async () => {
    const type = await h.request("GET", "?type=password", { token: alice.token });
    expect(type.status).toBe(400);
    expect(type.body.error.details).toEqual([{ path: "type", message: "must be one of: api_key, database_url, jwt_secret, custom" }]);
    const flag = await h.request("GET", "?deleted=yes", { token: alice.token });
    expect(flag.body.error.details).toEqual([{ path: "deleted", message: "must be one of: true, false" }]);
  });
});
