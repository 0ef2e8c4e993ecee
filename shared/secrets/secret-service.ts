/**
 * The secrets service: validation beyond shapes, encryption, and the one transaction per
 * call in which the database, acting as the caller, authorises and audits. It never sees
 * Hono, the environment or a global.
 */
import { fromBase64Url, toBase64Url } from "../bytes.ts";
import { type Clock, iso, isoOrNull } from "../clock.ts";
import { asCaller, type CallerContext, type Database } from "../db/database.ts";
import { sealValue } from "../crypto/envelope.ts";
import type { DekCache } from "../crypto/dek-cache.ts";
import { createValueOpener } from "../crypto/value-opener.ts";
import type { Keyring } from "../crypto/keyring.ts";
import { appError, fromDatabaseError } from "../errors.ts";
import { createBoundedCache } from "../bounded-cache.ts";
import { UUID_PATTERN } from "../http/validation.ts";
import { atLeast, type Permission } from "./permissions.ts";
import * as dal from "./secret-dal.ts";
import type {
  CreateSecretInput, GrantDto, GrantInput, ListQuery, PutValueInput, SecretDto, UpdateSecretInput, VersionDto,
} from "./secret-schemas.ts";
import { storableText } from "./secret-schemas.ts";

export interface SecretServiceDeps {
  db: Database;
  keyring: Keyring;
  clock: Clock;
  newId?: () => string;
  /** Where failures that callers only see as a generic error are reported (never with data). */
  log?: (event: string, fields: Record<string, unknown>) => void;
  /** Unwrapped DEKs, shared with the other services of the app (shared/crypto/dek-cache.ts). */
  deks?: DekCache;
}

/**
 * Bounds of the version hints: the current version this instance last saw of a secret, so a
 * new version can be sealed before its transaction (see `putValue`). A hint decides nothing
 * (the database checks it like an `expectedVersion`) and holds only a number per id.
 */
export const VERSION_HINTS = { maxEntries: 10_000, maxAgeMs: 5 * 60_000 };

const isVersionConflict = (err: unknown) => fromDatabaseError(err)?.code === "version_conflict";

function toSecretDto(row: dal.SecretRow, now: Date): SecretDto {
  const expired = row.expires_at !== null && new Date(row.expires_at) <= now;
  return {
    id: row.id,
    name: row.name,
    secretType: row.secret_type as SecretDto["secretType"],
    description: row.description,
    tags: row.tags,
    ownerId: row.user_id,
    status: row.deleted_at ? "deleted" : expired ? "expired" : row.is_active ? "active" : "inactive",
    isActive: row.is_active,
    expiresAt: isoOrNull(row.expires_at),
    currentVersion: row.current_version,
    permission: (row.permission ?? "use") as Permission,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
    deletedAt: isoOrNull(row.deleted_at),
  };
}

/** A cursor: [name, id], or [expires_at, id] when listing by expiry, as base64url JSON. */
function encodeCursor(key: string, id: string): string {
  return toBase64Url(new TextEncoder().encode(JSON.stringify([key, id])));
}

function decodeCursor(cursor: string, byExpiry: boolean): { key: string; id: string } {
  try {
    const [key, id] = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(fromBase64Url(cursor)));
    const keyOk = typeof key === "string" && storableText(key) && (!byExpiry || !Number.isNaN(Date.parse(key)));
    if (keyOk && typeof id === "string" && UUID_PATTERN.test(id)) return { key, id };
  } catch { /* fall through */ }
  throw appError("invalid_cursor");
}

