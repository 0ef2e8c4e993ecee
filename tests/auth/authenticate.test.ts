/**
 * Token verification on its own: the hosted path (the project's key set inline or fetched,
 * `sb_secret_` keys), the legacy HS256 secret, the service role by JWT or by key, and the same
 * 401 for every way a credential can be wrong.
 */
import { createServer, type Server } from "node:http";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Authenticator, createAuthenticator } from "../../shared/auth/authenticate.ts";
import { loadConfig, LOCAL_JWT_SECRET } from "../../shared/config.ts";
import { AppError } from "../../shared/errors.ts";
import { createApp } from "../../shared/app.ts";
import { createKeyring } from "../../shared/crypto/keyring.ts";
import { systemClock } from "../../shared/clock.ts";
import type { Database } from "../../shared/db/database.ts";

const SECRET = "test-secret-test-secret-test-secret-1234";
const USER = "6f1c1b7e-4a55-4c55-9f7e-2b9c0d6f1a10";
const now = () => Math.floor(Date.now() / 1000);
const bearer = (t: string) => new Headers({ authorization: `Bearer ${t}` });
const userClaims = { sub: USER, role: "authenticated", aud: "authenticated", email: "a@example.com" };
const hs = (claims: object, secret = SECRET) =>
  new SignJWT(claims as any).setProtectedHeader({ alg: "HS256" }).setExpirationTime(now() + 600).sign(new TextEncoder().encode(secret));
const b64url = (text: string) => Buffer.from(text).toString("base64url");
const unsigned = (claims: object) => `${b64url(JSON.stringify({ alg: "none" }))}.${b64url(JSON.stringify({ ...claims, exp: now() + 600 }))}.`;

async function rejects(p: Promise<unknown>) {
  const err = await p.catch((e) => e);
  expect(err).toBeInstanceOf(AppError);
  expect(err).toMatchObject({ status: 401, code: "unauthenticated", message: "A valid access token is required." });
}

/** An ES256 signing key as Supabase Auth has one: the private key, and its public JWK under a kid. */
async function signingKey(kid: string) {
  const pair = await generateKeyPair("ES256");
  const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid, alg: "ES256", use: "sig", key_ops: ["verify"], ext: true };
  const sign = (claims: object, options: { kid?: string; expiresAt?: number } = {}) =>
    new SignJWT(claims as any)
      .setProtectedHeader({ alg: "ES256", typ: "JWT", kid: options.kid ?? kid })
      .setIssuedAt()
      .setExpirationTime(options.expiresAt ?? now() + 600)
      .sign(pair.privateKey);
  return { jwk, sign };
}

