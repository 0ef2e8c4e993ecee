/**
 * The instance keyring's reload: the held keys change in place for every holder, concurrent
 * reloads share one read of Vault, and a reload never settles on a read that began before it
 * was asked for (which could miss a key created just before).
 */
import { describe, expect, it } from "vitest";
import type { Database } from "../../shared/db/database.ts";
import { loadKeyringFromVault } from "../../shared/crypto/vault-keyring.ts";

/** A Vault stand-in: `versions` KEKs, the last active; each read takes a few milliseconds. */
function fakeVault() {
  const state = { versions: 1, reads: 0 };
  const material = Buffer.alloc(32, 9).toString("base64");
  const db = {
    query: async () => {
      state.reads++;
      const n = state.versions;
      await new Promise((r) => setTimeout(r, 20));
      return Array.from({ length: n }, (_, i) => ({ version: i + 1, status: i + 1 === n ? "active" : "retiring", material }));
    },
    // The keyring reads as the function's login, in a transaction of its own (asOwner).
    transaction: (fn: (tx: unknown) => Promise<unknown>) => fn(db),
  } as unknown as Database;
  return { db, state };
}

describe("keyring reload", () => {
  it("picks up a new KEK in place, sharing reads but never settling on one that began too early", async () => {
    const { db, state } = fakeVault();
    const keyring = await loadKeyringFromVault(db);
    expect([keyring.activeVersion, keyring.get(2), state.reads]).toEqual([1, undefined, 1]);

    const early = keyring.reload(); // reads Vault before KEK 2 exists
    await new Promise((r) => setTimeout(r, 5));
    state.versions = 2;
    const [a, b] = [keyring.reload(), keyring.reload()];
    expect(a).toBe(b);
    await Promise.all([early, a, b]);
    expect(keyring.activeVersion).toBe(2);
    expect(keyring.versions).toEqual([1, 2]);
    expect(keyring.get(2)).toBeDefined();
    expect(state.reads).toBe(3);
  });

  it("keeps the keys it holds when a reload fails", async () => {
    const { db, state } = fakeVault();
    const keyring = await loadKeyringFromVault(db);
    (db as { query: unknown }).query = async () => {
      state.reads++;
      throw new Error("database unavailable");
    };
    await expect(keyring.reload()).rejects.toThrow("database unavailable");
    expect(keyring.activeVersion).toBe(1);
    expect(keyring.get(1)).toBeDefined();
  });
});
