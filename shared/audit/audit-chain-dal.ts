/**
 * SQL of the audit trail's tamper evidence and export: one bounded verification step, the
 * chains' heads, a checkpoint's heads against the rows, and one export page. Run as the
 * service role (the helpers are security definer, granted to it alone).
 */
import type { Queryable } from "../db/database.ts";

/** Where a verification stopped, to resume from (a null chain: from the start). */
export interface VerifyPosition {
  chain: number | null;
  afterId: string | null;
  prevHash: string | null;
  seq: string;
}

export interface VerifyStepRow {
  [k: string]: unknown;
  next_chain: number | null;
  next_after_id: string | null;
  next_prev: string;
  next_seq: string;
  checked: number;
  broken_chain: number | null;
  broken_id: string | null;
  reason: string | null;
  finished: boolean;
}

/** At most `budget` rows checked, from `at`; the first broken link met, and where to go on. */
export async function verifyStep(tx: Queryable, at: VerifyPosition, budget: number): Promise<VerifyStepRow> {
  const [row] = await tx.query<VerifyStepRow>(
    `select next_chain, next_after_id::text as next_after_id, next_prev, next_seq::text as next_seq, checked,
            broken_chain, broken_id::text as broken_id, reason, finished
       from private.verify_audit_chain($1::int, $2::bigint, $3::text, $4::bigint, $5::int)`,
    [at.chain, at.afterId, at.prevHash, at.seq, budget],
  );
  return row;
}

export interface HeadRow {
  [k: string]: unknown;
  chain: number;
  first_id: string;
  last_id: string;
  row_count: string;
  last_hash: string;
}

export function chainHeads(tx: Queryable): Promise<HeadRow[]> {
  return tx.query<HeadRow>(
    `select chain, first_id::text as first_id, last_id::text as last_id, row_count::text as row_count, last_hash
       from private.audit_chain_heads()`,
  );
}

/**
 * The checkpoint heads the rows no longer match: the row at a head's last id must still be in
 * that chain, at that position, with that hash. With a clean walk, that proves every earlier
 * row of the chain unchanged since the checkpoint.
 */
export function checkpointMismatches(
  tx: Queryable, heads: { chain: number; lastId: string; rowCount: number; lastHash: string }[],
): Promise<{ chain: number; id: string }[]> {
  return tx.query<{ chain: number; id: string }>(
    `select c.chain, c."lastId"::text as id
       from jsonb_to_recordset($1::text::jsonb) as c (chain int, "lastId" bigint, "rowCount" bigint, "lastHash" text)
       left join public.secret_access_logs l on l.id = c."lastId"
      where l.id is null or l.chain is distinct from c.chain or l.chain_seq is distinct from c."rowCount"
         or l.chain_hash is distinct from decode(c."lastHash", 'hex')
      order by c."lastId"`,
    [JSON.stringify(heads)],
  );
}

export interface ExportRow {
  [k: string]: unknown;
  id: string;
  secret_id: string | null;
  secret_name: string | null;
  owner_id: string | null;
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
  created_at: string;
  chain: number | null;
  seq: string | null;
  hash: string | null;
}

/** One export page: rows after `since`, in id order, none a running transaction may still precede. */
export function exportPage(tx: Queryable, since: string, limit: number): Promise<ExportRow[]> {
  return tx.query<ExportRow>(
    `select id::text as id, secret_id, secret_name, owner_id, actor_id, actor_type::text as actor_type,
            action::text as action, version, deployment_id, ip, user_agent, request_id, outcome, details,
            to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as created_at,
            chain, chain_seq::text as seq, encode(chain_hash, 'hex') as hash
       from private.export_audit($1::bigint, $2::int) e
      order by e.id`,
    [since, limit],
  );
}