describe("on hosted Supabase, with only the variables the platform hands every function", () => {
  const SECRET_KEY = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz";
  const BACKEND_KEY = "sb_secret_second-key-for-the-platform-backend";
  const PUBLISHABLE_KEY = "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH";
  const LEGACY_SECRET = "the-projects-legacy-jwt-secret-which-we-do-not-know";
  let key: Awaited<ReturnType<typeof signingKey>>;
  let legacyServiceRoleKey: string;
  let hosted: Record<string, string>;
  let auth: Authenticator;

  beforeAll(async () => {
    key = await signingKey("8a7c1a2e-0b4f-4c8e-9d61-3f2b7e1c5a90");
    legacyServiceRoleKey = await new SignJWT({ role: "service_role", iss: "supabase", ref: "abcdefghijklmnopqrst" })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" }).setIssuedAt().setExpirationTime(now() + 10 * 365 * 86400)
      .sign(new TextEncoder().encode(LEGACY_SECRET));
    hosted = {
      SUPABASE_URL: "https://abcdefghijklmnopqrst.supabase.co",
      SUPABASE_DB_URL: "postgresql://postgres:pw@db.abcdefghijklmnopqrst.supabase.co:5432/postgres",
      SUPABASE_JWKS: JSON.stringify({ keys: [key.jwk] }),
      SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: PUBLISHABLE_KEY }),
      SUPABASE_SECRET_KEYS: JSON.stringify({ default: SECRET_KEY, backend: BACKEND_KEY }),
      SUPABASE_ANON_KEY: "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.legacy-anon-key",
      SUPABASE_SERVICE_ROLE_KEY: legacyServiceRoleKey,
      SB_REGION: "eu-central-1",
      SB_EXECUTION_ID: crypto.randomUUID(),
      DENO_DEPLOYMENT_ID: "abcdefghijklmnopqrst_secrets_12",
    };
    auth = createAuthenticator(loadConfig(hosted, { defaultEnv: "production" }).auth, systemClock);
  });

  it("takes a user access token signed with the project's ES256 key as that user", async () => {
    const caller = await auth(bearer(await key.sign(userClaims)));
    expect(caller).toMatchObject({ kind: "user", userId: USER, email: "a@example.com" });
  });

  it("turns away tokens from another key, without a key or otherwise wrong, with the same 401", async () => {
    const other = await signingKey("8a7c1a2e-0b4f-4c8e-9d61-3f2b7e1c5a90"); // same kid, another key
    await rejects(auth(bearer(await other.sign(userClaims))));
    await rejects(auth(bearer(await key.sign(userClaims, { kid: "unknown-kid" }))));
    await rejects(auth(bearer(await hs(userClaims, LOCAL_JWT_SECRET))));
    await rejects(auth(bearer(await hs(userClaims, LEGACY_SECRET))));
    await rejects(auth(bearer(unsigned(userClaims))));
    await rejects(auth(bearer(await key.sign(userClaims, { expiresAt: now() - 10 }))));
    await rejects(auth(bearer(await key.sign({ ...userClaims, aud: "other" }))));
    await rejects(auth(bearer(await key.sign({ ...userClaims, role: "anon" }))));
    await rejects(auth(bearer(await key.sign({ ...userClaims, sub: "not-a-uuid" }))));
    // A public key is no HMAC secret: an HS256 token "signed" with the JWK's text is refused.
    await rejects(auth(bearer(await hs(userClaims, JSON.stringify(key.jwk)))));
  });

  it("makes any secret key of the project the service role, as apikey or as Bearer", async () => {
    for (const k of [SECRET_KEY, BACKEND_KEY]) {
      expect(await auth(new Headers({ apikey: k }))).toEqual({ kind: "service", claims: { role: "service_role" } });
      expect((await auth(bearer(k))).kind).toBe("service");
      expect((await auth(new Headers({ apikey: k, authorization: `Bearer ${k}` }))).kind).toBe("service");
    }
  });

  it("a secret key beside a user's token acts as that user, as PostgREST does", async () => {
    const headers = new Headers({ apikey: SECRET_KEY, authorization: `Bearer ${await key.sign(userClaims)}` });
    expect(await auth(headers)).toMatchObject({ kind: "user", userId: USER });
    await rejects(auth(new Headers({ apikey: SECRET_KEY, authorization: "Bearer something-else" })));
  });

  it("the publishable key alone is nobody; beside a user's token it changes nothing", async () => {
    await rejects(auth(new Headers({ apikey: PUBLISHABLE_KEY })));
    await rejects(auth(bearer(PUBLISHABLE_KEY)));
    await rejects(auth(new Headers({ apikey: PUBLISHABLE_KEY, authorization: `Bearer ${PUBLISHABLE_KEY}` })));
    const caller = await auth(new Headers({ apikey: PUBLISHABLE_KEY, authorization: `Bearer ${await key.sign(userClaims)}` }));
    expect(caller).toMatchObject({ kind: "user", userId: USER });
  });

  it("a wrong secret key gets the 401, as apikey and as Bearer", async () => {
    for (const wrong of [SECRET_KEY.slice(0, -1) + "w", SECRET_KEY + "x", SECRET_KEY.slice(0, -1), "sb_secret_", "sb_"]) {
      await rejects(auth(new Headers({ apikey: wrong })));
      await rejects(auth(bearer(wrong)));
    }
  });

  it("takes the legacy service_role key the platform hands out, unless told not to", async () => {
    expect((await auth(new Headers({ apikey: legacyServiceRoleKey }))).kind).toBe("service");
    expect((await auth(new Headers({ apikey: legacyServiceRoleKey, authorization: `Bearer ${legacyServiceRoleKey}` }))).kind).toBe("service");
    // Another JWT with role service_role, signed with the same (unknown here) secret, is not the key.
    const forged = await new SignJWT({ role: "service_role" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime(now() + 600)
      .sign(new TextEncoder().encode(LEGACY_SECRET));
    await rejects(auth(bearer(forged)));
    const strict = createAuthenticator(loadConfig({ ...hosted, SIGYL_ACCEPT_SERVICE_ROLE_KEY: "false" }).auth, systemClock);
    await rejects(strict(new Headers({ apikey: legacyServiceRoleKey })));
    await rejects(strict(bearer(legacyServiceRoleKey)));
    expect((await strict(new Headers({ apikey: SECRET_KEY }))).kind).toBe("service");
  });

  it("a project still on the legacy JWT secret sets it as SIGYL_JWT_SECRET beside the platform's empty key set", async () => {
    const legacy = createAuthenticator(loadConfig({
      ...hosted, SUPABASE_JWKS: '{"keys":[]}', SIGYL_JWT_SECRET: LEGACY_SECRET,
    }).auth, systemClock);
    expect(await legacy(bearer(await hs(userClaims, LEGACY_SECRET)))).toMatchObject({ kind: "user", userId: USER });
    expect((await legacy(bearer(legacyServiceRoleKey))).kind).toBe("service");
    await rejects(legacy(bearer(await hs(userClaims, SECRET))));
    await rejects(legacy(bearer(await key.sign(userClaims))));
  });
});

