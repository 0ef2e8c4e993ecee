/**
 * Reading the audit trail. Writing it is the database's job (triggers and the value-read
 * helper); here RLS decides what a caller may see: its own actions, and every event on the
 * secrets it owns or administers. Newest first, keyset-paginated by id.
 */
import { iso } from "../clock.ts";
import { asCaller, type CallerContext, type Database, type Queryable } from "../db/database.ts";
import { appError } from "../errors.ts";
import { atLeast } from "../secrets/permissions.ts";
import { callerPermission } from "../secrets/secret-dal.ts";
import * as dal from "./audit-dal.ts";
import type { AuditEntryDto, AuditQuery } from "./audit-schemas.ts";

function toDto(r: dal.AuditRow): AuditEntryDto {
  return {
    id: r.id, secretId: r.secret_id, secretName: r.secret_name, actorId: r.actor_id, actorType: r.actor_type,
    action: r.action, version: r.version, deploymentId: r.deployment_id, ip: r.ip, userAgent: r.user_agent,
    requestId: r.request_id, outcome: r.outcome, details: r.details, createdAt: iso(r.created_at),
  };
}

/** One more row than the page, to know whether there is a next one. */
function query(tx: Queryable, q: AuditQuery, secretId: string | null) {
  return dal.listAudit(tx, {
    secretId: secretId ?? q.secretId ?? null, action: q.action ?? null, since: q.since ?? null,
    until: q.until ?? null, before: q.cursor ?? null, limit: q.limit + 1,
  });
}

function page(rows: dal.AuditRow[], limit: number) {
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

    /** The trail of one secret; owners and admins only (a deleted secret has no lower level). */
    async listForSecret(ctx: CallerContext, secretId: string, q: AuditQuery) {
      const rows = await asCaller(db, ctx, async (tx) => {
        const level = await callerPermission(tx, secretId);
        if (!level) throw appError("secret_not_found");
        if (!atLeast(level, "admin")) throw appError("forbidden");
        return query(tx, q, secretId);
      });
      return page(rows, q.limit);
    },
  };
}

export type AuditService = ReturnType<typeof createAuditService>;
