/** SQL of the health probe: cheap, needs no caller, says nothing secret. */
import type { Queryable } from "../db/database.ts";

export async function probe(q: Queryable): Promise<{ migrations: number; pgCron: boolean }> {
  const [row] = await q.query<{ migrations: number; pg_cron: boolean }>(
    `select (select count(*)::int from supabase_migrations.schema_migrations) as migrations,
            exists (select 1 from pg_extension where extname = 'pg_cron') as pg_cron`,
  );
  return { migrations: row.migrations, pgCron: row.pg_cron };
}
