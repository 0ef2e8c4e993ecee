/**
 * SQL of KEK management. Every helper it calls is owner-only (see
 * supabase/migrations/20261128160700_key_rotation.sql); functions take the transaction they
 * run in. Key material crosses this file only in `loadKekMaterial`, on its way to the
 * keyring; everything else is wrapped DEKs, which are useless without the KEK.
 */
import { toBase64 } from "../bytes.ts";
import type { KekMaterial } from "../crypto/keyring.ts";
import type { Queryable, Row } from "../db/database.ts";

export interface KeyRow extends Row {
  version: number;
  status: string;
  created_at: Date;
  retired_at: Date | null;
  dek_count: number;
  /** bigint: a string from node-postgres, a number or bigint from PGlite. */
  wraps: number | string | bigint;
}

export interface RewrapSource extends Row {
  secret_id: string;
  version: number;
  kek_version: number;
  /** base64 */
  wrapped_dek: string;
}

export interface Rewrapped {
  secretId: string;
  version: number;
  fromVersion: number;
  wrappedDek: Uint8Array;
}

const KEY_COLUMNS = `version, status, created_at, retired_at, dek_count, wraps`;

/**
 * The material of the active and retiring KEKs from Vault (owner-only helper; retired keys
 * are not returned). The one query that returns key material; the keyring imports it as
 * non-extractable keys and drops the bytes.
 */
export function loadKekMaterial(q: Queryable): Promise<KekMaterial[]> {
  return q.query<KekMaterial>(`select version, status, material from private.load_keyring()`);
}

export function keyStatus(tx: Queryable): Promise<KeyRow[]> {
  return tx.query<KeyRow>(`select ${KEY_COLUMNS} from private.key_status()`);
}

/** DEKs still wrapped by a key other than the active one. */
export async function remainingToRewrap(tx: Queryable): Promise<number> {
  const [row] = await tx.query<{ n: number }>(`select private.rewrap_remaining()::int as n`);
  return row.n;
}

/** Starts a rotation (new active KEK in Vault) or resumes the open one. */
export async function beginRotation(tx: Queryable) {
  const [row] = await tx.query<{ from_version: number; to_version: number; created: boolean }>(
    `select from_version, to_version, created from private.begin_key_rotation()`,
  );
  return row;
}

/** The next versions to re-wrap, locked for this transaction, after a keyset position. */
export function rewrapSource(tx: Queryable, limit: number, after: { secretId: string; version: number } | null) {
  return tx.query<RewrapSource>(
    `select secret_id, version, kek_version, wrapped_dek
       from private.rewrap_batch_source($1::int, $2::uuid, $3::int)`,
    [limit, after?.secretId ?? null, after?.version ?? null],
  );
}

/**
 * Writes re-wrapped DEKs under `toVersion`; returns how many rows changed. The database
 * refuses the whole batch (`rewrap_unverified`) if a blob cannot be a re-wrap of its row.
 */
export async function storeRewrapped(tx: Queryable, toVersion: number, rows: Rewrapped[]): Promise<number> {
  const payload = rows.map((r) => ({
    secret_id: r.secretId, version: r.version, from_version: r.fromVersion, wrapped_dek: toBase64(r.wrappedDek),
  }));
  const [{ n }] = await tx.query<{ n: number }>(
    `select private.store_rewrapped($1::int, $2::text::jsonb) as n`,
    [toVersion, JSON.stringify(payload)],
  );
  return n;
}

/** Retires idle keys; closes and audits the open rotation when nothing is left to re-wrap. */
export async function finishRotation(tx: Queryable) {
  const [row] = await tx.query<{ completed: boolean; retired: number[] }>(
    `select completed, retired from private.finish_key_rotation()`,
  );
  return row;
}

/** Retires one key (raises key_not_found, key_active, key_in_use). */
export async function retireKey(tx: Queryable, version: number): Promise<KeyRow> {
  const [row] = await tx.query<KeyRow>(`select ${KEY_COLUMNS} from private.retire_key($1::int)`, [version]);
  return row;
}
