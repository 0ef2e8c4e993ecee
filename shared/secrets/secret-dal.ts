/**
 * SQL of the secrets feature. Every statement is parameterised; no SQL or filter text is
 * ever built from input. Functions take the transaction they run in: the service decides
 * who they run as.
 */
import { fromBase64, toBase64 } from "../bytes.ts";
import type { Queryable, Row } from "../db/database.ts";
import type { SealedValue } from "../crypto/envelope.ts";
import { appError } from "../errors.ts";

export interface SecretRow extends Row {
  id: string;
  user_id: string;
  name: string;
  secret_type: string;
  description: string;
  tags: string[];
  is_active: boolean;
  expires_at: Date | null;
  current_version: number;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
  permission: string | null;
}

const SECRET_COLUMNS = `s.id, s.user_id, s.name, s.secret_type::text as secret_type, s.description, s.tags,
  s.is_active, s.expires_at, s.current_version, s.created_at, s.updated_at, s.deleted_at`;

/** A sealed value as bytea parameters ($n::text decoded in SQL). */
function sealedParams(sealed: SealedValue): [string, string, string, number] {
  return [toBase64(sealed.iv), toBase64(sealed.ciphertext), toBase64(sealed.wrappedDek), sealed.kekVersion];
}

/** A sealed version as it leaves the database: bytea as base64 (SEALED_COLUMNS of a row `r`). */
export interface SealedRow extends Row {
  version: number;
  enc_format: number;
  iv: string;
  ciphertext: string;
  wrapped_dek: string;
  kek_version: number;
}

export function toSealed(row: SealedRow): SealedValue {
  return {
    encFormat: row.enc_format,
    iv: fromBase64(row.iv),
    ciphertext: fromBase64(row.ciphertext),
    wrappedDek: fromBase64(row.wrapped_dek),
    kekVersion: row.kek_version,
  };
}

/** The sealed columns of a row aliased `r`, bytea as base64 (both drivers agree on text). */
export const SEALED_COLUMNS = `r.version, r.enc_format, encode(r.iv, 'base64') as iv,
  encode(r.ciphertext, 'base64') as ciphertext, encode(r.wrapped_dek, 'base64') as wrapped_dek, r.kek_version`;

export async function insertSecret(
  tx: Queryable,
  input: {
    id: string; ownerId: string | null; name: string; secretType: string; description: string;
    tags: string[]; expiresAt: string | null;
  },
  sealed: SealedValue,
): Promise<SecretRow> {
  const [iv, ct, dek, kek] = sealedParams(sealed);
  const rows = await tx.query<SecretRow>(
    `select ${SECRET_COLUMNS}, private.caller_permission(s.id) as permission
       from private.create_secret($1::uuid, $2::uuid, $3::text, $4::public.secret_type, $5::text,
              array(select jsonb_array_elements_text($6::text::jsonb)), $7::timestamptz,
              decode($8, 'base64'), decode($9, 'base64'), decode($10, 'base64'), $11::int) s`,
    [input.id, input.ownerId, input.name, input.secretType, input.description, JSON.stringify(input.tags),
      input.expiresAt, iv, ct, dek, kek],
  );
  return rows[0];
}

/** One secret by id, as the caller sees it (RLS applies). Exported for the benchmark's EXPLAIN. */
export const FIND_SECRET_SQL = `select ${SECRET_COLUMNS}, private.caller_permission(s.id) as permission
       from public.secrets s where s.id = $1::uuid`;

/** The secret as the caller sees it (RLS applies), or null. */
export async function findSecret(tx: Queryable, id: string): Promise<SecretRow | null> {
  const rows = await tx.query<SecretRow>(FIND_SECRET_SQL, [id]);
  return rows[0] ?? null;
}

/** The caller's level on a secret (owner, admin, write, read, use), or null when not visible. */
export async function callerPermission(tx: Queryable, id: string): Promise<string | null> {
  const [row] = await tx.query<{ permission: string | null }>(`select private.caller_permission($1::uuid) as permission`, [id]);
  return row?.permission ?? null;
}

/** Locks the secret for a change and checks the caller's level (raises 404/403). */
export async function lockSecret(tx: Queryable, id: string, minLevel: string): Promise<SecretRow> {
  const rows = await tx.query<SecretRow>(
    `select ${SECRET_COLUMNS}, r.level as permission
       from private.lock_secret_for($1::uuid, $2::text) r, lateral (select (r.s).*) s`,
    [id, minLevel],
  );
  return rows[0];
}

export interface ListFilters {
  type?: string;
  tag?: string;
  prefix?: string;
  includeInactive: boolean;
  deleted: boolean;
  ownerId?: string;
  /** Only live secrets expiring within this interval ('7 days'), soonest first. */
  expiringWithin?: string;
  /** Keyset position: (name, id), or (expires_at, id) when listing by expiry. */
  after?: { key: string; id: string };
  limit: number;
}

/**
 * Visible secrets (RLS), ordered by name then id, keyset-paginated. Parameters, in order:
 * type, tag, prefix, includeInactive, deleted, ownerId, after key, after id, limit,
 * expiringWithin. Exported for the benchmark's EXPLAIN.
 */
