/**
 * The local sign-in stand-in as the web console will use it: @supabase/supabase-js, unchanged,
 * against a real `npm start` (embedded PGlite; a database of its own on PostgreSQL when
 * DATABASE_URL is set). Sign-up, sign-in, the user, the session's token on the `secrets`
 * function, refresh rotation and reuse detection, sign-out, GoTrue's errors, the gateway's
 * `apikey`, and what is left in the database and the logs: password hashes only, no token.
 *
 * The server runs with SIGYL_AUTH_REFRESH_TOKEN_REUSE_INTERVAL=0, so a rotated token that is
 * not the client's lost answer is refused at once instead of after GoTrue's 10 s (the interval
 * itself is tested in sign-in-rules.test.ts).
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createClient,
  isAuthApiError,
  isAuthSessionMissingError,
  isAuthWeakPasswordError,
  type Session,
  type SupabaseClient,
} from "@supabase/supabase-js";
import bcrypt from "bcryptjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOCAL_KEYS_FILE } from "../../scripts/lib/local.ts";
import type { Database } from "../../shared/db/database.ts";
import { createPgliteDatabase } from "../../shared/db/pglite.ts";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";
import { type Started, startServer, stopProcess } from "../helpers/processes.ts";

const usingPostgres = Boolean(process.env.DATABASE_URL);
const run = Math.random().toString(36).slice(2, 8);
const emailOf = (name: string) => `${name}-${run}@example.com`;

/** Realtime is not used here; Node 20 has no WebSocket for it to find by itself. */
class NoRealtime {
  constructor() {
    throw new Error("realtime is not used by these tests");
  }
}

let server: Started | undefined;
let origin: string;
let dataDir: string;
let keys: { publishableKey: string; secretKey: string; signingKey: { kid: string } };
let databaseUrl: string | undefined;
let dropDatabase: (() => Promise<void>) | undefined;
/** Every password and refresh token the suite handled: none may be stored or logged. */
const handled = new Set<string>();

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "sigyl-auth-"));
  if (usingPostgres) {
    const admin = createPostgresDatabase(process.env.DATABASE_URL!, { max: 1 });
    const name = `sigyl_auth_${run}`;
    await admin.query(`create database ${name}`);
    const url = new URL(process.env.DATABASE_URL!);
    url.pathname = `/${name}`;
    databaseUrl = url.toString();
    dropDatabase = async () => {
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.close();
    };
  }
  const started = await startServer({
    SIGYL_DATA_DIR: dataDir, DATABASE_URL: databaseUrl, SIGYL_AUTH_REFRESH_TOKEN_REUSE_INTERVAL: "0",
  });
  server = started.server;
  origin = `http://127.0.0.1:${started.port}`;
  keys = JSON.parse(await readFile(join(dataDir, LOCAL_KEYS_FILE), "utf8"));
});

afterAll(async () => {
  if (server && server.child.exitCode === null) await stopProcess(server);
  await rm(dataDir, { recursive: true, force: true });
  await dropDatabase?.();
});

/** A browser's client as the console will make it: the project URL and its publishable key. */
function client(): SupabaseClient {
  return createClient(origin, keys.publishableKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { transport: NoRealtime as never },
  });
}

const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());
const headerOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split(".")[0], "base64url").toString());

/** A signed-up user and the client holding its first session. */
async function signedUp(name: string, password = `pw-${name}-${run}`) {
  const sb = client();
  const email = emailOf(name);
  handled.add(password);
  const { data, error } = await sb.auth.signUp({ email, password });
  expect(error).toBeNull();
  handled.add(data.session!.refresh_token);
  return { sb, email, password, session: data.session!, user: data.user! };
}

async function signIn(email: string, password: string): Promise<{ sb: SupabaseClient; session: Session }> {
  const sb = client();
  const { data, error } = await sb.auth.signInWithPassword({ email, password });
  expect(error).toBeNull();
  handled.add(data.session!.refresh_token);
  return { sb, session: data.session! };
}

async function refresh(refreshToken: string) {
  const result = await client().auth.refreshSession({ refresh_token: refreshToken });
  if (result.data.session) handled.add(result.data.session.refresh_token);
  return result;
}

