/** SQL of the audit trail's reading side; parameterised, run in the caller's transaction (RLS applies). */
import type { Queryable } from "../db/database.ts";

export interface AuditRow {
  [k: string]: unknown;
  id: string;
  secret_id: string | null;
  secret_name: string | null;
  actor_id: string | null;
  actor_type: string;
  action: string;
  version: number | null;
  deployment_id: string | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  outcome: string;
  details: Record<string, unknown>;
  created_at: Date;
}

export interface AuditFilters {
  secretId: string | null;
  action: string | null;
  since: string | null;
  until: string | null;
  /** Keyset position: rows with a smaller id. */
  before: string | null;
  limit: number;
}

/** Audit rows visible to the caller, newest first. */
export function listAudit(tx: Queryable, f: AuditFilters): Promise<AuditRow[]> {
  return tx.query<AuditRow>(
    `select id::text as id, secret_id, secret_name, actor_id, actor_type::text as actor_type, action::text as action,
            version, deployment_id, ip, user_agent, request_id, outcome, details, created_at
       from public.secret_access_logs
      where ($1::uuid is null or secret_id = $1::uuid)
        and ($2::public.audit_action is null or action = $2::public.audit_action)
        and ($3::timestamptz is null or created_at >= $3::timestamptz)
        and ($4::timestamptz is null or created_at < $4::timestamptz)
        and ($5::bigint is null or id < $5::bigint)
      order by id desc
      limit $6::int`,
    [f.secretId, f.action, f.since, f.until, f.before, f.limit],
  );
}
