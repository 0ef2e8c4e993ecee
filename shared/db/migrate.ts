import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Database } from "./database.ts";

/** A migration file named like the Supabase CLI wants it: `<version>_<name>.sql`. */
export interface MigrationFile {
  version: string;
  name: string;
  path: string;
}

export class MigrationError extends Error {
  constructor(readonly file: string, cause: unknown) {
    super(`migration ${file} failed: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = "MigrationError";
  }
}

const FILE_PATTERN = /^(\d+)_(.+)\.sql$/;

export async function listMigrations(dir: string): Promise<MigrationFile[]> {
  const names = (await readdir(dir)).filter((n) => FILE_PATTERN.test(n)).sort();
  return names.map((n) => {
    const [, version, name] = n.match(FILE_PATTERN)!;
    return { version, name, path: join(dir, n) };
  });
}

/**
 * Splits SQL into statements at top-level semicolons, keeping the comments before each one,
 * as the Supabase CLI records them in `schema_migrations.statements`. Hand-written (about 30
 * lines) because the parsers on npm bring a full SQL grammar for this one job; it honours
 * quotes, quoted identifiers, dollar quoting and both comment styles.
 */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let start = 0;
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    if (c === "-" && sql[i + 1] === "-") {
      const end = sql.indexOf("\n", i);
      i = end < 0 ? sql.length : end + 1;
    } else if (c === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < sql.length && !(sql[j] === c && sql[j + 1] !== c)) j += sql[j] === c ? 2 : 1;
      i = j + 1;
    } else if (c === "$") {
      const tag = sql.slice(i).match(/^\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/)?.[0];
      if (tag) {
        const end = sql.indexOf(tag, i + tag.length);
        i = end < 0 ? sql.length : end + tag.length;
      } else i++;
    } else if (c === ";") {
      const stmt = sql.slice(start, i).trim();
      if (stmt) out.push(stmt);
      start = ++i;
    } else i++;
  }
  const tail = sql.slice(start).trim();
  if (tail && !/^(--[^\n]*\n?|\s)*$/.test(tail)) out.push(tail);
  return out;
}

const HISTORY_DDL = `
  create schema if not exists supabase_migrations;
  create table if not exists supabase_migrations.schema_migrations (
    version text not null primary key,
    statements text[],
    name text
  );`;

/**
 * Applies the platform stand-in (idempotent, local only) and every pending migration, each
 * file in its own transaction together with its history row, recorded exactly where and how
 * `supabase db push` records it; so either tool sees the same history and re-running applies
 * nothing. A failing file applies nothing of itself and is named in the error.
 */
export async function migrate(
  db: Database,
  options: { migrationsDir: string; standInPath?: string },
): Promise<{ applied: string[]; total: number }> {
  if (options.standInPath) {
    const standIn = await readFile(options.standInPath, "utf8");
    try {
      await db.exec(standIn);
    } catch (err) {
      throw new MigrationError(options.standInPath, err);
    }
  }
  await db.exec(HISTORY_DDL);
  const done = new Set(
    (await db.query<{ version: string }>("select version from supabase_migrations.schema_migrations"))
      .map((r) => r.version),
  );
  const files = await listMigrations(options.migrationsDir);
  const applied: string[] = [];
  for (const file of files) {
    if (done.has(file.version)) continue;
    const sql = await readFile(file.path, "utf8");
    try {
      await db.transaction(async (tx) => {
        await tx.exec(sql);
        await tx.query(
          `insert into supabase_migrations.schema_migrations (version, name, statements)
           values ($1, $2, array(select jsonb_array_elements_text($3::text::jsonb)))`,
          [file.version, file.name, JSON.stringify(splitStatements(sql))],
        );
      });
    } catch (err) {
      throw new MigrationError(`${file.version}_${file.name}.sql`, err);
    }
    applied.push(file.version);
  }
  return { applied, total: files.length };
}
