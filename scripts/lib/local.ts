/**
 * Local-only pieces shared by `npm start`, `npm run token` and the tests: opening the
 * database the configuration names, migrating it, local users, and Supabase-shaped tokens.
 */
import { mkdir } from "node:fs/promises";
import { dirname, isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SignJWT } from "jose";
import type { Config } from "../../shared/config.ts";
import type { Database } from "../../shared/db/database.ts";
import { migrate } from "../../shared/db/migrate.ts";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";
import { type DataDirLock, lockDataDir } from "./data-dir-lock.ts";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const MIGRATIONS_DIR = join(ROOT, "supabase", "migrations");
export const STAND_IN_PATH = join(ROOT, "supabase", "local", "platform.sql");

/** A database opened by a local script. */
export interface LocalDatabase extends Database {
  /** Records where this process serves, so `npm run token` finds it (PGlite; a no-op on PostgreSQL). */
  advertise(url: string): void;
}

/** The PGlite data dir the configuration names, as a path (relative ones are under the project). */
export function dataDirPath(config: Config): string {
  return isAbsolute(config.dataDir) ? config.dataDir : join(ROOT, config.dataDir);
}

/**
 * Takes the PGlite data dir's lock (creating the directory if needed) or throws
 * `DataDirInUse` naming the process that holds it.
 */
export async function lockLocalDataDir(config: Config): Promise<DataDirLock> {
  const path = dataDirPath(config);
  await mkdir(path, { recursive: true });
  return lockDataDir(path, config.dataDir);
}

/**
 * PostgreSQL when DATABASE_URL is set; otherwise PGlite under the data dir, held under its
 * lock (taken here unless `lock` is one already held) until `close()`.
 */
export async function openDatabase(config: Config, options: { lock?: DataDirLock } = {}): Promise<LocalDatabase> {
  if (config.databaseUrl) {
    const db = createPostgresDatabase(config.databaseUrl, config.db);
    try {
      await db.query("select 1");
    } catch (err) {
      await db.close().catch(() => {});
      throw new Error(`cannot reach DATABASE_URL (${db.location}): ${(err as Error).message || (err as { code?: string }).code}`);
    }
    return Object.assign(db, { advertise: () => {} });
  }
  const lock = options.lock ?? await lockLocalDataDir(config);
  try {
    const { createPgliteDatabase } = await import("../../shared/db/pglite.ts");
    const db = await createPgliteDatabase({ dataDir: lock.dataDir });
    const closeDatabase = db.close.bind(db);
    return Object.assign(db, {
      advertise: (url: string) => lock.advertise(url),
      close: async () => {
        try {
          await closeDatabase();
        } finally {
          lock.release();
        }
      },
    });
  } catch (err) {
    lock.release();
    throw err;
  }
}

export function migrateLocal(db: Database) {
  return migrate(db, { migrationsDir: MIGRATIONS_DIR, standInPath: STAND_IN_PATH });
}

/** Creates the auth.users row for an email if missing (as Supabase Auth would) and returns it. */
export async function ensureUser(db: Database, email: string): Promise<{ id: string; email: string }> {
  const [row] = await db.query<{ id: string; email: string }>(
    `with found as (select id, email::text from auth.users where lower(email) = lower($1)),
          made as (insert into auth.users (email, aud, role)
                   select $1, 'authenticated', 'authenticated' where not exists (select 1 from found)
                   on conflict do nothing
                   returning id, email::text)
     select * from found union all select * from made`,
    [email],
  );
  if (row) return row;
  const [again] = await db.query<{ id: string; email: string }>(
    `select id, email::text from auth.users where lower(email) = lower($1)`, [email]);
  return again;
}

/** An access token shaped like Supabase Auth's, HS256-signed with the project's JWT secret. */
export async function signUserToken(
  secret: string,
  user: { id: string; email: string },
  options: { expiresInSeconds?: number; now?: Date } = {},
): Promise<string> {
  const iat = Math.floor((options.now ?? new Date()).getTime() / 1000);
  return await new SignJWT({
    email: user.email,
    role: "authenticated",
    aal: "aal1",
    session_id: crypto.randomUUID(),
    is_anonymous: false,
    app_metadata: { provider: "email", providers: ["email"] },
    user_metadata: {},
  })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(user.id)
    .setAudience("authenticated")
    .setIssuer("http://127.0.0.1:54321/auth/v1")
    .setIssuedAt(iat)
    .setExpirationTime(iat + (options.expiresInSeconds ?? 3600))
    .sign(new TextEncoder().encode(secret));
}

/** A service-role token like the one Supabase's local stack prints. */
export async function signServiceToken(secret: string, options: { expiresInSeconds?: number; now?: Date } = {}) {
  const iat = Math.floor((options.now ?? new Date()).getTime() / 1000);
  return await new SignJWT({ role: "service_role" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer("supabase-demo")
    .setIssuedAt(iat)
    .setExpirationTime(iat + (options.expiresInSeconds ?? 3600))
    .sign(new TextEncoder().encode(secret));
}
