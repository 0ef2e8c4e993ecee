/** SQL of the deployments feature; parameterised, run in the caller's transaction. */
import type { Queryable } from "../db/database.ts";
import type { SealedValue } from "../crypto/envelope.ts";

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

export function replaceBindings(tx: Queryable, id: string, bindings: { envName: string; secretId: string; version?: number }[]) {
  return tx.query(`select env_name from private.replace_bindings($1::uuid, $2::text::jsonb)`, [
    id,
    JSON.stringify(bindings.map((b) => ({ env_name: b.envName, secret_id: b.secretId, version: b.version ?? null }))),
  ]);
}

/** Bindings with the secret's name where the caller may see it (RLS). */
export function listBindings(tx: Queryable, id: string) {
  return tx.query<BindingRow>(
    `select ds.env_name, ds.secret_id, s.name as secret_name, ds.pinned_version, ds.resolved_version
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

export interface EnvRow {
  outcome: string;
  env_name: string;
  secret_id: string;
  version: number;
  sealed: SealedValue;
}

/** Base64 to bytes; a plain loop (Uint8Array.from with a map function was a hot spot in npm run bench). */
const unb64 = (text: string) => {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
};

/** Every binding's sealed value in one statement, each read audited with the deployment id. */
export async function resolveEnv(tx: Queryable, id: string, tokenHashBase64: string | null): Promise<EnvRow[]> {
  const rows = await tx.query<{
    outcome: string; env_name: string; secret_id: string; version: number; enc_format: number;
    iv: string; ciphertext: string; wrapped_dek: string; kek_version: number;
  }>(
    `select r.outcome, r.env_name, r.secret_id, r.version, r.enc_format, encode(r.iv, 'base64') as iv,
            encode(r.ciphertext, 'base64') as ciphertext, encode(r.wrapped_dek, 'base64') as wrapped_dek, r.kek_version
       from private.resolve_deployment_env($1::uuid, decode($2, 'base64')) r`,
    [id, tokenHashBase64],
  );
  return rows.map((r) => ({
    outcome: r.outcome, env_name: r.env_name, secret_id: r.secret_id, version: r.version,
    sealed: r.outcome === "ok"
      ? { encFormat: r.enc_format, iv: unb64(r.iv), ciphertext: unb64(r.ciphertext), wrappedDek: unb64(r.wrapped_dek), kekVersion: r.kek_version }
      : undefined as unknown as SealedValue,
  }));
}