export const LIST_SECRETS_SQL = `select * from (
       select ${SECRET_COLUMNS}, private.caller_permission(s.id) as permission
         from public.secrets s
        where ($1::public.secret_type is null or s.secret_type = $1::public.secret_type)
          and ($2::text is null or $2::text = any (s.tags))
          and ($3::text is null or left(s.name, char_length($3::text)) = $3::text)
          and ($4::boolean or (s.is_active and (s.expires_at is null or s.expires_at > now())))
          and (case when $5::boolean then s.deleted_at is not null else s.deleted_at is null end)
          and ($6::uuid is null or s.user_id = $6::uuid)
          and ($10::text is null or (s.expires_at > now() and s.expires_at <= now() + $10::text::interval))
          and ($7::text is null or case when $10::text is null then (s.name, s.id) > ($7::text, $8::uuid)
                                        else (s.expires_at, s.id) > ($7::text::timestamptz, $8::uuid) end)
        order by case when $10::text is null then s.name end, s.expires_at, s.name, s.id
     ) v
     where not $5::boolean or private.permission_rank(v.permission) >= private.permission_rank('admin')
     limit $9::int`;

/** Visible secrets (RLS), ordered by name then id, keyset-paginated. */
export function listSecrets(tx: Queryable, f: ListFilters): Promise<SecretRow[]> {
  return tx.query<SecretRow>(
    LIST_SECRETS_SQL,
    [f.type ?? null, f.tag ?? null, f.prefix ?? null, f.includeInactive, f.deleted, f.ownerId ?? null,
      f.after?.key ?? null, f.after?.id ?? null, f.limit, f.expiringWithin ?? null],
  );
}

export async function updateSecret(tx: Queryable, id: string, patch: Record<string, unknown>): Promise<SecretRow> {
  const rows = await tx.query<SecretRow>(
    `select ${SECRET_COLUMNS}, private.caller_permission(s.id) as permission
       from private.update_secret($1::uuid, $2::text::jsonb) s`,
    [id, JSON.stringify(patch)],
  );
  return rows[0];
}

export async function setDeleted(tx: Queryable, id: string, deleted: boolean): Promise<SecretRow> {
  const rows = await tx.query<SecretRow>(
    `select ${SECRET_COLUMNS}, private.caller_permission(s.id) as permission
       from private.set_deleted($1::uuid, $2::boolean) s`,
    [id, deleted],
  );
  return rows[0];
}

export async function insertVersion(
  tx: Queryable, id: string, expectedVersion: number, sealed: SealedValue, restoredFrom: number | null,
): Promise<SecretRow> {
  const [iv, ct, dek, kek] = sealedParams(sealed);
  const rows = await tx.query<SecretRow>(
    `select ${SECRET_COLUMNS}, private.caller_permission(s.id) as permission
       from private.put_value($1::uuid, $2::int, decode($3, 'base64'), decode($4, 'base64'),
                              decode($5, 'base64'), $6::int, $7::int) s`,
    [id, expectedVersion, iv, ct, dek, kek, restoredFrom],
  );
  return rows[0];
}

export type ReadOutcome =
  | { outcome: "ok"; version: number; sealed: SealedValue }
  | { outcome: "secret_not_found" | "forbidden" | "secret_deleted" | "secret_expired" | "secret_inactive" | "version_not_found" };

/** The audited value read: writes 'accessed' or 'denied' in this transaction. */
export async function readValue(tx: Queryable, id: string, version: number | null): Promise<ReadOutcome> {
  const [row] = await tx.query<SealedRow & { outcome: string }>(
    `select r.outcome, ${SEALED_COLUMNS} from private.read_value($1::uuid, $2::int) r`,
    [id, version],
  );
  if (row.outcome !== "ok") return { outcome: row.outcome } as ReadOutcome;
  return { outcome: "ok", version: row.version, sealed: toSealed(row) };
}

export async function versionForRollback(
  tx: Queryable, id: string, version: number,
): Promise<{ currentVersion: number; sealed: SealedValue }> {
  const [row] = await tx.query<SealedRow & { current_version: number }>(
    `select r.current_version, ${SEALED_COLUMNS} from private.version_for_rollback($1::uuid, $2::int) r`,
    [id, version],
  );
  if (!row) throw appError("version_not_found");
  return { currentVersion: row.current_version, sealed: toSealed(row) };
}

export function listVersions(tx: Queryable, id: string) {
  return tx.query<{ version: number; created_by: string | null; created_at: Date; restored_from: number | null; kek_version: number }>(
    `select version, created_by, created_at, restored_from, kek_version
       from public.secret_versions where secret_id = $1::uuid order by version desc`,
    [id],
  );
}

interface GrantRow extends Row {
  user_id: string;
  email: string | null;
  permission: string;
  granted_by: string | null;
  granted_at: Date;
}

export function listGrants(tx: Queryable, id: string) {
  return tx.query<GrantRow>(`select * from private.list_grants($1::uuid)`, [id]);
}

export async function grant(tx: Queryable, id: string, who: { userId?: string; email?: string }, level: string) {
  const rows = await tx.query<GrantRow>(
    `select * from private.grant_permission($1::uuid, $2::uuid, $3::text, $4::public.secret_permission)`,
    [id, who.userId ?? null, who.email ?? null, level],
  );
  return rows[0];
}

export async function revoke(tx: Queryable, id: string, userId: string): Promise<void> {
  await tx.query(`select private.revoke_permission($1::uuid, $2::uuid)`, [id, userId]);
}
