/**
 * What the audit suites share: a trail made through the API, and the table owner's powers
 * with every trigger bypassed (`session_replication_role = replica`, as a superuser may), to
 * tamper with it and to put it back exactly as it was.
 */
import type { Database } from "../../shared/db/database.ts";

/** Runs `sql` as the owner with triggers off: nothing the migrations installed stops it. */
export async function tamper(db: Database, sql: string, params: unknown[] = []) {
  await db.transaction(async (tx) => {
    await tx.query("set local session_replication_role = replica");
    await tx.query(sql, params);
  });
}

export interface TrailCopy {
  rows: unknown;
  heads: unknown;
}

/** Every audit row and chain head, exactly. */
export async function copyTrail(db: Database): Promise<TrailCopy> {
  const [copy] = await db.query<{ rows: unknown; heads: unknown }>(
    `select (select coalesce(jsonb_agg(to_jsonb(l) order by l.id), '[]') from public.secret_access_logs l) as rows,
            (select coalesce(jsonb_agg(to_jsonb(h) order by h.chain), '[]') from private.audit_chains h) as heads`,
  );
  return copy;
}

/** Puts the trail back as `copy` holds it (ids included), triggers off. */
export async function restoreTrail(db: Database, copy: TrailCopy) {
  await db.transaction(async (tx) => {
    await tx.query("set local session_replication_role = replica");
    await tx.query("delete from public.secret_access_logs");
    await tx.query(
      `insert into public.secret_access_logs overriding system value
       select * from jsonb_populate_recordset(null::public.secret_access_logs, $1::text::jsonb)`,
      [JSON.stringify(copy.rows)],
    );
    await tx.query("delete from private.audit_chains");
    await tx.query(
      `insert into private.audit_chains select * from jsonb_populate_recordset(null::private.audit_chains, $1::text::jsonb)`,
      [JSON.stringify(copy.heads)],
    );
  });
}

export interface ChainRow {
  id: string;
  chain: number;
  seq: number;
}

/** The rows of the longest chain, oldest first. */
export async function longestChain(db: Database): Promise<ChainRow[]> {
  const rows = await db.query<ChainRow>(
    `select l.id::text as id, l.chain, l.chain_seq::int as seq from public.secret_access_logs l
      where l.chain = (select chain from public.secret_access_logs group by chain order by count(*) desc, chain limit 1)
      order by l.id`,
  );
  return rows;
}
