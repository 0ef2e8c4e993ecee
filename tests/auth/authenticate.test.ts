/**
 * Token verification on its own: HS256 and JWKS, the service role by JWT or by key, and the
 * same 401 for every way a token can be wrong.
 */
import { createServer, type Server } from "node:http";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuthenticator } from "../../shared/auth/authenticate.ts";
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

async function rejects(p: Promise<unknown>) {
  const err = await p.catch((e) => e);
  expect(err).toBeInstanceOf(AppError);
  expect(err).toMatchObject({ status: 401, code: "unauthenticated", message: "A valid access token is required." });
}

describe("HS256 user tokens", () => {
  const auth = createAuthenticator({ jwtSecret: SECRET, serviceKey: "sb_secret_local_service_key_123456" }, systemClock);

  it("accepts a Supabase-shaped access token", async () => {
    expect(await auth(bearer(await hs(userClaims)))).toMatchObject({ kind: "user", userId: USER, email: "a@example.com" });
  });

  it("turns away every malformed, forged or misdirected token with the same 401", async () => {
    await rejects(auth(new Headers()));
    await rejects(auth(new Headers({ authorization: "Basic abc" })));
    await rejects(auth(bearer(await hs(userClaims, "another-secret-another-secret-another"))));
    await rejects(auth(bearer(await hs({ ...userClaims, aud: "other" }))));
    await rejects(auth(bearer(await hs({ ...userClaims, role: "anon" }))));
    await rejects(auth(bearer(await hs({ ...userClaims, sub: "not-a-uuid" }))));
    await rejects(auth(bearer(await new SignJWT(userClaims).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(SECRET)))));
    await rejects(auth(bearer(await new SignJWT(userClaims).setProtectedHeader({ alg: "HS256" }).setExpirationTime(now() - 10).sign(new TextEncoder().encode(SECRET)))));
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    await rejects(auth(bearer(`${enc({ alg: "none" })}.${enc({ ...userClaims, exp: now() + 600 })}.`)));
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
});

describe("JWKS (asymmetric signing keys)", () => {
  let server: Server;
  let url: string;
  let privateKey: CryptoKey;
  beforeAll(async () => {
    const pair = await generateKeyPair("ES256");
    privateKey = pair.privateKey as CryptoKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256", use: "sig" };
    server = createServer((_, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/auth/v1/.well-known/jwks.json`;
  });
  afterAll(() => server?.close());

  it("verifies ES256 tokens against the project's JWKS and refuses others", async () => {
    const auth = createAuthenticator({ jwksUrl: url }, systemClock);
    const es = await new SignJWT(userClaims).setProtectedHeader({ alg: "ES256", kid: "k1" }).setExpirationTime(now() + 600).sign(privateKey);
    expect(await auth(bearer(es))).toMatchObject({ kind: "user", userId: USER });
    await rejects(auth(bearer(await hs(userClaims))));
    const other = await generateKeyPair("ES256");
    await rejects(auth(bearer(await new SignJWT(userClaims).setProtectedHeader({ alg: "ES256", kid: "k1" }).setExpirationTime(now() + 600).sign(other.privateKey))));
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
