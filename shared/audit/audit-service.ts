/**
 * Reading the audit trail. Writing it is the database's job (triggers and the value-read
 * helper); here RLS decides what a caller may see: its own actions, and every event on the
 * secrets it owns or administers. Newest first, keyset-paginated by id.
 */
import { asCaller, type CallerContext, type Database, type Queryable } from "../db/database.ts";
import { appError } from "../errors.ts";
import type { AuditEntryDto, AuditQuery } from "./audit-schemas.ts";

interface AuditRow {
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

function query(tx: Queryable, q: AuditQuery, secretId: string | null) {
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
    [secretId ?? q.secretId ?? null, q.action ?? null, q.since ?? null, q.until ?? null, q.cursor ?? null, q.limit + 1],
  );
}

function toDto(r: AuditRow): AuditEntryDto {
  return {
    id: r.id, secretId: r.secret_id, secretName: r.secret_name, actorId: r.actor_id, actorType: r.actor_type,
    action: r.action, version: r.version, deploymentId: r.deployment_id, ip: r.ip, userAgent: r.user_agent,
    requestId: r.request_id, outcome: r.outcome, details: r.details, createdAt: new Date(r.created_at).toISOString(),
  };
}

function page(rows: AuditRow[], limit: number) {
  const items = rows.slice(0, limit).map(toDto);
  return { items, nextCursor: rows.length > limit ? items[items.length - 1].id : null };
}

export function createAuditService(deps: { db: Database }) {
  const { db } = deps;
  return {
    /** The caller's audit view. */
    async list(ctx: CallerContext, q: AuditQuery) {
      return page(await asCaller(db, ctx, (tx) => query(tx, q, null)), q.limit);
    },

    /** The trail of one secret; owners and admins only. */
    async listForSecret(ctx: CallerContext, secretId: string, q: AuditQuery) {
      const rows = await asCaller(db, ctx, async (tx) => {
        const [s] = await tx.query<{ permission: string | null }>(
          `select private.caller_permission($1::uuid) as permission`, [secretId]);
        if (!s?.permission) throw appError(404, "secret_not_found");
        if (!["owner", "admin"].includes(s.permission)) throw appError(403, "forbidden");
        return query(tx, q, secretId);
      });
      return page(rows, q.limit);
    },
  };
}

export type AuditService = ReturnType<typeof createAuditService>;
