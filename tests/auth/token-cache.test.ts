/**
 * The verified-token cache: a token verified once is not verified again until its `exp` (or
 * the cache's age limit), by the authenticator's own clock; any other string is verified in
 * full; failures are never kept; the cache is bounded.
 */
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { createAuthenticator } from "../../shared/auth/authenticate.ts";
import { createTokenCache, type TokenCache } from "../../shared/auth/token-cache.ts";
import { createBoundedCache } from "../../shared/bounded-cache.ts";
import { AppError } from "../../shared/errors.ts";

const USER = "6f1c1b7e-4a55-4c55-9f7e-2b9c0d6f1a10";
const claims = { sub: USER, role: "authenticated", aud: "authenticated" };
const bearer = (t: string) => new Headers({ authorization: `Bearer ${t}` });
const T0 = Date.UTC(2026, 11, 4, 12, 0, 0);

class Clock {
  constructor(public ms = T0) {}
  now() {
    return new Date(this.ms);
  }
}

/** A cache that counts what the authenticator asks of it. */
function countingCache(inner: TokenCache = createTokenCache()) {
  const counts = { hits: 0, misses: 0, stored: 0 };
  const cache: TokenCache = {
    get(token, now) {
      const found = inner.get(token, now);
      found ? counts.hits++ : counts.misses++;
      return found;
    },
    set(token, c, now) {
      counts.stored++;
      inner.set(token, c, now);
    },
    get size() {
      return inner.size;
    },
  };
  return { cache, counts };
}

async function setup(options: { expiresInS?: number; cache?: TokenCache } = {}) {
  const pair = await generateKeyPair("ES256");
  const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256" };
  const clock = new Clock();
  const sign = (extra: object = {}, expiresInS = options.expiresInS ?? 600) =>
    new SignJWT({ ...claims, ...extra }).setProtectedHeader({ alg: "ES256", kid: "k1" })
      .setIssuedAt(Math.floor(clock.ms / 1000)).setExpirationTime(Math.floor(clock.ms / 1000) + expiresInS).sign(pair.privateKey);
  const counted = countingCache(options.cache);
  const auth = createAuthenticator({ jwks: { keys: [jwk] }, tokenCache: counted.cache }, clock);
  return { auth, sign, clock, counts: counted.counts, cache: counted.cache };
}

async function refused(p: Promise<unknown>) {
  const err = await p.catch((e) => e);
  expect(err).toBeInstanceOf(AppError);
  expect(err).toMatchObject({ status: 401, code: "unauthenticated" });
}

describe("the verified-token cache", () => {
  it("verifies a token once, then answers from the cache with the same caller", async () => {
    const { auth, sign, counts } = await setup();
    const token = await sign();
    const first = await auth(bearer(token));
    const second = await auth(bearer(token));
    expect(second).toEqual(first);
    expect(first).toMatchObject({ kind: "user", userId: USER });
    expect(counts).toEqual({ hits: 1, misses: 1, stored: 1 });
  });

  it("refuses a cached token the moment it expires, by the authenticator's clock", async () => {
    // Well inside the cache's age limit (60 s), so only `exp` can end the entry.
    const { auth, sign, clock } = await setup({ expiresInS: 20 });
    const token = await sign();
    await auth(bearer(token));
    clock.ms += 19_999;
    await expect(auth(bearer(token))).resolves.toMatchObject({ kind: "user" });
    clock.ms += 1;
    await refused(auth(bearer(token)));
  });

  it("never lets another string ride on a cached token: a changed signature, payload or alg is verified and refused", async () => {
    const { auth, sign, counts } = await setup();
    const token = await sign();
    await auth(bearer(token));
    const [h, p, s] = token.split(".");
    const flipped = `${h}.${p}.${s.slice(0, -2)}${s.at(-2) === "A" ? "B" : "A"}${s.at(-1)}`;
    const payload = Buffer.from(JSON.stringify({ ...claims, role: "service_role", exp: 4102444800 })).toString("base64url");
    const none = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${p}.`;
    for (const forged of [flipped, `${h}.${payload}.${s}`, none, `${token} `.trim() + "x"]) await refused(auth(bearer(forged)));
    // None of them was stored: only the genuine token is in the cache.
    expect(counts.stored).toBe(1);
  });

  it("keeps no failure: a refused token is checked again on every request", async () => {
    const { auth, sign, counts, clock } = await setup({ expiresInS: 60 });
    const token = await sign();
    clock.ms += 61_000;
    await refused(auth(bearer(token)));
    await refused(auth(bearer(token)));
    expect(counts).toMatchObject({ hits: 0, stored: 0 });
  });

  it("re-checks the role and audience of a cached token on every request", async () => {
    const { auth, sign } = await setup();
    const anon = await sign({ role: "anon", aud: "authenticated" });
    await refused(auth(bearer(anon)));
    await refused(auth(bearer(anon)));
  });

  it("is bounded in size (the oldest goes first) and in age", () => {
    const cache = createBoundedCache<number>({ maxEntries: 3, maxAgeMs: 1000 });
    for (let i = 0; i < 5; i++) cache.set(`k${i}`, i, T0);
    expect(cache.size).toBe(3);
    expect([0, 1, 2, 3, 4].map((i) => cache.get(`k${i}`, T0))).toEqual([undefined, undefined, 2, 3, 4]);
    expect(cache.get("k4", T0 + 999)).toBe(4);
    expect(cache.get("k4", T0 + 1000)).toBeUndefined();
    cache.set("short", 1, T0, T0 + 10);
    expect(cache.get("short", T0 + 10)).toBeUndefined();
    cache.set("ended", 1, T0, T0);
    expect(cache.get("ended", T0)).toBeUndefined();
  });

  it("keeps a token no longer than the age limit, even when its exp is later", async () => {
    const { auth, sign, counts, clock } = await setup({ cache: createTokenCache({ maxAgeMs: 1000 }), expiresInS: 3600 });
    const token = await sign();
    await auth(bearer(token));
    clock.ms += 1000;
    await auth(bearer(token));
    expect(counts).toMatchObject({ hits: 0, stored: 2 });
  });
});