describe("HS256 user tokens (the legacy secret)", () => {
  const auth = createAuthenticator({ jwtSecret: SECRET, serviceKeys: ["sb_secret_local_service_key_123456"] }, systemClock);

  it("accepts a Supabase-shaped access token", async () => {
    expect(await auth(bearer(await hs(userClaims)))).toMatchObject({ kind: "user", userId: USER, email: "a@example.com" });
  });

  it("turns away every malformed, forged or misdirected token with the same 401", async () => {
    await rejects(auth(new Headers()));
    await rejects(auth(new Headers({ authorization: "Basic abc" })));
    await rejects(auth(bearer("not-a-jwt")));
    await rejects(auth(bearer(await hs(userClaims, "another-secret-another-secret-another"))));
    await rejects(auth(bearer(await hs({ ...userClaims, aud: "other" }))));
    await rejects(auth(bearer(await hs({ ...userClaims, role: "anon" }))));
    await rejects(auth(bearer(await hs({ ...userClaims, sub: "not-a-uuid" }))));
    await rejects(auth(bearer(await new SignJWT(userClaims).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(SECRET)))));
    await rejects(auth(bearer(await new SignJWT(userClaims).setProtectedHeader({ alg: "HS256" }).setExpirationTime(now() - 10).sign(new TextEncoder().encode(SECRET)))));
    await rejects(auth(bearer(unsigned(userClaims))));
    // A token whose signature was altered.
    const valid = await hs(userClaims);
    await rejects(auth(bearer(valid.slice(0, -2) + (valid.endsWith("AA") ? "BB" : "AA"))));
  });

  it("makes the caller the service role by service-role JWT or by the configured key, not by a wrong key", async () => {
    expect((await auth(bearer(await hs({ role: "service_role" })))).kind).toBe("service");
    expect((await auth(new Headers({ apikey: "sb_secret_local_service_key_123456" }))).kind).toBe("service");
    await rejects(auth(new Headers({ apikey: "sb_secret_local_service_key_123457" })));
    await rejects(auth(new Headers({ apikey: "sb_secret_local_service_key_123456", authorization: "Bearer something-else" })));
  });

  it("a symmetric key in the inline key set is an HS256 secret, as Supabase's CLI hands its local one", async () => {
    const env = { SUPABASE_JWKS: JSON.stringify({ keys: [{ kty: "oct", k: b64url(SECRET) }] }), SIGYL_JWT_SECRET: "x".repeat(40) };
    const cli = createAuthenticator(loadConfig(env).auth, systemClock);
    expect(await cli(bearer(await hs(userClaims)))).toMatchObject({ kind: "user", userId: USER });
    await rejects(cli(bearer(await hs(userClaims, "another-secret-another-secret-another"))));
    await rejects(cli(bearer(unsigned(userClaims))));
  });
});

