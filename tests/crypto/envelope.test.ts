import { describe, expect, it, vi } from "vitest";
import {
  DecryptionError, openValue, rewrapDek, RewrapVerificationError, sealValue, type SealedValue, WRAPPED_DEK_BYTES,
} from "../../shared/crypto/envelope.ts";
import { createKeyring, importKek, type Keyring } from "../../shared/crypto/keyring.ts";
import { createDekCache, type DekCache } from "../../shared/crypto/dek-cache.ts";

const b64 = (n: number) => Buffer.from(crypto.getRandomValues(new Uint8Array(n))).toString("base64");
const keyring = (entries = [{ version: 1, status: "active", material: b64(32) }]) => createKeyring(entries);
const ID = "6f1c1b7e-4a55-4c55-9f7e-2b9c0d6f1a10";
const OTHER = "0b7f2d9e-1111-4c55-9f7e-2b9c0d6f1a10";

const tricky = [
  "sk-live-abc123",
  "ключ 🔑 秘密 مفتاح",
  "line one\nline two\r\nline three",
  `quotes ' " \` and \\ backslashes`,
  "   leading and trailing spaces   ",
  "x".repeat(64 * 1024),
  "é".repeat(32 * 1024),
];

async function tamperedFails(ring: Keyring, sealed: SealedValue, id = ID, version = 1) {
  await expect(openValue(ring, id, version, sealed)).rejects.toBeInstanceOf(DecryptionError);
}

