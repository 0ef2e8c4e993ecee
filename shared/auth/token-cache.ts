/**
 * Verified access tokens, by their exact text, so a caller's next request skips the signature
 * check: an ES256 verification costs about half a millisecond of CPU here, more than the rest
 * of a value read's work in the function (see the README's Benchmarks).
 *
 * What it may and may not do:
 * - An entry is the claims jose returned for that exact string; any other string (one byte
 *   changed, another signature) is a miss and is verified in full. Failures are never kept.
 * - An entry lives until the token's `exp` or `maxAgeMs` after it was verified, whichever
 *   comes first: an expired token is refused at once, by the same clock the verifier uses, and
 *   a key withdrawn from a fetched key set stops its tokens within `maxAgeMs`.
 * - At most `maxEntries` entries; when full, the oldest goes (insertion order).
 * - It holds nothing an attacker with the process's memory lacks: the tokens are in that
 *   memory while their requests run, and the same memory holds the database login and the
 *   KEKs, which open every value without any token.
 * Supabase access tokens are not revocable before `exp` (a signed-out session's token stays
 * valid until then); everything a token is allowed to do is still decided by the database
 * on every request, so a revoked grant or a deleted secret takes effect at once.
 */
import type { JWTPayload } from "jose";
import { type BoundedCacheOptions, createBoundedCache } from "../bounded-cache.ts";

export interface TokenCache {
  /** The claims of a token verified earlier and still valid at `nowMs`, else undefined. */
  get(token: string, nowMs: number): JWTPayload | undefined;
  /** Keeps a verified token's claims; a token without a numeric `exp` is not kept. */
  set(token: string, claims: JWTPayload, nowMs: number): void;
  readonly size: number;
}

export const TOKEN_CACHE_DEFAULTS: BoundedCacheOptions = { maxEntries: 5_000, maxAgeMs: 60_000 };

export function createTokenCache(options: Partial<BoundedCacheOptions> = {}): TokenCache {
  const cache = createBoundedCache<JWTPayload>({ ...TOKEN_CACHE_DEFAULTS, ...options });
  return {
    get: (token, nowMs) => cache.get(token, nowMs),
    set(token, claims, nowMs) {
      if (typeof claims.exp === "number") cache.set(token, claims, nowMs, claims.exp * 1000);
    },
    get size() {
      return cache.size;
    },
  };
}
