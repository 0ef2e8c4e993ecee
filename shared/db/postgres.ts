import postgres from "postgres";
import { type Database, type Queryable, redactUrl, type Row } from "./database.ts";

export interface PostgresOptions {
  /** Pool size. */
  max?: number;
  /** Prepared statements; turn off behind a transaction-mode pooler (Supavisor :6543). */
  prepare?: boolean;
}

/** A Database over postgres.js: real PostgreSQL locally and in CI, hosted Supabase in production. */
export function createPostgresDatabase(url: string, options: PostgresOptions = {}): Database {
  const sql = postgres(url, {
    max: options.max ?? 10,
    prepare: options.prepare ?? true,
    connect_timeout: 5,
    idle_timeout: 60,
    onnotice: () => {},
  });
  // deno-lint-ignore no-explicit-any
  const wrap = (q: any): Queryable => ({
    async query<T = Row>(text: string, params: readonly unknown[] = []) {
      return Array.from(await q.unsafe(text, params as unknown[])) as T[];
    },
    async exec(text: string) {
      await q.unsafe(text);
    },
  });
  const root = wrap(sql);
  return {
    kind: "postgres",
    location: redactUrl(url),
    query: root.query,
    exec: root.exec,
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) => sql.begin((tx) => fn(wrap(tx))) as Promise<T>,
    close: () => sql.end({ timeout: 5 }),
  };
}