describe("envelope encryption", () => {
  it("round-trips tricky values byte for byte", async () => {
    const ring = await keyring();
    for (const value of tricky) {
      const sealed = await sealValue(ring, ID, 1, value);
      expect(await openValue(ring, ID, 1, sealed)).toBe(value);
    }
  });

  it("never stores the value or its encodings in the sealed parts", async () => {
    const ring = await keyring();
    const value = "plaintext-marker-0123456789";
    const sealed = await sealValue(ring, ID, 1, value);
    const all = Buffer.concat([sealed.iv, sealed.ciphertext, sealed.wrappedDek].map((b) => Buffer.from(b)));
    expect(all.includes(Buffer.from(value))).toBe(false);
    expect(all.toString("latin1")).not.toContain(value);
    expect(sealed.iv.byteLength).toBe(12);
    expect(sealed.wrappedDek.byteLength).toBe(WRAPPED_DEK_BYTES);
    expect(sealed.ciphertext.byteLength).toBe(new TextEncoder().encode(value).byteLength + 16);
  });

  it("fails on any flipped byte of the IV, tag, ciphertext or wrapped DEK", async () => {
    const ring = await keyring();
    const sealed = await sealValue(ring, ID, 1, "tamper me");
    for (const part of ["iv", "ciphertext", "wrappedDek"] as const) {
      for (let i = 0; i < sealed[part].byteLength; i++) {
        const copy = new Uint8Array(sealed[part]);
        copy[i] ^= 0x01;
        await tamperedFails(ring, { ...sealed, [part]: copy });
      }
    }
  });

  it("fails when the blob is moved to another secret or another version", async () => {
    const ring = await keyring();
    const sealed = await sealValue(ring, ID, 3, "bound to its row");
    await tamperedFails(ring, sealed, OTHER, 3);
    await tamperedFails(ring, sealed, ID, 2);
    await tamperedFails(ring, sealed, ID, 4);
    expect(await openValue(ring, ID, 3, sealed)).toBe("bound to its row");
  });

  it("fails under the wrong KEK, an unknown KEK version, or a re-labelled KEK version", async () => {
    const ring = await keyring();
    const sealed = await sealValue(ring, ID, 1, "kek bound");
    await tamperedFails(await keyring(), sealed);
    await tamperedFails(ring, { ...sealed, kekVersion: 2 });
    const material = b64(32);
    const two = await createKeyring([{ version: 1, status: "retiring", material }, { version: 2, status: "active", material }]);
    const underOne = await sealValue(await createKeyring([{ version: 1, status: "active", material }]), ID, 1, "x1");
    await tamperedFails(two, { ...underOne, kekVersion: 2 });
  });

  it("rejects bad lengths and formats before touching the key", async () => {
    const ring = await keyring();
    const sealed = await sealValue(ring, ID, 1, "lengths");
    await tamperedFails(ring, { ...sealed, iv: sealed.iv.subarray(0, 11) });
    await tamperedFails(ring, { ...sealed, ciphertext: sealed.ciphertext.subarray(0, 16) });
    await tamperedFails(ring, { ...sealed, wrappedDek: sealed.wrappedDek.subarray(0, 59) });
    await tamperedFails(ring, { ...sealed, encFormat: 2 });
  });

  it("every decryption failure is the same error with no detail", async () => {
    const ring = await keyring();
    const sealed = await sealValue(ring, ID, 1, "same error");
    const errors = await Promise.all([
      openValue(ring, OTHER, 1, sealed).catch((e) => e),
      openValue(ring, ID, 1, { ...sealed, kekVersion: 9 }).catch((e) => e),
      openValue(ring, ID, 1, { ...sealed, iv: new Uint8Array(3) }).catch((e) => e),
    ]);
    for (const e of errors) {
      expect(e).toBeInstanceOf(DecryptionError);
      expect(e.message).toBe("decryption failed");
    }
  });

  it("re-wraps a DEK under a new KEK without touching the value ciphertext", async () => {
    const ring = await createKeyring([
      { version: 1, status: "retiring", material: b64(32) },
      { version: 2, status: "active", material: b64(32) },
    ]);
    const sealed = { ...(await sealValue(ring, ID, 1, "rewrap")) };
    const before = { ...sealed, kekVersion: 2 };
    const wrappedDek = await rewrapDek(ring, sealed, ID, 1, 1);
    const moved = await rewrapDek(ring, { wrappedDek, kekVersion: 1 }, ID, 1, 2);
    expect(await openValue(ring, ID, 1, { ...before, wrappedDek: moved, kekVersion: 2 })).toBe("rewrap");
  });

  it("never returns a re-wrapping that does not unwrap, under the new KEK, to the very same DEK", async () => {
    const ring = await createKeyring([
      { version: 1, status: "retiring", material: b64(32) },
      { version: 2, status: "active", material: b64(32) },
    ]);
    const sealed = await sealValue(ring, ID, 1, "only copy");
    const source = { wrappedDek: (await rewrapDek(ring, sealed, ID, 1, 1)), kekVersion: 1 };
    // The re-wrap seals the DEK's bytes with `encrypt` (see rewrapDek); the faults replace it.
    const real = crypto.subtle.encrypt.bind(crypto.subtle);
    // Faulty wraps: a flipped bit, a short blob, and a well-formed wrapping of another DEK
    // (which opens fine: only the comparison catches it).
    const faults: Record<string, (...args: Parameters<SubtleCrypto["encrypt"]>) => Promise<ArrayBuffer>> = {
      "flipped bit": async (...args) => {
        const out = new Uint8Array(await real(...args));
        out[5] ^= 1;
        return out.buffer;
      },
      "short blob": async (...args) => (await real(...args)).slice(0, 40),
      "another DEK": async (algorithm, kek) => real(algorithm, kek, crypto.getRandomValues(new Uint8Array(32))),
    };
    for (const [name, fault] of Object.entries(faults)) {
      const spy = vi.spyOn(crypto.subtle, "encrypt").mockImplementation(fault);
      try {
        await expect(rewrapDek(ring, source, ID, 1, 2), name).rejects.toBeInstanceOf(RewrapVerificationError);
        expect(spy, name).toHaveBeenCalledTimes(1);
      } finally {
        spy.mockRestore();
      }
    }
    // The source still opens, and an honest re-wrap passes its check.
    const moved = await rewrapDek(ring, source, ID, 1, 2);
    expect(await openValue(ring, ID, 1, { ...sealed, wrappedDek: moved, kekVersion: 2 })).toBe("only copy");
  });

  it("never imports a retired KEK", async () => {
    const ring = await createKeyring([
      { version: 1, status: "retired", material: b64(32) },
      { version: 2, status: "retiring", material: b64(32) },
      { version: 3, status: "active", material: b64(32) },
    ]);
    expect(ring.versions).toEqual([2, 3]);
    expect(ring.get(1)).toBeUndefined();
    expect(ring.activeVersion).toBe(3);
  });

  it("keeps KEKs non-extractable and refuses keys of the wrong size", async () => {
    const ring = await keyring();
    const kek = ring.get(1)!;
    expect(kek.extractable).toBe(false);
    await expect(crypto.subtle.exportKey("raw", kek)).rejects.toThrow();
    expect(() => importKek(new Uint8Array(16))).toThrow(/32 bytes/);
    await expect(createKeyring([{ version: 1, status: "retiring", material: b64(32) }])).rejects.toThrow(/no active KEK/);
  });

  it("draws no IV twice across 100,000 encryptions", async () => {
    const ring = await keyring();
    const seen = new Set<string>();
    for (let batch = 0; batch < 100; batch++) {
      const sealed = await Promise.all(Array.from({ length: 1000 }, () => sealValue(ring, ID, 1, "v")));
      for (const s of sealed) {
        seen.add(Buffer.from(s.iv).toString("hex"));
        seen.add(Buffer.from(s.wrappedDek.subarray(0, 12)).toString("hex"));
      }
    }
    expect(seen.size).toBe(200_000);
  });
});

