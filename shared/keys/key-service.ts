/**
 * KEK management: rotation, the key list, retirement. It never sees Hono, the environment or
 * a global, and never holds key material outside the keyring's non-extractable CryptoKeys.
 *
 * Rotation, as the database and this service share it:
 *   1. `begin`: the database creates KEK n+1 in Vault (random bytes that never leave it),
 *      makes it active and marks KEK n retiring; or, if a rotation is open, resumes it.
 *   2. The keyring is reloaded from Vault, so this instance holds KEK n+1 and seals new
 *      versions with it at once.
 *   3. Batches: each transaction locks up to `batchSize` versions still under an older key
 *      (FOR UPDATE SKIP LOCKED), unwraps each DEK in memory and wraps it again under KEK
 *      n+1; two batches run at a time. Values are not re-encrypted; only wrapped_dek and kek_version change. A reader
 *      sees either the old row or the new one, and holds both keys, so it never fails.
 *      The new wrapping overwrites the only copy of the DEK, so each one is unwrapped with
 *      KEK n+1 and compared with the DEK before it is stored (`rewrapDek`); one that fails
 *      stops the rotation with `rewrap_unverified` and its batch stores nothing (the database
 *      also refuses a blob that cannot be a re-wrap). A source DEK that does not unwrap (a
 *      tampered row) is another matter: skipped and logged, the rotation goes on.
 *   4. When no DEK is left under an older key, `finish` retires the idle keys and writes the
 *      `key_rotated` audit row, and this instance reloads its keyring, which drops them.
 *      Interrupted anywhere (maxBatches, a time budget, a crash, a failed check), the next
 *      call resumes at step 1 without creating another key.
 *
 * The key list reports, per key, the wraps the database counted (`wraps`): a KEK wraps with
 * random IVs, which NIST SP 800-38D caps at 2^32 per key. From 2^30 on a key is
 * `nearWrapLimit`, and listing the keys logs `kek_wrap_limit_near` for each such key still
 * in use.
 *
 * The database work runs as the connection owner (the helpers are owner-only), after this
 * service has checked that the caller is the service role. The caller's claims and request
 * headers are set on the transaction so the audit row names it. A null context is the
 * operator running `npm run keys:rotate` in-process: audited as 'system'.
 */
import { fromBase64 } from "../bytes.ts";
import { type Clock, iso, isoOrNull } from "../clock.ts";
import { asOwner, type CallerContext, type Database, type Queryable } from "../db/database.ts";
import { DecryptionError, rewrapDek, RewrapVerificationError } from "../crypto/envelope.ts";
import type { Keyring } from "../crypto/keyring.ts";
import { appError } from "../errors.ts";
import * as dal from "./key-dal.ts";
import {
  DEFAULT_BATCH_SIZE, type KeyDto, type KeyStatus, type RotateInput, type RotationDto, SERVICE_ROLE_ONLY,
  WRAP_LIMIT, WRAP_WARNING,
} from "./key-schemas.ts";

export interface KeyServiceDeps {
  db: Database;
  /** The instance's keyring; rotation reloads it, so it must come from Vault (`reload`). */
  keyring: Keyring;
  clock: Clock;
  /** Where DEKs that could not be re-wrapped are reported (ids only, never data). */
  log?: (event: string, fields: Record<string, unknown>) => void;
  /**
   * A rotation call starts no new batch after this long and reports what remains, so an
   * HTTP call ends well inside the edge runtime's wall-clock limit. Default 20 s.
   */
  timeBudgetMs?: number;
}

/** Batches in flight during a rotation (each holds one pooled connection while it runs). */
const REWRAP_WORKERS = 2;

function toKeyDto(row: dal.KeyRow): KeyDto {
  const wraps = Number(row.wraps);
  return {
    version: row.version,
    status: row.status as KeyStatus,
    createdAt: iso(row.created_at),
    retiredAt: isoOrNull(row.retired_at),
    dekCount: row.dek_count,
    wraps,
    nearWrapLimit: wraps >= WRAP_WARNING,
  };
}

