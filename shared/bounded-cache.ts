/**
 * A small cache bounded in size and in lifetime, for the two caches on the request path (the
 * verified-token cache, shared/auth/token-cache.ts, and the unwrapped-DEK cache,
 * shared/crypto/dek-cache.ts). Each entry lives until the earlier of its own end and `maxAgeMs`
 * after it was stored; once `maxEntries` are held, storing another drops the oldest (insertion
 * order). Time is passed in, so callers use their injected clock.
 *
 * Written here rather than taken from a library: the well-kept LRU packages (lru-cache) carry
 * far more than these twenty lines need (size accounting, fetch, disposal), and a cache on the
 * request path is code a reviewer should be able to read whole.
 */
export interface BoundedCacheOptions {
  maxEntries: number;
  maxAgeMs: number;
}

export interface BoundedCache<V> {
  /** The value stored under `key`, if its life has not ended by `nowMs`. */
  get(key: string, nowMs: number): V | undefined;
  /** Stores `value` until `endsAtMs` (or `maxAgeMs` from `nowMs`, whichever is sooner). */
  set(key: string, value: V, nowMs: number, endsAtMs?: number): void;
  delete(key: string): void;
  clear(): void;
  readonly size: number;
}

export function createBoundedCache<V>({ maxEntries, maxAgeMs }: BoundedCacheOptions): BoundedCache<V> {
  const entries = new Map<string, { value: V; untilMs: number }>();
  return {
    get(key, nowMs) {
      const entry = entries.get(key);
      if (!entry) return undefined;
      if (nowMs >= entry.untilMs) {
        entries.delete(key);
        return undefined;
      }
      return entry.value;
    },
    set(key, value, nowMs, endsAtMs = Infinity) {
      const untilMs = Math.min(endsAtMs, nowMs + maxAgeMs);
      if (maxEntries <= 0 || !(untilMs > nowMs)) return;
      if (!entries.has(key) && entries.size >= maxEntries) entries.delete(entries.keys().next().value!);
      entries.set(key, { value, untilMs });
    },
    delete: (key) => void entries.delete(key),
    clear: () => entries.clear(),
    get size() {
      return entries.size;
    },
  };
}
