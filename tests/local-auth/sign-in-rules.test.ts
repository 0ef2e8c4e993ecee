/**
 * The local sign-in stand-in's rules, in process on the suite's database with a clock the tests
 * move: GoTrue's refresh token reuse interval (a rotated token honoured for a while, then taken
 * as stolen) and what a stolen token's use leaves behind, bcrypt's 72-byte limit, access token
 * checks, and the error bodies of both API versions, called through the routes with
 * `app.request()`.
 */
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLocalAuthRoutes } from "../../scripts/lib/auth/auth-routes.ts";
import { createLocalAuthService, type LocalAuthService } from "../../scripts/lib/auth/auth-service.ts";
import type { Database } from "../../shared/db/database.ts";
import { openTestDatabase, TestClock } from "../helpers/harness.ts";

const run = Math.random().toString(36).slice(2, 8);
const client = { userAgent: "vitest", ip: "127.0.0.1" };
const API_KEY = "sb_publishable_test";

let db: Database;
let auth: LocalAuthService;
let app: ReturnType<typeof createLocalAuthRoutes>;
const clock = new TestClock();
const logged: string[] = [];

beforeAll(async () => {
  db = await openTestDatabase();
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const kid = "test-key";
  auth = createLocalAuthService({
    db,
    signer: { kid, privateKey },
    jwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" }] },
    clock,
    // bcrypt's lowest cost keeps the suite fast; the server uses GoTrue's 10.
    settings: { issuer: "http://127.0.0.1:54321/auth/v1", jwtExpirySeconds: 3600, reuseIntervalSeconds: 10, minPasswordLength: 6, bcryptCost: 4 },
  });
  app = createLocalAuthRoutes({ auth, apiKeys: [API_KEY], corsOrigins: ["*"], log: (m) => logged.push(m) });
});

afterAll(async () => {
  await db?.close();
});

let n = 0;
const signUp = (password = `password-${run}`) =>
  auth.signUp({ email: `reuse-${run}-${++n}@example.com`, phone: "", password, data: {} }, client);
const refresh = (token: string) => auth.refresh({ refresh_token: token }, client);
const sessionIdOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString()).session_id as string;
const rowsOf = async (sessionId: string) => ({
  sessions: (await db.query(`select 1 from auth.sessions where id = $1`, [sessionId])).length,
  tokens: (await db.query(`select 1 from auth.refresh_tokens where session_id = $1`, [sessionId])).length,
});

describe("refresh token reuse, as GoTrue's refresh_token_reuse_interval decides it", () => {
  it("honours a rotated token within the interval, and past it ends the session with refresh_token_already_used", async () => {
    clock.offsetMs = 0;
    const s0 = await signUp();
    const sessionId = sessionIdOf(s0.access_token);
    const s1 = await refresh(s0.refresh_token);
    const s2 = await refresh(s1.refresh_token);

    // Five seconds on, s0's token (two rotations back) is still honoured: a concurrent refresh.
    clock.offsetMs = 5_000;
    const s3 = await refresh(s0.refresh_token);
    expect(sessionIdOf(s3.access_token)).toBe(sessionId);
    expect(new Set([s0, s1, s2, s3].map((s) => s.refresh_token)).size).toBe(4);

    // Twenty seconds on, s1's token is neither live nor the parent of the live one: stolen.
    clock.offsetMs = 20_000;
    await expect(refresh(s1.refresh_token)).rejects.toMatchObject({ status: 400, code: "refresh_token_already_used" });
    expect(await rowsOf(sessionId)).toEqual({ sessions: 0, tokens: 0 });
    for (const s of [s2, s3]) await expect(refresh(s.refresh_token)).rejects.toMatchObject({ code: "refresh_token_not_found" });
  });

  it("never honours a stolen token past the interval, even as the parent of a token that was itself rotated", async () => {
    clock.offsetMs = 0;
    const s0 = await signUp();
    const s1 = await refresh(s0.refresh_token);
    await refresh(s1.refresh_token);
    clock.offsetMs = 11_000;
    await expect(refresh(s0.refresh_token)).rejects.toMatchObject({ code: "refresh_token_already_used" });
    expect(await rowsOf(sessionIdOf(s0.access_token))).toEqual({ sessions: 0, tokens: 0 });
  });

  it("serves two refreshes of one token at once one after the other, both answered, in the same session", async () => {
    clock.offsetMs = 0;
    const s0 = await signUp();
    const [a, b] = await Promise.all([refresh(s0.refresh_token), refresh(s0.refresh_token)]);
    expect(a.refresh_token).not.toBe(b.refresh_token);
    expect(sessionIdOf(a.access_token)).toBe(sessionIdOf(b.access_token));
    const [{ live }] = await db.query<{ live: number }>(
      `select count(*)::int as live from auth.refresh_tokens where session_id = $1 and not revoked`, [sessionIdOf(s0.access_token)]);
    expect(live).toBe(1);
  });

  it("refuses an unknown or malformed refresh token without touching any session", async () => {
    await expect(refresh("short")).rejects.toMatchObject({ status: 400, code: "validation_failed" });
    await expect(refresh("x".repeat(43))).rejects.toMatchObject({ status: 400, code: "refresh_token_not_found" });
  });
});

