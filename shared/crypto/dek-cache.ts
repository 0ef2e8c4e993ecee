/**
 * Unwrapped data keys, so a value read again soon costs one Web Crypto call (the decryption)
 * instead of two: the unwrap is about half the crypto of a read, and all of it for the
 * repeated reads of a deployment's env.
 *
 * What it may and may not do:
 * - An entry is found only by the exact wrapping it came from: the KEK version, the wrapped
 *   bytes (their random IV makes every wrapping unique) and the (secret, version) its AAD names.
 *   A blob moved to another row, re-labelled with another KEK or changed in one byte misses,
 *   and is unwrapped in full, where its AAD makes it fail. After a KEK rotation a version's
 *   wrapping is new, so it misses too: reads use the new wrapping at once.
 * - It never decides who may read: the database returns the sealed row only to a caller allowed
 *   to read it, in the transaction that audits the read, before any entry is looked up. A
 *   revoked grant, a deleted or expired secret take effect at once.
 * - The keys are non-extractable `CryptoKey`s usable only to decrypt; at most `maxEntries`, each
 *   at most `maxAgeMs`. What it holds adds nothing for an attacker with the process's memory,
 *   which also holds the KEKs that unwrap every DEK.
 */
import { toBase64 } from "../bytes.ts";
import { type BoundedCacheOptions, createBoundedCache } from "../bounded-cache.ts";
import type { Clock } from "../clock.ts";

export interface DekCache {
  get(kekVersion: number, wrappedDek: Uint8Array, secretId: string, version: number): CryptoKey | undefined;
  set(kekVersion: number, wrappedDek: Uint8Array, secretId: string, version: number, dek: CryptoKey): void;
  readonly size: number;
}

export const DEK_CACHE_DEFAULTS: BoundedCacheOptions = { maxEntries: 10_000, maxAgeMs: 5 * 60_000 };

export function createDekCache(clock: Clock, options: Partial<BoundedCacheOptions> = {}): DekCache {
  const cache = createBoundedCache<CryptoKey>({ ...DEK_CACHE_DEFAULTS, ...options });
  const keyOf = (kekVersion: number, wrappedDek: Uint8Array, secretId: string, version: number) =>
    `${kekVersion}:${toBase64(wrappedDek)}:${secretId.toLowerCase()}:${version}`;
  return {
    get: (k, w, s, v) => cache.get(keyOf(k, w, s, v), clock.now().getTime()),
    set: (k, w, s, v, dek) => cache.set(keyOf(k, w, s, v), dek, clock.now().getTime()),
    get size() {
      return cache.size;
    },
  };
}
