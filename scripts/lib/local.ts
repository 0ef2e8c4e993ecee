/**
 * Local-only pieces shared by `npm start`, `npm run token` and the tests: opening the
 * database the configuration names, migrating it, local users, the keys the local platform
 * signs and recognises callers with, and Supabase-shaped tokens.
 */
import { link, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";
import { base64url, exportJWK, generateKeyPair, importJWK, type JSONWebKeySet, type JWK, SignJWT } from "jose";
import { z } from "zod";
import { API_ROLE, type Config } from "../../shared/config.ts";
import { type Database, redactUrl } from "../../shared/db/database.ts";
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

/**
 * The platform stand-in and every pending migration, as the owner; then the local half of
 * the hosted setup step: the function's role `sigyl_api` may log in (the migrations create it
 * NOLOGIN and never hold a password; hosted, the README's `alter role … with login password`
 * does this). No password here: the local server trusts loopback connections.
 */
export async function migrateLocal(db: Database) {
  const result = await migrate(db, { migrationsDir: MIGRATIONS_DIR, standInPath: STAND_IN_PATH });
  // Only where it cannot log in yet: roles are cluster-wide, and suites migrating databases of
  // their own at once would otherwise update the same catalog row ("tuple concurrently updated").
  await db.exec(
    `do $$ begin if not exists (select 1 from pg_roles where rolname = '${API_ROLE}' and rolcanlogin) then alter role ${API_ROLE} with login; end if; end $$`,
  );
  return result;
}

/** A PostgreSQL URL with its user replaced by `sigyl_api` and no password: the function's login, locally. */
export function apiRoleUrl(ownerUrl: string): string {
  const url = new URL(ownerUrl);
  url.username = API_ROLE;
  url.password = "";
  return url.toString();
}

/**
 * The database as the function's login, `sigyl_api`, next to the owner's connection that
 * migrated it: on PostgreSQL a connection as that user (same server, no password: local trust);
 * on PGlite the same instance acting as it. Throws when PostgreSQL refuses the login (a
 * server that wants a password); `npm start` then serves as the owner and health says so.
 */
export async function openApiDatabase(owner: Database, config: Config): Promise<Database> {
  if (owner.kind === "pglite") return (owner as Database & { loggedInAs(role: string): Database }).loggedInAs(API_ROLE);
  const url = apiRoleUrl(config.databaseUrl!);
  const db = createPostgresDatabase(url, config.db);
  try {
    await db.query("select 1");
    return db;
  } catch (err) {
    await db.close().catch(() => {});
    throw new Error(`cannot log in as ${API_ROLE} (${redactUrl(url)}): ${(err as Error).message || (err as { code?: string }).code}`);
  }
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

/**
 * The local platform's keys, made once per data dir and kept in it (mode 0600, git-ignored
 * with it), as a hosted project has its own: the ES256 key Supabase Auth would sign user tokens
 * with, and the project's secret and publishable API keys. Inside the data dir rather than
 * beside it, so a data dir named anywhere (SIGYL_DATA_DIR) never writes outside itself.
 */
export const LOCAL_KEYS_FILE = "sigyl-keys.json";

export interface LocalKeys {
  /** The private signing key (JWK, ES256, with its `kid`); only its public half leaves this file. */
  signingKey: JWK & { kid: string };
  secretKey: string;
  publishableKey: string;
}

const LocalKeysSchema = z.object({
  signingKey: z.looseObject({
    kty: z.literal("EC"), crv: z.literal("P-256"), alg: z.literal("ES256"), kid: z.string().min(1),
    x: z.string(), y: z.string(), d: z.string(),
  }),
  secretKey: z.string().startsWith("sb_secret_"),
  publishableKey: z.string().startsWith("sb_publishable_"),
});

export const localKeysPath = (config: Config) => join(dataDirPath(config), LOCAL_KEYS_FILE);

/** The local platform's keys, or null when none were made yet under this data dir. */
export async function readLocalKeys(config: Config): Promise<LocalKeys | null> {
  const path = localKeysPath(config);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return null;
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch { /* reported below */ }
  const keys = LocalKeysSchema.safeParse(parsed);
  if (!keys.success) {
    throw new Error(`${path} does not hold the local keys; delete it and new ones are made (tokens signed with the old key stop working)`);
  }
  return keys.data as LocalKeys;
}

/** The local platform's keys, made now if this data dir has none. */
export async function localKeys(config: Config): Promise<LocalKeys> {
  const found = await readLocalKeys(config);
  if (found) return found;
  const path = localKeysPath(config);
  await mkdir(dirname(path), { recursive: true });
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const made: LocalKeys = {
    signingKey: { ...(await exportJWK(privateKey)), kid: crypto.randomUUID(), alg: "ES256", use: "sig" },
    secretKey: `sb_secret_${base64url.encode(crypto.getRandomValues(new Uint8Array(32)))}`,
    publishableKey: `sb_publishable_${base64url.encode(crypto.getRandomValues(new Uint8Array(32)))}`,
  };
  // Written whole to a private file, then linked into place: nobody reads half a file, and of
  // two processes making keys at once (npm start, npm run token) the first link wins for both.
  const pending = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    await writeFile(pending, JSON.stringify(made, null, 2) + "\n", { mode: 0o600, flag: "wx" });
    await link(pending, path);
    return made;
  } catch (err) {
    if ((err as { code?: string }).code !== "EEXIST") throw err;
    return (await readLocalKeys(config))!;
  } finally {
    await rm(pending, { force: true });
  }
}

/** The public key set, as Supabase serves it at /auth/v1/.well-known/jwks.json: never `d`. */
export function publicKeySet(keys: LocalKeys): JSONWebKeySet {
  const { kty, crv, x, y, kid } = keys.signingKey;
  return { keys: [{ kty, crv, x, y, kid, alg: "ES256", use: "sig", key_ops: ["verify"], ext: true }] };
}

/**
 * The variables the hosted runtime hands every function, shaped as it shapes them, with the
 * local keys: given these, the function takes the code path it takes hosted.
 */
export function platformVariables(keys: LocalKeys, projectUrl: string): Record<string, string> {
  return {
    SUPABASE_URL: projectUrl,
    SUPABASE_JWKS: JSON.stringify(publicKeySet(keys)),
    SUPABASE_SECRET_KEYS: JSON.stringify({ default: keys.secretKey }),
    SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: keys.publishableKey }),
  };
}

