import type { Database } from "../db/database.ts";
import { createKeyring, type KekMaterial, type Keyring } from "./keyring.ts";

/**
 * Loads every KEK version from Supabase Vault through `private.load_keyring()` (callable by
 * the connection owner only). Called once per function instance.
 */
export async function loadKeyringFromVault(db: Database): Promise<Keyring> {
  const rows = await db.query<KekMaterial>(`select version, status, material from private.load_keyring()`);
  return await createKeyring(rows);
}