describe("passwords", () => {
  it("refuses a sign-in whose password only starts with the stored one's 72 bytes, which bcrypt alone would accept", async () => {
    const password = "p".repeat(72);
    const { user } = await signUp(password);
    const email = user.email;
    await expect(auth.signInWithPassword({ email, phone: "", password: `${password}-and-more` }, client))
      .rejects.toMatchObject({ status: 400, code: "invalid_credentials" });
    expect((await auth.signInWithPassword({ email, phone: "", password }, client)).user.id).toBe(user.id);
  });
});

describe("access tokens on GET /user and POST /logout", () => {
  const call = (path: string, init: RequestInit & { headers?: Record<string, string> } = {}) =>
    app.request(`/auth/v1${path}`, { ...init, headers: { apikey: API_KEY, "x-supabase-api-version": "2024-01-01", ...init.headers } });

  it("accepts its own session's token and refuses one without a Bearer, one signed by another key, and an expired one", async () => {
    clock.offsetMs = 0;
    const s = await signUp();
    const ok = await call("/user", { headers: { authorization: `Bearer ${s.access_token}` } });
    expect(ok.status).toBe(200);
    expect((await ok.json()).id).toBe(s.user.id);

    const none = await call("/user");
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ code: "no_authorization", message: "This endpoint requires a valid Bearer token" });

    const other = await generateKeyPair("ES256");
    const claims = JSON.parse(Buffer.from(s.access_token.split(".")[1], "base64url").toString());
    const forged = await new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: "test-key" }).sign(other.privateKey);
    const refused = await call("/user", { headers: { authorization: `Bearer ${forged}` } });
    expect(refused.status).toBe(403);
    expect((await refused.json()).code).toBe("bad_jwt");

    clock.offsetMs = 3601_000;
    const expired = await call("/user", { headers: { authorization: `Bearer ${s.access_token}` } });
    expect(expired.status).toBe(403);
    expect(await expired.json()).toMatchObject({ code: "bad_jwt", message: expect.stringContaining("expired") });
    clock.offsetMs = 0;
  });

  it("refuses a logout scope GoTrue does not know, and signs nobody out", async () => {
    const s = await signUp();
    const res = await call("/logout?scope=everyone", { method: "POST", headers: { authorization: `Bearer ${s.access_token}` } });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ code: "validation_failed", message: 'Unsupported logout scope "everyone"' });
    expect((await rowsOf(sessionIdOf(s.access_token))).sessions).toBe(1);
  });
});

describe("request errors, in GoTrue's words", () => {
  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    app.request(`/auth/v1${path}`, { method: "POST", body, headers: { apikey: API_KEY, "content-type": "application/json", ...headers } });

  it("answers malformed JSON, a field of the wrong type and an unknown grant with 400", async () => {
    const badJson = await post("/signup", "{not json");
    expect(badJson.status).toBe(400);
    expect(await badJson.json()).toMatchObject({ code: 400, error_code: "bad_json" });
    const wrongType = await post("/token?grant_type=password", JSON.stringify({ email: 42, password: "x" }));
    expect(await wrongType.json()).toMatchObject({ code: 400, error_code: "bad_json" });
    const grant = await post("/token?grant_type=magic", "{}");
    expect(await grant.json()).toEqual({ code: 400, error_code: "invalid_credentials", msg: "unsupported_grant_type" });
  });

  it("says why a password is weak in both body versions, and refuses one longer than bcrypt reads", async () => {
    const email = `weak-${run}@example.com`;
    const legacy = await post("/signup", JSON.stringify({ email, password: "abc" }));
    expect(legacy.status).toBe(422);
    expect(await legacy.json()).toEqual({
      code: 422, error_code: "weak_password", msg: "Password should be at least 6 characters.", weak_password: { reasons: ["length"] },
    });
    const versioned = await post("/signup", JSON.stringify({ email, password: "abc" }), { "x-supabase-api-version": "2024-01-01" });
    expect(await versioned.json()).toEqual({
      code: "weak_password", message: "Password should be at least 6 characters.", weak_password: { reasons: ["length"] },
    });
    const long = await post("/signup", JSON.stringify({ email, password: "é".repeat(37) })); // 74 bytes
    expect(await long.json()).toMatchObject({ code: 400, error_code: "validation_failed" });
    expect(await db.query(`select 1 from auth.users where email = $1`, [email])).toEqual([]);
    expect(logged).toEqual([]);
  });
});
