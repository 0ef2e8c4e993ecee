/**
 * The local sign-in stand-in's SQL, on the stand-in's `auth` schema (supabase/local/platform.sql):
 * `auth.users`, `auth.sessions`, `auth.refresh_tokens`. It runs as the owner, as Supabase Auth
 * runs as its own administrator; no API role can read these rows. Refresh tokens are stored
 * by their SHA-256 only (`token`, `parent`).
 */
import type { Queryable } from "../../../shared/db/database.ts";

/** An `auth.users` row as the stand-in answers with it. */
export interface AuthUserRow {
  id: string;
  aud: string | null;
  role: string | null;
  email: string;
  encrypted_password: string | null;
  email_confirmed_at: Date | string | null;
  last_sign_in_at: Date | string | null;
  raw_app_meta_data: Record<string, unknown> | null;
  raw_user_meta_data: Record<string, unknown> | null;
  created_at: Date | string;
  updated_at: Date | string;
}

/** A refresh token's row, with what deciding on its use needs. */
export interface RefreshTokenRow {
  id: string;
  token: string;
  parent: string | null;
  session_id: string;
  user_id: string;
  revoked: boolean;
  updated_at: Date | string;
}

const USER_COLUMNS = `id, aud, role, email::text as email, encrypted_password, email_confirmed_at, last_sign_in_at,
  raw_app_meta_data, raw_user_meta_data, created_at, updated_at`;

/** The user with this email (any case), or null. */
export async function findUserByEmail(db: Queryable, email: string): Promise<AuthUserRow | null> {
  const [row] = await db.query<AuthUserRow>(
    `select ${USER_COLUMNS} from auth.users where lower(email) = lower($1) and deleted_at is null`, [email]);
  return row ?? null;
}

export async function findUserById(db: Queryable, id: string): Promise<AuthUserRow | null> {
  const [row] = await db.query<AuthUserRow>(`select ${USER_COLUMNS} from auth.users where id = $1 and deleted_at is null`, [id]);
  return row ?? null;
}

/**
 * Inserts a confirmed email user (no email is sent locally: GoTrue with autoconfirm on);
 * null when the email is taken meanwhile (the unique index on lower(email)).
 */
export async function insertUser(
  db: Queryable,
  user: { email: string; passwordHash: string; userMetadata: Record<string, unknown> },
): Promise<AuthUserRow | null> {
  const [row] = await db.query<AuthUserRow>(
    `insert into auth.users (email, aud, role, encrypted_password, email_confirmed_at, raw_app_meta_data, raw_user_meta_data)
     values ($1, 'authenticated', 'authenticated', $2, now(), $3::jsonb, $4::jsonb)
     on conflict do nothing
     returning ${USER_COLUMNS}`,
    [user.email, user.passwordHash, JSON.stringify({ provider: "email", providers: ["email"] }), JSON.stringify(user.userMetadata)],
  );
  return row ?? null;
}

/** Stamps a sign-in on the user and returns the row as it is now. */
export async function touchLastSignIn(db: Queryable, userId: string, at: Date): Promise<AuthUserRow> {
  const [row] = await db.query<AuthUserRow>(
    `update auth.users set last_sign_in_at = $2, updated_at = $2 where id = $1 returning ${USER_COLUMNS}`, [userId, at]);
  return row;
}

export interface SessionRow {
  id: string;
  user_id: string;
  created_at: Date | string;
}

export async function insertSession(
  db: Queryable,
  session: { id: string; userId: string; at: Date; userAgent: string | null; ip: string | null },
): Promise<SessionRow> {
  const [row] = await db.query<SessionRow>(
    `insert into auth.sessions (id, user_id, created_at, updated_at, user_agent, ip) values ($1, $2, $3, $3, $4, $5)
     returning id, user_id, created_at`,
    [session.id, session.userId, session.at, session.userAgent, session.ip],
  );
  return row;
}

export async function findSession(db: Queryable, id: string): Promise<SessionRow | null> {
  const [row] = await db.query<SessionRow>(`select id, user_id, created_at from auth.sessions where id = $1`, [id]);
  return row ?? null;
}

/** Records a refresh of the session: when, and from which client. */
export async function touchSession(db: Queryable, id: string, at: Date, userAgent: string | null, ip: string | null) {
  await db.query(
    `update auth.sessions set refreshed_at = $2, updated_at = $2, user_agent = $3, ip = $4 where id = $1`,
    [id, at, userAgent, ip]);
}

export async function insertRefreshToken(
  db: Queryable,
  token: { hash: string; parentHash: string | null; sessionId: string; userId: string; at: Date },
) {
  await db.query(
    `insert into auth.refresh_tokens (token, parent, session_id, user_id, created_at, updated_at) values ($1, $2, $3, $4, $5, $5)`,
    [token.hash, token.parentHash, token.sessionId, token.userId, token.at]);
}

/**
 * The refresh token with this hash, its row locked until the transaction ends, so two
 * refreshes of one token run one after the other and the second sees it revoked.
 */
export async function lockRefreshToken(db: Queryable, hash: string): Promise<RefreshTokenRow | null> {
  const [row] = await db.query<RefreshTokenRow>(
    `select id::text as id, token, parent, session_id, user_id, revoked, updated_at
       from auth.refresh_tokens where token = $1 for update`, [hash]);
  return row ?? null;
}

/** The session's newest refresh token not revoked yet, or null. */
export async function activeRefreshToken(db: Queryable, sessionId: string): Promise<RefreshTokenRow | null> {
  const [row] = await db.query<RefreshTokenRow>(
    `select id::text as id, token, parent, session_id, user_id, revoked, updated_at
       from auth.refresh_tokens where session_id = $1 and not revoked order by id desc limit 1`, [sessionId]);
  return row ?? null;
}

export async function revokeRefreshToken(db: Queryable, id: string, at: Date) {
  await db.query(`update auth.refresh_tokens set revoked = true, updated_at = $2 where id = $1`, [id, at]);
}

/** Ends sessions, and with them (on delete cascade) every refresh token they hold. */
export async function deleteSessions(
  db: Queryable,
  which: { sessionId: string } | { userId: string } | { userId: string; except: string },
) {
  if ("except" in which) {
    await db.query(`delete from auth.sessions where user_id = $1 and id <> $2`, [which.userId, which.except]);
  } else if ("sessionId" in which) {
    await db.query(`delete from auth.sessions where id = $1`, [which.sessionId]);
  } else {
    await db.query(`delete from auth.sessions where user_id = $1`, [which.userId]);
  }
}