describe("the unwrapped-DEK cache", () => {
  const clock = { now: () => new Date() };
  /** A DEK cache that counts hits, so a test sees whether a read used it. */
  function counting() {
    const inner = createDekCache(clock);
    const counts = { hits: 0, misses: 0 };
    const deks: DekCache = {
      get(...args) {
        const found = inner.get(...args);
        found ? counts.hits++ : counts.misses++;
        return found;
      },
      set: (...args) => inner.set(...args),
      get size() {
        return inner.size;
      },
    };
    return { deks, counts };
  }

  it("opens a value again from the cached DEK, which can only decrypt", async () => {
    const ring = await keyring();
    const { deks, counts } = counting();
    const sealed = await sealValue(ring, ID, 1, "cached value");
    expect(await openValue(ring, ID, 1, sealed, deks)).toBe("cached value");
    expect(await openValue(ring, ID, 1, sealed, deks)).toBe("cached value");
    expect(counts).toEqual({ hits: 1, misses: 1 });
    const dek = deks.get(sealed.kekVersion, sealed.wrappedDek, ID, 1)!;
    expect(dek.extractable).toBe(false);
    expect(dek.usages).toEqual(["decrypt"]);
  });

  it("still refuses a tampered ciphertext or IV whose DEK is cached", async () => {
    const ring = await keyring();
    const { deks } = counting();
    const sealed = await sealValue(ring, ID, 1, "tamper with me");
    await openValue(ring, ID, 1, sealed, deks);
    for (const part of ["iv", "ciphertext"] as const) {
      const copy = new Uint8Array(sealed[part]);
      copy[copy.length - 1] ^= 0x01;
      await expect(openValue(ring, ID, 1, { ...sealed, [part]: copy }, deks)).rejects.toBeInstanceOf(DecryptionError);
    }
  });

  it("serves a DEK only for the exact wrapping, secret, version and KEK it came from", async () => {
    const ring = await keyring([{ version: 1, status: "retiring", material: b64(32) }, { version: 2, status: "active", material: b64(32) }]);
    const { deks, counts } = counting();
    const sealed = await sealValue(ring, ID, 1, "bound to its row");
    await openValue(ring, ID, 1, sealed, deks);
    // The same blob presented as another secret's, another version's, or under another KEK label.
    await expect(openValue(ring, OTHER, 1, sealed, deks)).rejects.toBeInstanceOf(DecryptionError);
    await expect(openValue(ring, ID, 2, sealed, deks)).rejects.toBeInstanceOf(DecryptionError);
    await expect(openValue(ring, ID, 1, { ...sealed, kekVersion: 1 }, deks)).rejects.toBeInstanceOf(DecryptionError);
    // A value moved onto this row's place, its own DEK cached meanwhile.
    const other = await sealValue(ring, OTHER, 1, "someone else's");
    await openValue(ring, OTHER, 1, other, deks);
    await expect(openValue(ring, ID, 1, { ...sealed, ciphertext: other.ciphertext, iv: other.iv }, deks))
      .rejects.toBeInstanceOf(DecryptionError);
    expect(counts.hits).toBe(1);
  });

  it("misses after a re-wrap: the new wrapping is unwrapped with the new KEK", async () => {
    const ring = await keyring([{ version: 1, status: "retiring", material: b64(32) }, { version: 2, status: "active", material: b64(32) }]);
    const { deks, counts } = counting();
    const sealed = await sealValue(ring, ID, 1, "rotated");
    expect(sealed.kekVersion).toBe(2);
    await openValue(ring, ID, 1, sealed, deks);
    const rewrapped = { ...sealed, kekVersion: 1, wrappedDek: await rewrapDek(ring, sealed, ID, 1, 1) };
    expect(await openValue(ring, ID, 1, rewrapped, deks)).toBe("rotated");
    expect(counts).toEqual({ hits: 0, misses: 2 });
    const broken = new Uint8Array(rewrapped.wrappedDek);
    broken[20] ^= 0x01;
    await expect(openValue(ring, ID, 1, { ...rewrapped, wrappedDek: broken }, deks)).rejects.toBeInstanceOf(DecryptionError);
  });
});
