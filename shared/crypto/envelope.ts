/**
 * Envelope encryption of secret values with Web Crypto only.
 *
 *   value  --AES-256-GCM(DEK, iv, aad = value AAD)-->  ciphertext (with 16-byte tag)
 *   DEK    --AES-256-GCM(KEK v, dekIv, aad = DEK AAD)--> wrappedDek = dekIv || wrapped || tag
 *
 * A fresh 256-bit DEK and fresh 96-bit IVs per version. The AADs bind a blob to its row:
 * the value to (secret id, version), the DEK also to the KEK version, so a ciphertext copied
 * to another secret or version, or a DEK re-labelled with another KEK, never decrypts.
 * Lengths are checked before `crypto.subtle` is touched, and every failure to open is the
 * same `DecryptionError` with no detail. Format 1 is the only format; the number is stored
 * with each version so the format can evolve.
 */
import type { DekCache } from "./dek-cache.ts";
import type { Keyring } from "./keyring.ts";

const ENC_FORMAT = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const DEK_BYTES = 32;
export const WRAPPED_DEK_BYTES = IV_BYTES + DEK_BYTES + TAG_BYTES;

export interface SealedValue {
  encFormat: number;
  iv: Uint8Array;
  ciphertext: Uint8Array;
  wrappedDek: Uint8Array;
  kekVersion: number;
}

/** The one error of a failed decryption: wrong key, tampered or moved blob, bad lengths. */
export class DecryptionError extends Error {
  constructor() {
    super("decryption failed");
    this.name = "DecryptionError";
  }
}

/**
 * A re-wrapped DEK that does not unwrap, with the KEK it was wrapped under, to the DEK it
 * wraps: storing it would lose the value for good, so a rotation stops on it.
 */
export class RewrapVerificationError extends Error {
  constructor() {
    super("a re-wrapped DEK did not unwrap to the same key");
    this.name = "RewrapVerificationError";
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

// The id in canonical (lower-case) form: the same secret spelled in upper case must not
// seal a blob that its canonical id cannot open.
function valueAad(secretId: string, version: number): Uint8Array {
  return encoder.encode(`sigyl:v${ENC_FORMAT}:value:${secretId.toLowerCase()}:${version}`);
}

function dekAad(secretId: string, version: number, kekVersion: number): Uint8Array {
  return encoder.encode(`sigyl:v${ENC_FORMAT}:dek:${secretId.toLowerCase()}:${version}:${kekVersion}`);
}

function randomIv(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(IV_BYTES));
}

/** Seals a value for (secretId, version) under a fresh DEK wrapped by the active KEK. */
export async function sealValue(keyring: Keyring, secretId: string, version: number, value: string): Promise<SealedValue> {
  const kekVersion = keyring.activeVersion;
  const kek = keyring.get(kekVersion);
  if (!kek) throw new Error("the active KEK is not loaded");
  const dek = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, true, ["encrypt"]);
  const iv = randomIv();
  const ciphertext = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: iv as BufferSource, additionalData: valueAad(secretId, version) as BufferSource },
      dek,
      encoder.encode(value),
    ),
  );
  const wrappedDek = await wrapDek(kek, dek, secretId, version, kekVersion);
  return { encFormat: ENC_FORMAT, iv, ciphertext, wrappedDek, kekVersion };
}

async function wrapDek(kek: CryptoKey, dek: CryptoKey, secretId: string, version: number, kekVersion: number) {
  const dekIv = randomIv();
  const wrapped = new Uint8Array(
    await crypto.subtle.wrapKey("raw", dek, kek, {
      name: "AES-GCM",
      iv: dekIv as BufferSource,
      additionalData: dekAad(secretId, version, kekVersion) as BufferSource,
    }),
  );
  const out = new Uint8Array(WRAPPED_DEK_BYTES);
  out.set(dekIv, 0);
  out.set(wrapped, IV_BYTES);
  return out;
}

async function unwrapDek(
  keyring: Keyring,
  sealed: Pick<SealedValue, "wrappedDek" | "kekVersion">,
  secretId: string,
  version: number,
): Promise<CryptoKey> {
  const kek = keyring.get(sealed.kekVersion);
  if (!kek || sealed.wrappedDek.byteLength !== WRAPPED_DEK_BYTES) throw new DecryptionError();
  return await crypto.subtle.unwrapKey(
    "raw",
    sealed.wrappedDek.subarray(IV_BYTES) as BufferSource,
    kek,
    {
      name: "AES-GCM",
      iv: sealed.wrappedDek.subarray(0, IV_BYTES) as BufferSource,
      additionalData: dekAad(secretId, version, sealed.kekVersion) as BufferSource,
    },
    { name: "AES-GCM" },
    false,
    ["decrypt"],
  );
}

/**
 * Opens a sealed value of (secretId, version); any mismatch throws DecryptionError. With `deks`,
 * a DEK unwrapped from this very wrapping before is taken from it (and one unwrapped now is
 * kept), see shared/crypto/dek-cache.ts; the value's own decryption always runs.
 */
