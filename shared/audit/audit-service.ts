/**
 * Reading the audit trail. Writing it is the database's job (triggers and the value-read
 * helper); here RLS decides what a caller may see: its own actions, and every event on the
 * secrets it owns or administers. Newest first, keyset-paginated by id.
 *
 * For the service role also: verifying the trail's hash chains (the database recomputes them,
 * in bounded steps, one short transaction each) and exporting it page by page for a SIEM.
 */
import { iso } from "../clock.ts";
import { asCaller, type CallerContext, type Database, type Queryable } from "../db/database.ts";
import { appError } from "../errors.ts";
import { atLeast } from "../secrets/permissions.ts";
import { callerPermission } from "../secrets/secret-dal.ts";
import * as chainDal from "./audit-chain-dal.ts";
import * as dal from "./audit-dal.ts";
import {
  AUDIT_ADMIN_ONLY, type AuditEntryDto, type AuditQuery, type BrokenLinkDto, type BrokenLinkReason, type ChainHeadDto,
  type ExportedAuditRowDto, type ExportQuery, type VerifyInput, type VerifyResultDto,
} from "./audit-schemas.ts";

/** Rows one verification step checks (one transaction, well inside the request budget). */
export const VERIFY_STEP_ROWS = 10_000;
/**
 * One call's bounds: it starts no step after this long (a step of 10 000 rows takes a fraction
 * of a second), nor past this many rows, and returns a cursor to go on from. Well inside the
 * edge runtime's wall clock and the request deadline, whatever the trail's size.
 */
export const VERIFY_CALL_MS = 5_000;
export const VERIFY_CALL_ROWS = 500_000;
/** Broken links listed in full; more are only counted. */
const MAX_BROKEN_LISTED = 100;

function toDto(r: dal.AuditRow): AuditEntryDto {
  return {
    id: r.id, secretId: r.secret_id, secretName: r.secret_name, actorId: r.actor_id, actorType: r.actor_type as AuditEntryDto["actorType"],
    action: r.action as AuditEntryDto["action"], version: r.version, deploymentId: r.deployment_id, ip: r.ip, userAgent: r.user_agent,
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

function toHeadDto(h: chainDal.HeadRow): ChainHeadDto {
  return { chain: h.chain, firstId: h.first_id, lastId: h.last_id, rowCount: Number(h.row_count), lastHash: h.last_hash };
}

function toExportDto(r: chainDal.ExportRow): ExportedAuditRowDto {
  return {
    id: r.id, secretId: r.secret_id, secretName: r.secret_name, ownerId: r.owner_id, actorId: r.actor_id,
    actorType: r.actor_type as AuditEntryDto["actorType"], action: r.action as AuditEntryDto["action"], version: r.version,
    deploymentId: r.deployment_id, ip: r.ip,
    userAgent: r.user_agent, requestId: r.request_id, outcome: r.outcome, details: r.details, createdAt: r.created_at,
    chain: r.chain, seq: r.seq === null ? null : Number(r.seq), hash: r.hash,
  };
}

const byId = (a: BrokenLinkDto, b: BrokenLinkDto) => {
  const d = BigInt(a.id) - BigInt(b.id);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
};

/** A step's resume position as a cursor (`chain.afterId.prevHash.seq`), and back. */
function toCursor(at: chainDal.VerifyPosition): string {
  return `${at.chain}.${at.afterId ?? ""}.${at.prevHash ?? ""}.${at.seq}`;
}

function fromCursor(cursor: string): chainDal.VerifyPosition {
  const [chain, afterId, prevHash, seq] = cursor.split(".");
  return { chain: Number(chain), afterId: afterId || null, prevHash: prevHash || null, seq };
}

export function createAuditService(
  deps: { db: Database; verifyStepRows?: number; verifyCallMs?: number; verifyCallRows?: number; now?: () => number },
) {
  const { db } = deps;
  const stepRows = deps.verifyStepRows ?? VERIFY_STEP_ROWS;
  const callMs = deps.verifyCallMs ?? VERIFY_CALL_MS;
  const callRows = deps.verifyCallRows ?? VERIFY_CALL_ROWS;
  const now = deps.now ?? (() => performance.now());

  /** The routes check too; this keeps the service safe to call from anywhere else. */
  function authorize(ctx: CallerContext) {
    if (ctx.role !== "service_role") throw appError("forbidden", AUDIT_ADMIN_ONLY);
  }

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

    /**
     * Recomputes the chains, step by step (one short transaction each), for a bounded time and
     * number of rows, and reports the first broken link of each chain it finished (and the
     * first of all); `nextCursor` goes on where it stopped. The first call (no cursor) reads
     * the heads before the walk, so each is covered by it: on a clean run they are a checkpoint
     * to keep elsewhere and pass back later as `checkpoint` (compared on that first call).
     */
    async verify(ctx: CallerContext, input: Partial<VerifyInput> = {}): Promise<VerifyResultDto> {
      authorize(ctx);
      const started = now();
      const first = !input.cursor;
      const heads = first ? (await asCaller(db, ctx, chainDal.chainHeads)).map(toHeadDto) : null;
      const broken: BrokenLinkDto[] = [];
      let checkedRows = 0;
      let at: chainDal.VerifyPosition = input.cursor
        ? fromCursor(input.cursor)
        : { chain: null, afterId: null, prevHash: null, seq: "0" };
      let finished = false;
      for (;;) {
        const step = await asCaller(db, ctx, (tx) => chainDal.verifyStep(tx, at, stepRows));
        checkedRows += step.checked;
        if (step.reason) {
          broken.push({ chain: step.broken_chain, id: step.broken_id!, reason: step.reason as BrokenLinkReason });
        }
        if (step.finished) {
          finished = true;
          break;
        }
        at = { chain: step.next_chain, afterId: step.next_after_id, prevHash: step.next_prev, seq: step.next_seq };
        if (now() - started >= callMs || checkedRows >= callRows) break;
      }
      const checkpoint = first ? input.checkpoint ?? null : null;
      if (checkpoint?.length) {
        const mismatched = await asCaller(db, ctx, (tx) => chainDal.checkpointMismatches(tx, checkpoint));
        for (const m of mismatched) broken.push({ chain: m.chain, id: m.id, reason: "checkpoint_mismatch" });
      }
      broken.sort(byId);
      return {
        ok: broken.length === 0,
        finished,
        nextCursor: finished ? null : toCursor(at),
        checkedRows,
        firstBroken: broken[0] ?? null,
        broken: broken.slice(0, MAX_BROKEN_LISTED),
        brokenCount: broken.length,
        heads,
        checkpointHeads: checkpoint ? checkpoint.length : null,
      };
    },

    /** One export page after `since`, and the cursor of the next (the last id sent, or `since`). */
    async exportPage(ctx: CallerContext, q: ExportQuery) {
      authorize(ctx);
      const rows = (await asCaller(db, ctx, (tx) => chainDal.exportPage(tx, q.since, q.limit))).map(toExportDto);
      return { rows, nextCursor: rows.length ? rows[rows.length - 1].id : q.since };
    },
  };
}

export type AuditService = ReturnType<typeof createAuditService>;
