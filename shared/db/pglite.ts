import { PGlite } from "@electric-sql/pglite";
import { pgcrypto } from "@electric-sql/pglite/contrib/pgcrypto";
import type { Database, Queryable, Row } from "./database.ts";

/** A PGlite database, its dump, and views of it that act as another login. */
export interface PgliteDatabase extends Database {
  dump(): Promise<Blob>;
  /**
   * The same database acting as `role` (the function's login, `sigyl_api`): every statement
   * and transaction starts with `SET LOCAL ROLE`, so the service has that role's privileges
   * and nothing more, as when it logs in as it on PostgreSQL. PGlite has one session, held by
   * the superuser `postgres`, and cannot switch it (`SET SESSION AUTHORIZATION` never reverts
   * in PGlite 0.5), so `session_user` stays `postgres`: the session guard of the API helpers
   * is exercised on PostgreSQL only. The view shares this instance: closing it closes nothing.
   */
  loggedInAs(role: string): Database;
}

/**
 * A Database over embedded PGlite (PostgreSQL in WebAssembly, in this process). `dataDir`
 * keeps the data between runs; without it the database lives in memory. `loadDataDir`
 * starts from a dump (tests reuse one migrated database that way).
 */
export async function createPgliteDatabase(
  options: { dataDir?: string; loadDataDir?: Blob | File } = {},
): Promise<PgliteDatabase> {
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
    loggedInAs(role: string): Database {
      const become = `set local role ${quoteIdent(role)}`;
      // deno-lint-ignore no-explicit-any
      const inSession = <T>(fn: (tx: Queryable) => Promise<T>) => pg.transaction(async (tx: any) => {
        await tx.query(become);
        return await fn(wrap(tx));
      }) as Promise<T>;
      return {
        kind: "pglite",
        location: options.dataDir ?? "memory",
        query: (text, params) => inSession((tx) => tx.query(text, params)),
        exec: (text) => inSession((tx) => tx.exec(text)),
        transaction: inSession,
        close: async () => {},
      };
    },
  };
}

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;
