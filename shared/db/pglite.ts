import { PGlite } from "@electric-sql/pglite";
import { pgcrypto } from "@electric-sql/pglite/contrib/pgcrypto";
import type { Database, Queryable, Row } from "./database.ts";

/**
 * A Database over embedded PGlite (PostgreSQL in WebAssembly, in this process). `dataDir`
 * keeps the data between runs; without it the database lives in memory. `loadDataDir`
 * starts from a dump (tests reuse one migrated database that way).
 */
export async function createPgliteDatabase(
  options: { dataDir?: string; loadDataDir?: Blob | File } = {},
): Promise<Database & { dump(): Promise<Blob> }> {
  const pg = await PGlite.create({
    dataDir: options.dataDir,
    loadDataDir: options.loadDataDir,
    extensions: { pgcrypto },
  });
  // deno-lint-ignore no-explicit-any
  const wrap = (q: any): Queryable => ({
    async query<T = Row>(text: string, params: readonly unknown[] = []) {
      return (await q.query(text, params as unknown[])).rows as T[];
    },
    async exec(text: string) {
      await q.exec(text);
    },
  });
  const root = wrap(pg);
  return {
    kind: "pglite",
    location: options.dataDir ?? "memory",
    query: root.query,
    exec: root.exec,
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) => pg.transaction((tx) => fn(wrap(tx))) as Promise<T>,
    close: () => pg.close(),
    dump: () => pg.dumpDataDir("none"),
  };
}
