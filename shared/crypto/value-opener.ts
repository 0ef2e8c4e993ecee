/**
 * Opening sealed values with a keyring that another function instance may have rotated: the
 * one place that turns a DEK under an unknown KEK, or an active KEK retired meanwhile, into
 * "reload the keyring from Vault and try the whole transaction once more", and any other
 * failure into the one generic `decryption_failed`.
 *
 * A KEK still missing after the reload is one Vault does not give out: a retired key (the
 * keyring holds only active and retiring ones). A completed rotation leaves no version under
 * a retired key (retirement waits for the last re-wrap and a trigger refuses new ones), so
 * this means the database was changed by hand; the caller gets the same 500
 * `decryption_failed`, and the log line says which KEK (`reason: "kek_not_loaded"`), never
 * anything of the value.
 */
import type { DekCache } from "./dek-cache.ts";
import { DecryptionError, openValue, type SealedValue } from "./envelope.ts";
import type { Keyring } from "./keyring.ts";
import { type AppError, appError } from "../errors.ts";

/** A version is wrapped by a KEK this instance does not hold: another instance rotated. */
class KeyringOutdated extends Error {
  constructor(
    readonly secretId: string,
    readonly version: number,
    readonly fields: Record<string, unknown>,
  ) {
    super("the keyring does not hold this KEK version");
  }
}

/** The insert trigger refused this instance's active KEK: a rotation elsewhere retired it. */
const isKekRetired = (err: unknown) => (err as { message?: string } | null)?.message === "kek_retired";

/** `deks`: unwrapped DEKs shared by every opener of the app (shared/crypto/dek-cache.ts). */
export function createValueOpener(
  keyring: Keyring, log: (event: string, fields: Record<string, unknown>) => void, deks?: DekCache,
) {
  function decryptionFailed(secretId: string, version: number, extra: Record<string, unknown> = {}): AppError {
    log("decryption_failed", { secretId, version, ...extra });
    return appError("decryption_failed");
  }

  return {
    /** Decrypts, or fails with `decryption_failed` (logged with ids only). */
    async open(secretId: string, version: number, sealed: SealedValue, extra?: Record<string, unknown>): Promise<string> {
      if (!keyring.get(sealed.kekVersion)) {
        const fields = { ...extra, kekVersion: sealed.kekVersion, reason: "kek_not_loaded" };
        if (keyring.reload) throw new KeyringOutdated(secretId, version, fields);
        throw decryptionFailed(secretId, version, fields);
      }
      try {
        return await openValue(keyring, secretId, version, sealed, deks);
      } catch (err) {
        if (err instanceof DecryptionError) throw decryptionFailed(secretId, version, extra);
        throw err;
      }
    },

    /**
     * Runs `attempt` (sealing or opening, and its transaction); if it met a KEK version this
     * instance does not hold, or its active KEK was retired meanwhile, reloads the keyring
     * and runs it once more. The failed attempt rolled back, so nothing is written twice.
     */
    async withCurrentKeyring<T>(attempt: () => Promise<T>): Promise<T> {
      try {
        return await attempt();
      } catch (err) {
        if (!keyring.reload || !(err instanceof KeyringOutdated || isKekRetired(err))) throw err;
        await keyring.reload();
      }
      try {
        return await attempt();
      } catch (err) {
        throw err instanceof KeyringOutdated ? decryptionFailed(err.secretId, err.version, err.fields) : err;
      }
    },
  };
}