export function createKeyService(deps: KeyServiceDeps) {
  const { db, keyring, clock } = deps;
  const log = deps.log ?? (() => {});
  const timeBudgetMs = deps.timeBudgetMs ?? 20_000;

  /** The routes check too; this keeps the service safe to call from anywhere else. */
  function authorize(ctx: CallerContext | null) {
    if (ctx && ctx.role !== "service_role") throw appError("forbidden", SERVICE_ROLE_ONLY);
  }

  /** Logs each key still in use whose wraps reached the warning threshold. */
  function warnNearWrapLimit(keys: KeyDto[]) {
    for (const k of keys) {
      if (k.nearWrapLimit && k.status !== "retired") {
        log("kek_wrap_limit_near", { kekVersion: k.version, status: k.status, wraps: k.wraps, limit: WRAP_LIMIT });
      }
    }
  }

  /**
   * Re-wraps rows this transaction has locked. A DEK that does not unwrap is skipped and
   * logged; a new wrapping that fails its check is logged and fails the batch, storing none
   * of it (the transaction rolls back).
   */
  async function rewrapRows(tx: Queryable, toVersion: number, rows: dal.RewrapSource[]): Promise<number> {
    // All at once: each Web Crypto call has a fixed cost of tens of microseconds, much of it
    // waiting, which overlaps when the calls are in flight together.
    const outcomes = await Promise.all(rows.map(async (row): Promise<dal.Rewrapped | "skipped" | "unverified"> => {
      const ids = { secretId: row.secret_id, version: row.version, kekVersion: row.kek_version };
      try {
        const wrappedDek = await rewrapDek(
          keyring, { wrappedDek: fromBase64(row.wrapped_dek), kekVersion: row.kek_version }, row.secret_id, row.version, toVersion,
        );
        return { secretId: row.secret_id, version: row.version, fromVersion: row.kek_version, wrappedDek };
      } catch (err) {
        if (err instanceof RewrapVerificationError) {
          log("rewrap_unverified", { ...ids, toVersion });
          return "unverified";
        }
        if (!(err instanceof DecryptionError)) throw err;
        log("rewrap_failed", ids);
        return "skipped";
      }
    }));
    if (outcomes.includes("unverified")) throw appError("rewrap_unverified");
    const done = outcomes.filter((o): o is dal.Rewrapped => typeof o === "object");
    return done.length ? await dal.storeRewrapped(tx, toVersion, done) : 0;
  }

  return {
    /**
     * Every KEK version with its status, how many DEKs it still wraps and how many wraps it
     * has made; logs `kek_wrap_limit_near` for each key in use past 2^30 wraps.
     */
    async list(ctx: CallerContext | null): Promise<KeyDto[]> {
      authorize(ctx);
      const keys = (await asOwner(db, ctx, dal.keyStatus)).map(toKeyDto);
      warnNearWrapLimit(keys);
      return keys;
    },

    /** Starts or resumes a rotation and re-wraps DEKs until done, `maxBatches` or the time budget. */
    async rotate(ctx: CallerContext | null, input: RotateInput = {}): Promise<RotationDto> {
      authorize(ctx);
      if (!keyring.reload) throw new Error("KEK rotation needs a keyring loaded from Vault");
      const batchSize = input.batchSize ?? DEFAULT_BATCH_SIZE;
      const started = clock.now().getTime();

      const { from_version: fromVersion, to_version: toVersion } = await asOwner(db, ctx, dal.beginRotation);
      // Every key up to toVersion exists by now (an open rotation blocks new ones): one reload holds them all.
      if (!keyring.get(toVersion)) await keyring.reload();
      if (!keyring.get(toVersion)) throw new Error("the new KEK did not load from Vault");

      // Batches run REWRAP_WORKERS at a time, so one re-wraps while another waits on the
      // database. Their fetches take turns and share one keyset position, so no row is met
      // twice in a call (a DEK that does not unwrap is logged once); a short fetch means
      // nothing is left ahead. Rows another call holds are skipped (SKIP LOCKED), as before.
      let rewrapped = 0;
      let batches = 0;
      let after: { secretId: string; version: number } | null = null;
      let turn: Promise<unknown> = Promise.resolve();
      const fetchBatch = (tx: Queryable) => {
        const fetched = turn.then(async () => {
          const rows = await dal.rewrapSource(tx, batchSize, after);
          const last = rows[rows.length - 1];
          if (last) after = { secretId: last.secret_id, version: last.version };
          return rows;
        });
        turn = fetched.catch(() => {});
        return fetched;
      };
      // A batch that fails (a wrapping that failed its check, the database gone) stops the
      // others from starting one; what they have in flight still commits or rolls back whole.
      let failing = false;
      const mayStart = () => !failing &&
        (input.maxBatches === undefined || batches < input.maxBatches) &&
        !(batches > 0 && clock.now().getTime() - started >= timeBudgetMs);
      const worker = async () => {
        while (mayStart()) {
          batches++;
          const { seen, done } = await asOwner(db, ctx, async (tx) => {
            const rows = await fetchBatch(tx);
            return { seen: rows.length, done: await rewrapRows(tx, toVersion, rows) };
          }).catch((err) => {
            failing = true;
            throw err;
          });
          rewrapped += done;
          if (seen < batchSize) break;
        }
      };
      const failed = (await Promise.allSettled(Array.from({ length: REWRAP_WORKERS }, worker)))
        .find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failed) throw failed.reason;

      let remaining = await asOwner(db, ctx, dal.remainingToRewrap);
      let completed = false;
      if (remaining === 0) {
        completed = (await asOwner(db, ctx, dal.finishRotation)).completed;
        // A version sealed under the old key by an instance that had not reloaded yet.
        if (!completed) remaining = await asOwner(db, ctx, dal.remainingToRewrap);
        // The keys just retired leave this instance's memory (others drop them at their next
        // reload, or when the platform recycles them). The rotation is done either way: a
        // failed reload only leaves them held a while longer.
        else {
          await keyring.reload().catch((err) =>
            log("keyring_reload_failed", { after: "rotation", error: err instanceof Error ? err.name : "unknown" })
          );
        }
      }
      return { fromVersion, toVersion, rewrapped, remaining, completed };
    },

    /** Retires a key that is not active and wraps no DEK; retiring a retired key changes nothing. */
    async retire(ctx: CallerContext | null, version: number): Promise<KeyDto> {
      authorize(ctx);
      return toKeyDto(await asOwner(db, ctx, (tx) => dal.retireKey(tx, version)));
    },
  };
}

export type KeyService = ReturnType<typeof createKeyService>;