export function createSecretService(deps: SecretServiceDeps) {
  const { db, keyring, clock } = deps;
  const newId = deps.newId ?? (() => crypto.randomUUID());
  const log = deps.log ?? (() => {});

  function assertFuture(expiresAt: string | null | undefined) {
    if (expiresAt && new Date(expiresAt) <= clock.now()) {
      throw appError("invalid_request", "expiresAt must be in the future.");
    }
  }

  const { open, withCurrentKeyring } = createValueOpener(keyring, log, deps.deks);
  const hints = createBoundedCache<number>(VERSION_HINTS);
  const hint = (id: string, version: number) => hints.set(id, version, clock.now().getTime());

  /**
   * The secret if visible at `min` or above. Visibility is the database's answer
   * (`private.caller_permission`: a deleted secret has no level below admin), as for every
   * helper, so all routes agree.
   */
  function visible(row: dal.SecretRow | null, min: Permission): dal.SecretRow {
    if (!row || !row.permission) throw appError("secret_not_found");
    if (!atLeast(row.permission, min)) throw appError("forbidden");
    return row;
  }

  return {
    async create(ctx: CallerContext, input: CreateSecretInput): Promise<SecretDto> {
      assertFuture(input.expiresAt);
      if (input.ownerId && ctx.role !== "service_role") {
        throw appError("invalid_request", "ownerId is for the service role only.");
      }
      const id = newId();
      // Sealed inside the retry: after a reload it must use the new active KEK.
      const row = await withCurrentKeyring(async () => {
        const sealed = await sealValue(keyring, id, 1, input.value);
        return await asCaller(db, ctx, (tx) =>
          dal.insertSecret(tx, {
            id, ownerId: input.ownerId ?? null, name: input.name, secretType: input.secretType,
            description: input.description, tags: input.tags, expiresAt: input.expiresAt ?? null,
          }, sealed));
      });
      hint(id, row.current_version);
      // The creator owns it (the statement's snapshot predates the row, so say it here).
      return toSecretDto({ ...row, permission: "owner" }, clock.now());
    },

    async list(ctx: CallerContext, q: ListQuery): Promise<{ items: SecretDto[]; nextCursor: string | null }> {
      const rows = await asCaller(db, ctx, (tx) =>
        dal.listSecrets(tx, {
          type: q.type, tag: q.tag, prefix: q.prefix, ownerId: q.ownerId, expiringWithin: q.expiringWithin,
          includeInactive: q.includeInactive ?? false, deleted: q.deleted ?? false,
          after: q.cursor ? decodeCursor(q.cursor, Boolean(q.expiringWithin)) : undefined, limit: q.limit + 1,
        }));
      const page = rows.slice(0, q.limit);
      const now = clock.now();
      const last = page[page.length - 1];
      return {
        items: page.map((r) => toSecretDto(r, now)),
        nextCursor: rows.length > q.limit
          ? encodeCursor(q.expiringWithin ? new Date(last.expires_at!).toISOString() : last.name, last.id)
          : null,
      };
    },

    async get(ctx: CallerContext, id: string): Promise<SecretDto> {
      const row = visible(await asCaller(db, ctx, (tx) => dal.findSecret(tx, id)), "use");
      hint(id, row.current_version);
      return toSecretDto(row, clock.now());
    },

    async update(ctx: CallerContext, id: string, patch: UpdateSecretInput): Promise<SecretDto> {
      assertFuture(patch.expiresAt);
      const row = await asCaller(db, ctx, (tx) => dal.updateSecret(tx, id, patch));
      return toSecretDto(row, clock.now());
    },

    async remove(ctx: CallerContext, id: string): Promise<SecretDto> {
      return toSecretDto(await asCaller(db, ctx, (tx) => dal.setDeleted(tx, id, true)), clock.now());
    },

    async restore(ctx: CallerContext, id: string): Promise<SecretDto> {
      return toSecretDto(await asCaller(db, ctx, (tx) => dal.setDeleted(tx, id, false)), clock.now());
    },

    /**
     * The value, decrypted. Its 'accessed' row commits with the read or not at all: a
     * decryption failure rolls both back. A denial commits its 'denied' row, then fails.
     */
    async readValue(ctx: CallerContext, id: string, version?: number): Promise<{ id: string; version: number; value: string }> {
      const result = await withCurrentKeyring(() => asCaller(db, ctx, async (tx) => {
        const r = await dal.readValue(tx, id, version ?? null);
        if (r.outcome !== "ok") return { error: appError(r.outcome) };
        return { version: r.version, value: await open(id, r.version, r.sealed) };
      }));
      if ("error" in result) throw result.error;
      return { id, version: result.version, value: result.value };
    },

    /**
     * A new value version, with check-and-set when `expectedVersion` is given.
     *
     * The version number is part of the value's AAD, so sealing needs it. When it is known
     * before the transaction (the caller's `expectedVersion`, else this instance's hint of the
     * current version) the value is sealed first and the write is one statement, which
     * `private.put_value` checks like any check-and-set (the caller may write, the secret is
     * live, the version is still current). A hint that turns out stale (another instance or
     * writer got there first) fails that check before anything is written and the write runs
     * again the long way: lock the secret, read its version, seal, store.
     */
    async putValue(ctx: CallerContext, id: string, input: PutValueInput): Promise<SecretDto> {
      const known = input.expectedVersion ?? hints.get(id, clock.now().getTime());
      const sealedFirst = known === undefined ? null : async () => {
        const sealed = await sealValue(keyring, id, known + 1, input.value);
        return await asCaller(db, ctx, (tx) => dal.insertVersion(tx, id, known, sealed, null));
      };
      let row: dal.SecretRow | null = null;
      if (sealedFirst) {
        try {
          row = await withCurrentKeyring(sealedFirst);
        } catch (err) {
          if (input.expectedVersion !== undefined || !isVersionConflict(err)) throw err;
        }
      }
      row ??= await withCurrentKeyring(() => asCaller(db, ctx, async (tx) => {
        const cur = await dal.lockSecret(tx, id, "write");
        if (cur.deleted_at) throw appError("secret_deleted");
        if (input.expectedVersion !== undefined && cur.current_version !== input.expectedVersion) {
          throw appError("version_conflict");
        }
        const sealed = await sealValue(keyring, id, cur.current_version + 1, input.value);
        return dal.insertVersion(tx, id, cur.current_version, sealed, null);
      }));
      hint(id, row.current_version);
      return toSecretDto(row, clock.now());
    },

    /** Roll back: a new version holding version n's value, re-sealed for its new place. */
    async rollback(ctx: CallerContext, id: string, n: number, expectedVersion?: number): Promise<SecretDto> {
      const row = await withCurrentKeyring(() => asCaller(db, ctx, async (tx) => {
        const { currentVersion, sealed } = await dal.versionForRollback(tx, id, n);
        if (expectedVersion !== undefined && currentVersion !== expectedVersion) throw appError("version_conflict");
        const value = await open(id, n, sealed);
        const resealed = await sealValue(keyring, id, currentVersion + 1, value);
        return dal.insertVersion(tx, id, currentVersion, resealed, n);
      }));
      hint(id, row.current_version);
      return toSecretDto(row, clock.now());
    },

    async listVersions(ctx: CallerContext, id: string): Promise<VersionDto[]> {
      return await asCaller(db, ctx, async (tx) => {
        const secret = visible(await dal.findSecret(tx, id), "read");
        const rows = await dal.listVersions(tx, id);
        return rows.map((r) => ({
          version: r.version,
          createdBy: r.created_by,
          createdAt: iso(r.created_at),
          restoredFrom: r.restored_from,
          kekVersion: r.kek_version,
          current: r.version === secret.current_version,
        }));
      });
    },

    async listGrants(ctx: CallerContext, id: string): Promise<GrantDto[]> {
      const rows = await asCaller(db, ctx, (tx) => dal.listGrants(tx, id));
      return rows.map(toGrantDto);
    },

    async grant(ctx: CallerContext, id: string, input: GrantInput): Promise<GrantDto> {
      const who = input.userId ? { userId: input.userId } : { email: input.email };
      return toGrantDto(await asCaller(db, ctx, (tx) => dal.grant(tx, id, who, input.permission)));
    },

    async revoke(ctx: CallerContext, id: string, userId: string): Promise<void> {
      await asCaller(db, ctx, (tx) => dal.revoke(tx, id, userId));
    },
  };
}

function toGrantDto(r: { user_id: string; email: string | null; permission: string; granted_by: string | null; granted_at: Date }): GrantDto {
  return { userId: r.user_id, email: r.email, permission: r.permission as GrantDto["permission"], grantedBy: r.granted_by, grantedAt: iso(r.granted_at) };
}

export type SecretService = ReturnType<typeof createSecretService>;
