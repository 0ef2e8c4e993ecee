/** SQL of the deployments feature; parameterised, run in the caller's transaction. */
import type { Queryable } from "../db/database.ts";
import type { SealedValue } from "../crypto/envelope.ts";
import { SEALED_COLUMNS, type SealedRow, toSealed } from "../secrets/secret-dal.ts";

export interface DeploymentRow {
  id: string;
  user_id: string;
  name: string;
  status: string;
  required_env: string[];
}

export interface BindingRow {
  env_name: string;
  secret_id: string;
  secret_name: string | null;
  pinned_version: number | null;
  resolved_version: number | null;
  /** Null when the caller may not see the secret. */
  current_version: number | null;
}

export interface ProblemRow {
  env_name: string;
  problem: string;
  message: string;
}

export async function deploymentFor(tx: Queryable, id: string): Promise<DeploymentRow> {
  const [row] = await tx.query<DeploymentRow>(
    `select d.id, d.user_id, d.name, d.status, d.required_env from private.deployment_for($1::uuid) d`, [id]);
  return row;
}

export interface DeploymentSummaryRow extends DeploymentRow {
  binding_count: number;
  unbound_env: string[];
}

/**
 * The caller's deployments (the service role's: all, or `owner`'s), by name then id, after the
 * deployment `after` (the database refuses one the caller does not see: invalid_cursor).
 */
export function listDeployments(tx: Queryable, f: { owner?: string; status?: string; after?: string; limit: number }) {
  return tx.query<DeploymentSummaryRow>(
    `select d.id, d.user_id, d.name, d.status, d.required_env, d.binding_count, d.unbound_env
       from private.list_deployments($1::uuid, $2::text, $3::uuid, $4::int) d`,
    [f.owner ?? null, f.status ?? null, f.after ?? null, f.limit],
  );
}

export function replaceBindings(tx: Queryable, id: string, bindings: { envName: string; secretId: string; version?: number }[]) {
  return tx.query(`select env_name from private.replace_bindings($1::uuid, $2::text::jsonb)`, [
    id,
    JSON.stringify(bindings.map((b) => ({ env_name: b.envName, secret_id: b.secretId, version: b.version ?? null }))),
  ]);
}

/** Bindings with the secret's name where the caller may see it (RLS). */
export function listBindings(tx: Queryable, id: string) {
  return tx.query<BindingRow>(
    `select ds.env_name, ds.secret_id, s.name as secret_name, ds.pinned_version, ds.resolved_version,
            s.current_version
       from public.deployment_secrets ds left join public.secrets s on s.id = ds.secret_id
      where ds.deployment_id = $1::uuid order by ds.env_name`,
    [id],
  );
}

export function problems(tx: Queryable, id: string) {
  return tx.query<ProblemRow>(`select env_name, problem, message from private.deployment_report($1::uuid)`, [id]);
}

export async function createToken(tx: Queryable, id: string, hashBase64: string, expiresAt: string) {
  const [row] = await tx.query<{ id: string; expires_at: Date }>(
    `select t.id, t.expires_at from private.create_deployment_token($1::uuid, decode($2, 'base64'), $3::timestamptz) t`,
    [id, hashBase64, expiresAt],
  );
  return row;
}

export function listTokens(tx: Queryable, id: string) {
  return tx.query<{ id: string; created_by: string | null; created_at: Date; expires_at: Date; revoked_at: Date | null }>(
    `select * from private.list_deployment_tokens($1::uuid)`, [id]);
}

export async function revokeToken(tx: Queryable, id: string, tokenId: string) {
  await tx.query(`select private.revoke_deployment_token($1::uuid, $2::uuid)`, [id, tokenId]);
}

/** The deployment a live token (by its SHA-256, base64) opens, or null. */
export async function deploymentOfToken(q: Queryable, tokenHashBase64: string): Promise<string | null> {
  const [row] = await q.query<{ id: string | null }>(
    `select private.deployment_of_token(decode($1, 'base64')) as id`, [tokenHashBase64]);
  return row?.id ?? null;
}

export interface SealedEnvEntry {
  envName: string;
  secretId: string;
  version: number;
  sealed: SealedValue;
}

/**
 * Every binding's sealed value in one statement, each read audited with the deployment id,
 * and the env's fingerprint; `notModified` (nothing read, nothing audited) when `ifNoneMatch`
 * holds the fingerprint or `*`; or the refusal ("<code>" or "<code>: <detail>", as the error
 * catalogue words it).
 */
export async function resolveEnv(
  tx: Queryable, id: string, tokenHashBase64: string | null, ifNoneMatch: string[] | null = null,
): Promise<{ refused: string } | { notModified: true; fingerprint: string } | { entries: SealedEnvEntry[]; fingerprint: string }> {
  const rows = await tx.query<SealedRow & { outcome: string; env_name: string | null; secret_id: string; fingerprint: string }>(
    `select r.outcome, r.env_name, r.secret_id, r.fingerprint, ${SEALED_COLUMNS}
       from private.resolve_deployment_env($1::uuid, decode($2, 'base64'), $3::text[]) r`,
    [id, tokenHashBase64, ifNoneMatch],
  );
  const [first] = rows;
  if (first.outcome === "not_modified") return { notModified: true, fingerprint: first.fingerprint };
  if (first.outcome !== "ok") return { refused: first.outcome };
  return {
    fingerprint: first.fingerprint,
    entries: rows.filter((r) => r.env_name !== null).map((r) => ({
      envName: r.env_name!, secretId: r.secret_id, version: r.version, sealed: toSealed(r),
    })),
  };
}