describe("the key set fetched from the project's URL (SUPABASE_JWKS absent)", () => {
  let server: Server;
  let projectUrl: string;
  let key: Awaited<ReturnType<typeof signingKey>>;
  const served: string[] = [];
  beforeAll(async () => {
    key = await signingKey("k1");
    server = createServer((req, res) => {
      served.push(req.url ?? "");
      if (req.url !== "/auth/v1/.well-known/jwks.json") {
        res.statusCode = 404;
        return res.end();
      }
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ keys: [key.jwk] }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    projectUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => server?.close());

  it("fetches <SUPABASE_URL>/auth/v1/.well-known/jwks.json and verifies ES256 tokens against it", async () => {
    const config = loadConfig({ SB_REGION: "eu-west-1", SUPABASE_URL: projectUrl });
    expect(config.auth).toMatchObject({ jwksUrl: `${projectUrl}/auth/v1/.well-known/jwks.json`, jwks: undefined, jwtSecret: undefined });
    const auth = createAuthenticator(config.auth, systemClock);
    expect(await auth(bearer(await key.sign(userClaims)))).toMatchObject({ kind: "user", userId: USER });
    expect(served).toContain("/auth/v1/.well-known/jwks.json");
    await rejects(auth(bearer(await hs(userClaims))));
    const other = await signingKey("k1");
    await rejects(auth(bearer(await other.sign(userClaims))));
  });

  it("verifies against a key set URL given directly", async () => {
    const auth = createAuthenticator({ jwksUrl: `${projectUrl}/auth/v1/.well-known/jwks.json` }, systemClock);
    expect(await auth(bearer(await key.sign(userClaims)))).toMatchObject({ kind: "user", userId: USER });
  });
});

describe("CORS", () => {
  it("answers preflights for configured origins only, before authentication", async () => {
    const keyring = await createKeyring([{ version: 1, status: "active", material: Buffer.alloc(32, 7).toString("base64") }]);
    const app = createApp({
      db: {} as Database, keyring, clock: systemClock, log: () => {},
      authenticator: createAuthenticator({ jwtSecret: SECRET }, systemClock),
      corsOrigins: ["https://console.sigyl.dev"],
    });
    const pre = (origin: string) => app.request("/secrets", { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST" } });
    const ok = await pre("https://console.sigyl.dev");
    expect(ok.status).toBe(204);
    expect(ok.headers.get("access-control-allow-origin")).toBe("https://console.sigyl.dev");
    const evil = await pre("https://evil.example");
    expect(evil.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("client address for the audit", () => {
  it("takes the entry the trusted proxy appended, not what the client claimed", async () => {
    const { clientIp } = await import("../../shared/http/middleware.ts");
    expect(clientIp("6.6.6.6, 203.0.113.7", 1)).toBe("203.0.113.7");
    expect(clientIp("6.6.6.6, 203.0.113.7, 10.0.0.2", 2)).toBe("203.0.113.7");
    expect(clientIp("203.0.113.7", 2)).toBeNull();
    expect(clientIp(undefined, 1)).toBeNull();
    expect(clientIp("203.0.113.7", 0)).toBeNull();
  });
});