/** What signs ES256 user tokens: the local signing key, and the `kid` the key set names it by. */
export interface LocalSigner {
  kid: string;
  privateKey: CryptoKey;
}

export async function localSigner(keys: LocalKeys): Promise<LocalSigner> {
  const privateKey = await importJWK(keys.signingKey, "ES256");
  if (privateKey instanceof Uint8Array) throw new Error("the local signing key is not an ES256 key");
  return { kid: keys.signingKey.kid, privateKey };
}

/** What an access token says beyond its user; each defaults to what `npm run token` signs. */
export interface UserTokenOptions {
  expiresInSeconds?: number;
  now?: Date;
  issuer?: string;
  /** The `auth.sessions` row the token belongs to (random, as no session, by default). */
  sessionId?: string;
  /** When the session signed in with its password: `amr`'s timestamp (default: now). */
  authenticatedAt?: Date;
  appMetadata?: Record<string, unknown>;
  userMetadata?: Record<string, unknown>;
}

/**
 * An access token shaped like Supabase Auth's: ES256 with the `kid` of the local key set when
 * given a signer (as `npm run token` and the local sign-in stand-in do), or HS256 with a legacy
 * JWT secret (the test suites).
 */
export async function signUserToken(
  signer: string | LocalSigner,
  user: { id: string; email: string },
  options: UserTokenOptions = {},
): Promise<string> {
  const iat = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const authenticatedAt = options.authenticatedAt ? Math.floor(options.authenticatedAt.getTime() / 1000) : iat;
  const jwt = new SignJWT({
    email: user.email,
    phone: "",
    role: "authenticated",
    aal: "aal1",
    amr: [{ method: "password", timestamp: authenticatedAt }],
    session_id: options.sessionId ?? crypto.randomUUID(),
    is_anonymous: false,
    app_metadata: options.appMetadata ?? { provider: "email", providers: ["email"] },
    user_metadata: options.userMetadata ?? {},
  })
    .setSubject(user.id)
    .setAudience("authenticated")
    .setIssuer(options.issuer ?? "http://127.0.0.1:54321/auth/v1")
    .setIssuedAt(iat)
    .setExpirationTime(iat + (options.expiresInSeconds ?? 3600));
  if (typeof signer === "string") {
    return await jwt.setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(new TextEncoder().encode(signer));
  }
  return await jwt.setProtectedHeader({ alg: "ES256", kid: signer.kid, typ: "JWT" }).sign(signer.privateKey);
}

/** A legacy service-role token like the one Supabase's local stack prints (HS256). */
export async function signServiceToken(secret: string, options: { expiresInSeconds?: number; now?: Date } = {}) {
  const iat = Math.floor((options.now ?? new Date()).getTime() / 1000);
  return await new SignJWT({ role: "service_role" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer("supabase-demo")
    .setIssuedAt(iat)
    .setExpirationTime(iat + (options.expiresInSeconds ?? 3600))
    .sign(new TextEncoder().encode(secret));
}
