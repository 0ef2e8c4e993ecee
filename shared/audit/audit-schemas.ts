/** Request and response shapes of the audit routes (zod, the single source). */
import { z } from "zod";
import { decimalInt, isoDate, uuid } from "../http/validation.ts";

export const AUDIT_ACTIONS = [
  "created", "accessed", "updated", "rotated", "deleted", "restored", "purged", "shared", "unshared",
  "expired", "denied", "key_rotated", "bound", "unbound",
] as const;

/** Every action a row can record (public.audit_action): the filterable ones and the token events. */
export const RECORDED_ACTIONS = [...AUDIT_ACTIONS, "token_issued", "token_revoked"] as const;

export const auditQuery = z.strictObject({
  action: z.enum(AUDIT_ACTIONS).optional(),
  secretId: uuid.optional(),
  since: isoDate.optional(),
  until: isoDate.optional(),
  cursor: z.string().regex(/^\d{1,19}$/, "a cursor this API returned").optional(),
  limit: decimalInt(1, 200).default(50),
});
export type AuditQuery = z.infer<typeof auditQuery>;

const idOut = z.guid();
/** Row ids are bigints, written as decimal strings. */
const rowId = z.string().regex(/^[1-9][0-9]{0,18}$/);

/** One audit row as the API shows it: who did what to which secret, never a value. */
export const auditEntryDto = z.strictObject({
  id: rowId,
  secretId: idOut.nullable(),
  secretName: z.string().nullable(),
  actorId: idOut.nullable(),
  actorType: z.enum(["user", "service", "deployment", "system"]),
  action: z.enum(RECORDED_ACTIONS),
  version: z.number().int().nullable(),
  deploymentId: idOut.nullable(),
  ip: z.string().nullable(),
  userAgent: z.string().nullable(),
  requestId: z.string().nullable(),
  outcome: z.string(),
  details: z.record(z.string(), z.unknown()),
  createdAt: z.iso.datetime(),
}).meta({ id: "AuditEntry" });
export type AuditEntryDto = z.infer<typeof auditEntryDto>;

/** A page of audit rows, newest first. */
export const auditPage = z.strictObject({
  items: z.array(auditEntryDto),
  /** Pass back as `cursor` for the next page; null on the last. */
  nextCursor: rowId.nullable(),
});

// Tamper evidence and export (`/admin/audit`, service role only) ------------------------------

/** What a caller other than the service role is told. */
export const AUDIT_ADMIN_ONLY = "Verifying and exporting the audit trail is for the service role only.";

/** Rows per export page: default and most. */
export const EXPORT_DEFAULT_LIMIT = 1000;
export const EXPORT_MAX_LIMIT = 10_000;

/** `GET /admin/audit/export`: rows after `since` (an id; 0 or absent: from the start). */
export const exportQuery = z.strictObject({
  since: z.string().regex(/^(?:0|[1-9][0-9]{0,18})$/, "a cursor this API returned").default("0"),
  limit: decimalInt(1, EXPORT_MAX_LIMIT).default(EXPORT_DEFAULT_LIMIT),
});
export type ExportQuery = z.infer<typeof exportQuery>;

/** How many hash chains the trail has at most: a backend's pid modulo this (private.audit_chain_of). */
export const AUDIT_CHAINS = 256;

/** A chain's head: a checkpoint to keep outside the database and to compare with later. */
export const chainHead = z.strictObject({
  chain: z.number().int().min(0).max(AUDIT_CHAINS - 1),
  firstId: z.string().regex(/^[1-9][0-9]{0,18}$/).optional(),
  lastId: z.string().regex(/^[1-9][0-9]{0,18}$/, "an id"),
  rowCount: z.number().int().min(1),
  lastHash: z.string().regex(/^[0-9a-f]{64}$/, "64 lower-case hex digits"),
});
export type ChainHeadDto = Required<z.infer<typeof chainHead>>;

/** Most heads a checkpoint holds: one per chain (about 45 kB of JSON, well inside the body limit). */
export const MAX_CHECKPOINT_HEADS = AUDIT_CHAINS;

/**
 * Where a verification resumes: `chain.afterId.prevHash.seq`, as a call's `nextCursor` gives
 * it. Only the database's own check decides what it proves: a forged cursor verifies less,
 * never makes a broken link pass for the rows it walks.
 */
export const verifyCursor = z.string().regex(/^(?:[0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])\.(?:[1-9][0-9]{0,18})?\.(?:[0-9a-f]{64})?\.(?:0|[1-9][0-9]{0,18})$/, "a cursor this API returned");

/** `GET /admin/audit/verify?cursor=`: go on from an earlier call's `nextCursor`. */
export const verifyQuery = z.strictObject({ cursor: verifyCursor.optional() });

/**
 * `POST /admin/audit/verify`: the heads of an earlier run, compared on the first call (the
 * one without a cursor) and ignored after; `cursor` as for `GET`.
 */
export const verifyBody = z.strictObject({
  checkpoint: z.array(chainHead).max(MAX_CHECKPOINT_HEADS).optional(),
  cursor: verifyCursor.optional(),
});
export type VerifyInput = z.infer<typeof verifyBody>;

export const BROKEN_LINK_REASONS = [
  "unchained", "rows_missing", "out_of_order", "altered", "head_missing", "head_mismatch", "checkpoint_mismatch",
] as const;
export type BrokenLinkReason = typeof BROKEN_LINK_REASONS[number];

/** Where a chain breaks: the chain (null for a row outside every chain) and the row's id. */
export const brokenLinkDto = z.strictObject({
  chain: z.number().int().nullable(),
  id: z.string(),
  reason: z.enum(BROKEN_LINK_REASONS),
});
export type BrokenLinkDto = z.infer<typeof brokenLinkDto>;

/** A head as reported: every field present. */
const chainHeadDto = chainHead.required();

/**
 * One call's part of a verification. A call checks rows for a bounded time (and number), so a
 * large trail takes several: while `finished` is false, call again with `nextCursor`. `ok`,
 * `checkedRows` and the broken links are this call's; a verification is clean when every call
 * was ok.
 */
export const verifyResultDto = z.strictObject({
  /** No broken link in this call's part, and the checkpoint (if given) matches. */
  ok: z.boolean(),
  /** The whole trail has been walked; otherwise go on with `nextCursor`. */
  finished: z.boolean(),
  nextCursor: z.string().nullable(),
  checkedRows: z.number().int().min(0),
  /** The first broken link by id, or null. */
  firstBroken: brokenLinkDto.nullable(),
  /** The first broken link of each broken chain, by id (at most 100; `brokenCount` counts all). */
  broken: z.array(brokenLinkDto),
  brokenCount: z.number().int().min(0),
  /**
   * Every chain's head (at most 256) as it stood when the verification began: the next
   * checkpoint. On the first call (no cursor) only; null on the calls that go on.
   */
  heads: z.array(chainHeadDto).nullable(),
  /** Checkpoint heads compared (first call only), or null without a checkpoint. */
  checkpointHeads: z.number().int().nullable(),
});
export type VerifyResultDto = z.infer<typeof verifyResultDto>;

/** The export's body: NDJSON, one `ExportedAuditRowDto` a line. */
export const exportBody = z.string().meta({ description: "NDJSON: one audit row a line, chain fields included, never a value." });

/** One line of the export: the row as stored, chain fields included, never a value. */
export interface ExportedAuditRowDto extends AuditEntryDto {
  ownerId: string | null;
  /** The chain, its position in it and its hash (hex): see the README's "Audit: tamper evidence". */
  chain: number | null;
  seq: number | null;
  hash: string | null;
}
