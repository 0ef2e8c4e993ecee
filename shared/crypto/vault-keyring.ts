import { asOwner, type Database } from "../db/database.ts";
import { loadKekMaterial } from "../keys/key-dal.ts";
import { createKeyring, type Keyring } from "./keyring.ts";

/**
 * Loads the active and retiring KEKs (never a retired one) from Supabase Vault through
 * `private.load_keyring()` (callable by the connection owner only). Called once per function
 * instance; `reload()` replaces the held keys after a KEK rotation (this instance's or
 * another's), dropping keys retired meanwhile, and callers holding this object see the new
 * keys at once. Concurrent reloads share one read of Vault, but a reload
 * always waits for a read that began after it was asked for, so it sees a key created
 * just before.
 */
export async function loadKeyringFromVault(db: Database): Promise<Keyring & { reload(): Promise<void> }> {
  // Through asOwner: inside a request transaction (an Idempotency-Key write) the reload joins it
  // instead of waiting for it (PGlite has one connection).
  const load = async () => createKeyring(await asOwner(db, null, loadKekMaterial));
  let current = await load();
  let running: Promise<void> | null = null;
  let queued: Promise<void> | null = null;
  const start = () => {
    running = load()
      .then((next) => {
        current = next;
      })
      .finally(() => {
        running = null;
      });
    return running;
  };
  return {
    get activeVersion() {
      return current.activeVersion;
    },
    get versions() {
      return current.versions;
    },
    get: (version) => current.get(version),
    reload() {
      if (!running) return start();
      queued ??= running.catch(() => {}).then(() => {
        queued = null;
        return start();
      });
      return queued;
    },
  };
}
