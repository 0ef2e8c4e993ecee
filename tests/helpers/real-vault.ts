/**
 * Suites that need the real Supabase Vault: PostgreSQL (DATABASE_URL) with the extension
 * installed and preloaded, as scripts/setup-postgres.sh prepares it. Each takes a database of
 * its own, `sigyl_vault_<random>`, and drops it when done.
 */
import { randomBytes } from "node:crypto";
import type { Database } from "../../shared/db/database.ts";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";

/** Why the real Vault cannot be used here, or null when it can. */
export async function realVaultReason(): Promise<string | null> {
  const url = process.env.DATABASE_URL;
  if (!url) return "needs DATABASE_URL (PostgreSQL with Supabase Vault)";
  const db = createPostgresDatabase(url, { max: 1 });
  try {
    const [row] = await db.query<{ available: boolean; preloaded: boolean }>(
      `select exists (select 1 from pg_available_extensions where name = 'supabase_vault') as available,
              current_setting('vault.getkey_script', true) is not null as preloaded`);
    if (!row.available) return "Supabase Vault is not installed on this server (run scripts/setup-postgres.sh)";
    if (!row.preloaded) return "Supabase Vault is not preloaded on this server (run scripts/setup-postgres.sh)";
    return null;
  } finally {
    await db.close();
  }
}

export interface ScratchDatabase {
  name: string;
  /** A connection to it, as the server's superuser (the owner of everything in it). */
  db: Database;
  /** Its URL, for tools. */
  url: string;
  /** A connection to the server's maintenance database, DATABASE_URL's. */
  admin: Database;
  drop(): Promise<void>;
}

/** A new empty database on DATABASE_URL's server; `settings` are set on it before connecting. */
export async function createScratchDatabase(settings: Record<string, string> = {}): Promise<ScratchDatabase> {
  const admin = createPostgresDatabase(process.env.DATABASE_URL!, { max: 1 });
  const name = `sigyl_vault_${randomBytes(4).toString("hex")}`;
  await admin.exec(`create database ${name}`);
  for (const [key, value] of Object.entries(settings)) {
    await admin.exec(`alter database ${name} set ${key} = '${value.replaceAll("'", "''")}'`);
  }
  const url = new URL(process.env.DATABASE_URL!);
  url.pathname = `/${name}`;
  const db = createPostgresDatabase(url.toString(), { max: 1 });
  return {
    name,
    db,
    url: url.toString(),
    admin,
    async drop() {
      await db.close().catch(() => {});
      await admin.exec(`drop database if exists ${name} with (force)`);
      await admin.close();
    },
  };
}
