/**
 * The seed's decryption design, kept only for the benchmark's comparison (scenario S): every
 * decrypt derives its AES-256-GCM key from one master secret with PBKDF2-SHA-256 and 100,000
 * iterations over a per-value salt. Nothing outside bench/ imports this file; the service
 * itself uses envelope encryption (shared/crypto/envelope.ts) and derives no key per request.
 *
 * Storage, so a seed-style value fits a `secret_versions` row and the real read path (RLS,
 * `private.read_value`, its audit row) is exercised unchanged: `iv` is the value's 12-byte IV,
 * `ciphertext` the AES-GCM output with its tag, and `wrapped_dek` carries the 16-byte salt
 * followed by zero padding to the column's 60 bytes.
 */
export const SEED_ITERATIONS = 100_000;
const SALT_BYTES = 16;
const IV_BYTES = 12;
const ROW_DEK_BYTES = 60;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

async function deriveKey(master: string, salt: Uint8Array, usage: KeyUsage): Promise<CryptoKey> {
  const base = await crypto.subtle.importKey("raw", encoder.encode(master) as BufferSource, "PBKDF2", false, ["deriveKey"]);
  return await crypto.subtle.deriveKey(
    { name: "PBKDF2", salt: salt as BufferSource, iterations: SEED_ITERATIONS, hash: "SHA-256" },
    base,
    { name: "AES-GCM", length: 256 },
    false,
    [usage],
  );
}

/** Seals a value the seed's way, shaped as the columns of a `secret_versions` row. */
export async function sealSeedStyle(master: string, value: string) {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const key = await deriveKey(master, salt, "encrypt");
  const ciphertext = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv: iv as BufferSource }, key, encoder.encode(value) as BufferSource),
  );
  const wrappedDek = new Uint8Array(ROW_DEK_BYTES);
  wrappedDek.set(salt, 0);
  return { iv, ciphertext, wrappedDek };
}

/** Opens a seed-style value: one PBKDF2 derivation (100,000 iterations) and one AES-GCM decrypt. */
export async function openSeedStyle(
  master: string,
  sealed: { iv: Uint8Array; ciphertext: Uint8Array; wrappedDek: Uint8Array },
): Promise<string> {
  const key = await deriveKey(master, sealed.wrappedDek.subarray(0, SALT_BYTES), "decrypt");
  const plain = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: sealed.iv as BufferSource },
    key,
    sealed.ciphertext as BufferSource,
  );
  return decoder.decode(plain);
}