describe("the local sign-in stand-in, driven by supabase-js", () => {
  it("signs a new user up with email and password and signs it in at once, with a token the secrets function accepts", async () => {
    const { sb, email, session, user } = await signedUp("alice");
    expect(user.email).toBe(email);
    expect(user.email_confirmed_at).toBeTruthy();
    expect(session).toMatchObject({ token_type: "bearer", expires_in: 3600 });
    expect(session.refresh_token.length).toBeGreaterThanOrEqual(12);

    // Signed as `npm run token` signs: the local ES256 key, Supabase Auth's claims, the session's id.
    const jwks = await (await fetch(`${origin}/auth/v1/.well-known/jwks.json`)).json();
    expect(headerOf(session.access_token)).toEqual({ alg: "ES256", kid: jwks.keys[0].kid, typ: "JWT" });
    const claims = claimsOf(session.access_token);
    expect(claims).toMatchObject({
      sub: user.id, email, role: "authenticated", aud: "authenticated", iss: `${origin}/auth/v1`, aal: "aal1", is_anonymous: false,
    });
    expect(claims.session_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(claims.exp - claims.iat).toBe(3600);
    // getClaims() verifies it in the client against the key set the server publishes.
    const verified = await sb.auth.getClaims();
    expect(verified.error).toBeNull();
    expect(verified.data?.claims).toMatchObject({ sub: user.id, session_id: claims.session_id });
    const fromPage = await fetch(`${origin}/auth/v1/.well-known/jwks.json`, { headers: { origin: "http://localhost:5173" } });
    expect(fromPage.headers.get("access-control-allow-origin")).toBe("*");

    // The console calls the function through the same client: its session's token goes along.
    const created = await sb.functions.invoke("secrets", { body: { name: "CONSOLE_KEY", value: `console-value-${run}` } });
    expect(created.error).toBeNull();
    expect(created.data.data.ownerId).toBe(user.id);
    const read = await sb.functions.invoke(`secrets/${created.data.data.id}/value`, { method: "GET" });
    expect(read.error).toBeNull();
    expect(read.data.data.value).toBe(`console-value-${run}`);
  });

  it("signs in with the password into a new session, and getUser names the same user", async () => {
    const { email, password, user, session: first } = await signedUp("bob");
    const { sb, session } = await signIn(email, password);
    expect(session.user.id).toBe(user.id);
    expect(claimsOf(session.access_token).session_id).not.toBe(claimsOf(first.access_token).session_id);
    const got = await sb.auth.getUser();
    expect(got.error).toBeNull();
    expect(got.data.user).toMatchObject({ id: user.id, email, aud: "authenticated", role: "authenticated" });
    expect(got.data.user!.last_sign_in_at).toBeTruthy();
  });

  it("answers a wrong password and an unknown email alike, with GoTrue's invalid_credentials and no session", async () => {
    const { email, password } = await signedUp("carol");
    for (const attempt of [{ email, password: `${password}-wrong` }, { email: emailOf("nobody"), password }]) {
      const { data, error } = await client().auth.signInWithPassword(attempt);
      expect(data.session).toBeNull();
      expect(isAuthApiError(error)).toBe(true);
      expect(error).toMatchObject({ status: 400, code: "invalid_credentials", message: "Invalid login credentials" });
    }
    // Without supabase-js's version header, the body is GoTrue's first shape; with it, the newer one.
    const attempt = (headers: Record<string, string>) =>
      fetch(`${origin}/auth/v1/token?grant_type=password`, {
        method: "POST",
        headers: { apikey: keys.publishableKey, "content-type": "application/json", ...headers },
        body: JSON.stringify({ email, password: "not-the-password" }),
      });
    const legacy = await attempt({});
    expect(legacy.status).toBe(400);
    expect(legacy.headers.get("x-sb-error-code")).toBe("invalid_credentials");
    expect(legacy.headers.get("x-supabase-api-version")).toBeNull();
    expect(await legacy.json()).toEqual({ code: 400, error_code: "invalid_credentials", msg: "Invalid login credentials" });
    const versioned = await attempt({ "x-supabase-api-version": "2024-01-01" });
    expect(versioned.headers.get("x-supabase-api-version")).toBe("2024-01-01");
    expect(await versioned.json()).toEqual({ code: "invalid_credentials", message: "Invalid login credentials" });
  });

  it("refuses a second sign-up with the same email with user_already_exists, and keeps the first password", async () => {
    const { email, password, user } = await signedUp("dave");
    const other = `other-pw-${run}`;
    handled.add(other);
    const { data, error } = await client().auth.signUp({ email: email.toUpperCase(), password: other });
    expect(data.session).toBeNull();
    expect(error).toMatchObject({ status: 422, code: "user_already_exists", message: "User already registered" });
    expect((await signIn(email, password)).session.user.id).toBe(user.id);
    const withOther = await client().auth.signInWithPassword({ email, password: other });
    expect(withOther.error).toMatchObject({ code: "invalid_credentials" });
  });

  it("refuses a password under 6 characters and a malformed email, and creates no user", async () => {
    const email = emailOf("erin");
    const short = await client().auth.signUp({ email, password: "12345" });
    expect(isAuthWeakPasswordError(short.error)).toBe(true);
    expect(short.error).toMatchObject({ status: 422, code: "weak_password", reasons: ["length"] });
    const malformed = await client().auth.signUp({ email: "not-an-email", password: "long enough" });
    expect(malformed.error).toMatchObject({ status: 400, code: "validation_failed" });
    // Nothing was made: the email still signs up, with a password long enough.
    expect((await signedUp("erin")).email).toBe(email);
  });

  it("rotates the refresh token on every refresh, and a rotated token used again ends the whole session", async () => {
    const { sb, session: s0, user } = await signedUp("frank");
    const r1 = await refresh(s0.refresh_token);
    expect(r1.error).toBeNull();
    const s1 = r1.data.session!;
    expect(s1.refresh_token).not.toBe(s0.refresh_token);
    // A new access token of the same session (within one second it may equal the first, byte for byte).
    expect(s1.expires_at!).toBeGreaterThanOrEqual(s0.expires_at!);
    expect(claimsOf(s1.access_token).session_id).toBe(claimsOf(s0.access_token).session_id);
    expect((await sb.auth.getUser(s1.access_token)).data.user?.id).toBe(user.id);
    const s2 = (await refresh(s1.refresh_token)).data.session!;
    expect(s2.refresh_token).not.toBe(s1.refresh_token);

    // s0's token is neither the live one nor the parent of it: someone else is using it.
    const stolen = await refresh(s0.refresh_token);
    expect(stolen.data.session).toBeNull();
    expect(stolen.error).toMatchObject({ status: 400, code: "refresh_token_already_used", message: "Invalid Refresh Token: Already Used" });
    // The session is gone, and the rightful client's newest token with it.
    const after = await refresh(s2.refresh_token);
    expect(after.error).toMatchObject({ status: 400, code: "refresh_token_not_found" });
    const user2 = await client().auth.getUser(s2.access_token);
    expect(user2.data.user).toBeNull();
    expect(isAuthSessionMissingError(user2.error)).toBe(true);
  });

  it("lets a client that lost its last refresh's answer refresh again with the token it sent, as GoTrue does", async () => {
    const { session: s0 } = await signedUp("grace");
    const lost = await refresh(s0.refresh_token);
    expect(lost.error).toBeNull();
    const again = await refresh(s0.refresh_token);
    expect(again.error).toBeNull();
    expect(again.data.session!.refresh_token).not.toBe(s0.refresh_token);
    expect(claimsOf(again.data.session!.access_token).session_id).toBe(claimsOf(s0.access_token).session_id);
    const next = await refresh(again.data.session!.refresh_token);
    expect(next.error).toBeNull();
  });

  it("signing out ends the session: its refresh token is refused and GET /user refuses its access token; scopes choose which sessions", async () => {
    const { email, password } = await signedUp("heidi");
    const a = await signIn(email, password);
    const b = await signIn(email, password);
    const c = await signIn(email, password);

    expect((await a.sb.auth.signOut({ scope: "local" })).error).toBeNull();
    expect((await refresh(a.session.refresh_token)).error).toMatchObject({ status: 400, code: "refresh_token_not_found" });
    expect(isAuthSessionMissingError((await client().auth.getUser(a.session.access_token)).error)).toBe(true);
    // The other sessions go on.
    const bRefreshed = await refresh(b.session.refresh_token);
    expect(bRefreshed.error).toBeNull();

    // "others" ends every session but the caller's.
    expect((await c.sb.auth.signOut({ scope: "others" })).error).toBeNull();
    expect((await refresh(bRefreshed.data.session!.refresh_token)).error).toMatchObject({ code: "refresh_token_not_found" });
    const cRefreshed = await refresh(c.session.refresh_token);
    expect(cRefreshed.error).toBeNull();

    // The default, global, ends them all.
    const d = await signIn(email, password);
    expect((await d.sb.auth.signOut()).error).toBeNull();
    expect((await refresh(cRefreshed.data.session!.refresh_token)).error).toMatchObject({ code: "refresh_token_not_found" });
    expect((await refresh(d.session.refresh_token)).error).toMatchObject({ code: "refresh_token_not_found" });
  });

  it("requires the project's apikey, as the hosted gateway does, and answers browsers' preflights", async () => {
    const signInWith = (headers: Record<string, string>) =>
      fetch(`${origin}/auth/v1/token?grant_type=password`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ email: emailOf("alice"), password: "whatever-it-is" }),
      });
    const none = await signInWith({});
    expect(none.status).toBe(401);
    expect((await none.json()).message).toBe("No API key found in request");
    const wrong = await signInWith({ apikey: `${keys.publishableKey}x` });
    expect(wrong.status).toBe(401);
    expect((await wrong.json()).message).toBe("Invalid API key");
    // The secret key passes the gateway too (a backend may sign users in).
    expect((await signInWith({ apikey: keys.secretKey })).status).toBe(400);

    const preflight = await fetch(`${origin}/auth/v1/token?grant_type=password`, {
      method: "OPTIONS",
      headers: {
        origin: "http://localhost:5173",
        "access-control-request-method": "POST",
        "access-control-request-headers": "apikey, authorization, content-type, x-client-info, x-supabase-api-version",
      },
    });
    expect(preflight.status).toBe(204);
    const allowed = preflight.headers.get("access-control-allow-headers")!.toLowerCase();
    for (const h of ["apikey", "authorization", "content-type", "x-client-info", "x-supabase-api-version"]) expect(allowed).toContain(h);
  });

  it("keeps only bcrypt hashes of passwords and no refresh token anywhere in the database, and logs none of them", async () => {
    const { email, password } = await signedUp("ivan");
    const output = () => server!.output() + server!.stderr();
    let db: Database;
    if (usingPostgres) {
      db = createPostgresDatabase(databaseUrl!, { max: 1 });
    } else {
      // PGlite allows one process: stop the server first, then open its data dir here.
      expect(await stopProcess(server!)).toBe(0);
      db = await createPgliteDatabase({ dataDir });
    }
    try {
      const [row] = await db.query<{ encrypted_password: string }>(
        `select encrypted_password from auth.users where email = $1`, [email]);
      expect(row.encrypted_password).toMatch(/^\$2[aby]\$10\$[./A-Za-z0-9]{53}$/);
      expect(await bcrypt.compare(password, row.encrypted_password)).toBe(true);
      expect(await bcrypt.compare(`${password}x`, row.encrypted_password)).toBe(false);

      // Every row of every table in the auth and public schemas, as text.
      const tables = await db.query<{ name: string }>(
        `select format('%I.%I', schemaname, tablename) as name from pg_tables where schemaname in ('auth', 'public')`);
      expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(["auth.users", "auth.sessions", "auth.refresh_tokens"]));
      const text: string[] = [];
      for (const { name } of tables) {
        for (const r of await db.query<{ row: string }>(`select row_to_json(t)::text as row from ${name} t`)) text.push(r.row);
      }
      const dump = text.join("\n");
      expect(dump).toContain(email); // the scan does see the rows
      expect(handled.size).toBeGreaterThan(20);
      const stored = [...handled].filter((s) => dump.includes(s));
      expect(stored).toEqual([]);
      const logged = [...handled].filter((s) => output().includes(s));
      expect(logged).toEqual([]);
    } finally {
      await db.close();
    }
  });
});
