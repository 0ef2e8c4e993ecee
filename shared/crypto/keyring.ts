/**
 * The keyring: key-encryption keys (KEKs) held as non-extractable AES-256-GCM `CryptoKey`s,
 * loaded from Supabase Vault once per function instance. Raw material is decoded, length
 * checked, imported and dropped; nothing here logs or returns it. Only active and retiring
 * KEKs are held: a retired one wraps no DEK, so an instance has no use for it (Vault keeps
 * it for backups), and `private.load_keyring()` does not return it.
 */
import { fromBase64 } from "../bytes.ts";

export interface Keyring {
  /** The version new DEKs are wrapped with. */
  readonly activeVersion: number;
  /** The KEK of a version, or undefined if this instance does not hold it (unknown or retired). */
  get(version: number): CryptoKey | undefined;
  readonly versions: readonly number[];
  /**
   * Loads the keyring again from its source (Vault), after a KEK rotation this instance did
   * not see. Absent on a fixed keyring built from given material (unit tests).
   */
  reload?(): Promise<void>;
}

export interface KekMaterial {
  version: number;
  status: string;
  /** Base64 of 32 random bytes, as the migration stored it in Vault. */
  material: string;
}

export class KeyringError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyringError";
  }
}

/**
 * Imports raw 256-bit key bytes as a non-extractable KEK. Sealing and reading wrap and unwrap
 * DEKs as keys; the rotation's re-wrap opens and makes the same AES-GCM wrappings with
 * decrypt and encrypt (see `rewrapDek`), so the KEK has those uses too.
 */
export function importKek(raw: Uint8Array): Promise<CryptoKey> {
  if (raw.byteLength !== 32) throw new KeyringError("a KEK must be 32 bytes");
  return crypto.subtle.importKey("raw", raw as BufferSource, { name: "AES-GCM" }, false, ["wrapKey", "unwrapKey", "encrypt", "decrypt"]);
}

/** A keyring of the given KEKs; a retired one is skipped, never imported. */
export async function createKeyring(entries: readonly KekMaterial[]): Promise<Keyring> {
  const keys = new Map<number, CryptoKey>();
  let active: number | undefined;
  for (const entry of entries) {
    if (!Number.isInteger(entry.version) || entry.version < 1) throw new KeyringError("bad KEK version");
    if (entry.status === "retired") continue;
    let raw: Uint8Array;
    try {
      raw = fromBase64(entry.material);
    } catch {
      throw new KeyringError(`KEK version ${entry.version} is not base64`);
    }
    keys.set(entry.version, await importKek(raw));
    raw.fill(0);
    if (entry.status === "active") active = entry.version;
  }
  if (active === undefined) throw new KeyringError("no active KEK");
  const versions = [...keys.keys()].sort((a, b) => a - b);
  return { activeVersion: active, get: (v) => keys.get(v), versions };
}