export async function openValue(
  keyring: Keyring, secretId: string, version: number, sealed: SealedValue, deks?: DekCache,
): Promise<string> {
  if (
    sealed.encFormat !== ENC_FORMAT || sealed.iv.byteLength !== IV_BYTES ||
    sealed.ciphertext.byteLength < TAG_BYTES + 1
  ) {
    throw new DecryptionError();
  }
  try {
    let dek = deks?.get(sealed.kekVersion, sealed.wrappedDek, secretId, version);
    if (!dek) {
      dek = await unwrapDek(keyring, sealed, secretId, version);
      deks?.set(sealed.kekVersion, sealed.wrappedDek, secretId, version, dek);
    }
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: sealed.iv as BufferSource, additionalData: valueAad(secretId, version) as BufferSource },
      dek,
      sealed.ciphertext as BufferSource,
    );
    return decoder.decode(plain);
  } catch {
    throw new DecryptionError();
  }
}

/**
 * Re-wraps a version's DEK under another KEK (KEK rotation). The value ciphertext is not
 * touched. The new wrapping replaces the only copy of the DEK, so before it is returned it
 * is opened with the target KEK and compared with the DEK it must hold; any difference (or a
 * failure to open) is a `RewrapVerificationError`. A source that does not unwrap is a
 * `DecryptionError`, as for a read.
 *
 * The wrapping is AES-GCM over the DEK's 32 bytes, so a wrapped DEK is opened with `decrypt`
 * and made with `encrypt` (the bytes `wrapKey`/`unwrapKey` would make and read): three Web
 * Crypto calls per DEK, where unwrapping to `CryptoKey`s, wrapping and exporting both for the
 * comparison took five, each a dispatch of tens of microseconds (the rotation's CPU). The DEK's
 * bytes were in memory for the comparison either way; both copies are zeroed before returning.
 */
export async function rewrapDek(
  keyring: Keyring,
  sealed: Pick<SealedValue, "wrappedDek" | "kekVersion">,
  secretId: string,
  version: number,
  toKekVersion: number,
): Promise<Uint8Array> {
  const target = keyring.get(toKekVersion);
  if (!target) throw new Error("the target KEK is not loaded");
  let dek: Uint8Array;
  try {
    dek = await openWrapping(keyring, sealed, secretId, version);
  } catch {
    throw new DecryptionError();
  }
  try {
    const dekIv = randomIv();
    const wrapped = new Uint8Array(WRAPPED_DEK_BYTES);
    wrapped.set(dekIv, 0);
    const sealedDek = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv: dekIv as BufferSource, additionalData: dekAad(secretId, version, toKekVersion) as BufferSource },
        target,
        dek as BufferSource,
      ),
    );
    if (sealedDek.byteLength !== WRAPPED_DEK_BYTES - IV_BYTES) throw new RewrapVerificationError();
    wrapped.set(sealedDek, IV_BYTES);
    await verifyWrapping(keyring, dek, wrapped, secretId, version, toKekVersion);
    return wrapped;
  } finally {
    dek.fill(0);
  }
}

/** The DEK bytes a wrapping holds (AES-GCM decryption under its KEK, with the DEK's AAD). */
async function openWrapping(
  keyring: Keyring,
  sealed: Pick<SealedValue, "wrappedDek" | "kekVersion">,
  secretId: string,
  version: number,
): Promise<Uint8Array> {
  const kek = keyring.get(sealed.kekVersion);
  if (!kek || sealed.wrappedDek.byteLength !== WRAPPED_DEK_BYTES) throw new DecryptionError();
  const dek = new Uint8Array(
    await crypto.subtle.decrypt(
      {
        name: "AES-GCM",
        iv: sealed.wrappedDek.subarray(0, IV_BYTES) as BufferSource,
        additionalData: dekAad(secretId, version, sealed.kekVersion) as BufferSource,
      },
      kek,
      sealed.wrappedDek.subarray(IV_BYTES) as BufferSource,
    ),
  );
  if (dek.byteLength !== DEK_BYTES) {
    dek.fill(0);
    throw new DecryptionError();
  }
  return dek;
}

/** Opens `wrapped` with KEK `kekVersion` and checks it yields exactly `dek`. */
async function verifyWrapping(
  keyring: Keyring,
  dek: Uint8Array,
  wrapped: Uint8Array,
  secretId: string,
  version: number,
  kekVersion: number,
): Promise<void> {
  let again: Uint8Array;
  try {
    again = await openWrapping(keyring, { wrappedDek: wrapped, kekVersion }, secretId, version);
  } catch {
    throw new RewrapVerificationError();
  }
  let diff = 0;
  for (let i = 0; i < DEK_BYTES; i++) diff |= dek[i] ^ again[i];
  again.fill(0);
  if (diff !== 0) throw new RewrapVerificationError();
}
