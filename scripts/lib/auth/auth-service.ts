/**
 * The local sign-in stand-in: the part of Supabase Auth (GoTrue) that supabase-js uses to sign
 * a user up, in and out, with GoTrue's rules and answers, so the web console runs against
 * `npm start` unchanged. Local only: hosted, Supabase Auth itself answers these routes.
 *
 * - Sign-up with email and password, confirmed at once (GoTrue with autoconfirm on: no email
 *   is sent locally), answers a session; an email already registered gets `user_already_exists`.
 * - Passwords: 6 to 72 bytes (GoTrue's default minimum; bcrypt reads no further than 72), kept
 *   as bcrypt hashes only. A sign-in for an unknown email or a user without a password still
 *   runs one bcrypt comparison, so the answer's timing does not tell which emails exist.
 * - Sessions: a row in `auth.sessions` with a chain of refresh tokens in `auth.refresh_tokens`.
 *   A refresh revokes the token it used and issues its child. A revoked token is honoured only
 *   where GoTrue honours one: it is the parent of the session's active token (the client lost
 *   the answer to its last refresh), or it was revoked less than the reuse interval ago
 *   (concurrent refreshes, GoTrue's `refresh_token_reuse_interval`, 10 s by default). Any
 *   other reuse is taken as theft: the whole session ends and the answer is
 *   `refresh_token_already_used`.
 * - Access tokens are signed by the local platform's ES256 key with the session's id, exactly
 *   as `npm run token` signs them, so the `secrets` function accepts them as it does hosted.
 * - Sign-out deletes the session (global: every session of the user; others: all but this
 *   one), and the sessions' refresh tokens with it. Access tokens already issued stay valid
 *   until they expire, as hosted; GET /user refuses them (`session_not_found`).
 *
 * Passwords, tokens and hashes are never logged.
 */
import bcrypt from "bcryptjs";
import { createLocalJWKSet, errors as joseErrors, type JSONWebKeySet, jwtVerify } from "jose";
import { z } from "zod";
import { sha256Base64, toBase64Url } from "../../../shared/bytes.ts";
import type { Clock } from "../../../shared/clock.ts";
import type { Database, Queryable } from "../../../shared/db/database.ts";
import { type LocalSigner, signUserToken } from "../local.ts";
import * as dal from "./auth-dal.ts";
import { AuthError } from "./auth-errors.ts";
import { type SessionJson, userJson } from "./auth-schemas.ts";

/** GoTrue's settings that the stand-in follows; the defaults are GoTrue's own. */
export interface LocalAuthSettings {
  /** `iss` of the access tokens: `<project URL>/auth/v1`. */
  issuer: string;
  /** Access token lifetime (GoTrue `JWT_EXP`, default 3600). */
  jwtExpirySeconds: number;
  /** How long a revoked refresh token may still be used (GoTrue default 10). */
  reuseIntervalSeconds: number;
  /** Password minimum length (GoTrue default 6). */
  minPasswordLength: number;
  /** bcrypt cost (GoTrue uses Go's default, 10). */
  bcryptCost: number;
}

export const DEFAULT_AUTH_SETTINGS: Omit<LocalAuthSettings, "issuer"> = {
  jwtExpirySeconds: 3600,
  reuseIntervalSeconds: 10,
  minPasswordLength: 6,
  bcryptCost: 10,
};

/** bcrypt reads only the first 72 bytes of a password; GoTrue refuses longer ones. */
const MAX_PASSWORD_BYTES = 72;
const INVALID_LOGIN = "Invalid login credentials";

/** Where a request came from, stored on its session as GoTrue stores it. */
export interface ClientInfo {
  userAgent: string | null;
  ip: string | null;
}

export interface LocalAuthDeps {
  /** The owner's connection: Supabase Auth writes `auth.*` as its own administrator. */
  db: Database;
  signer: LocalSigner;
  /** The public key set access tokens are verified against (the local platform's). */
  jwks: JSONWebKeySet;
  clock: Clock;
  settings: LocalAuthSettings;
}

const email = z.email({ pattern: z.regexes.html5Email });
const uuid = z.uuid();
const NIL_UUID = "00000000-0000-0000-0000-000000000000";

/** The authenticated caller of GET /user and POST /logout. */
export interface AuthenticatedCaller {
  user: dal.AuthUserRow;
  sessionId: string | null;
  audience: string | null;
}

export function createLocalAuthService(deps: LocalAuthDeps) {
  const { db, clock, settings } = deps;
  const keySet = createLocalJWKSet(deps.jwks);
  // A hash to compare against when there is no user's, made once, so a miss costs a bcrypt run too.
  let decoyHash: Promise<string> | undefined;
  const decoy = () => (decoyHash ??= bcrypt.hash(crypto.randomUUID(), settings.bcryptCost));

  const checkPasswordStrength = (password: string) => {
    if (new TextEncoder().encode(password).length > MAX_PASSWORD_BYTES) {
      throw new AuthError(400, "validation_failed", `Password cannot be longer than ${MAX_PASSWORD_BYTES} characters`);
    }
    if (password.length < settings.minPasswordLength) {
      throw new AuthError(422, "weak_password", `Password should be at least ${settings.minPasswordLength} characters.`, ["length"]);
    }
  };

  const validEmail = (address: string): string => {
    if (address === "") throw new AuthError(400, "validation_failed", "An email address is required");
    if (address.length > 255) throw new AuthError(400, "validation_failed", "An email address is too long");
    if (!email.safeParse(address).success) {
      throw new AuthError(400, "validation_failed", "Unable to validate email address: invalid format");
    }
    return address.toLowerCase();
  };

  const newRefreshToken = async () => {
    const token = toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
    return { token, hash: await sha256Base64(token) };
  };

  /** The access token of a session, and GoTrue's answer around it. */
  const sessionResponse = async (user: dal.AuthUserRow, session: dal.SessionRow, refreshToken: string): Promise<SessionJson> => {
    const now = clock.now();
    const accessToken = await signUserToken(deps.signer, { id: user.id, email: user.email }, {
      now,
      expiresInSeconds: settings.jwtExpirySeconds,
      issuer: settings.issuer,
      sessionId: session.id,
      authenticatedAt: new Date(session.created_at),
      appMetadata: user.raw_app_meta_data ?? {},
      userMetadata: user.raw_user_meta_data ?? {},
    });
    const expiresAt = Math.floor(now.getTime() / 1000) + settings.jwtExpirySeconds;
    return {
      access_token: accessToken,
      token_type: "bearer",
      expires_in: settings.jwtExpirySeconds,
      expires_at: expiresAt,
      refresh_token: refreshToken,
      user: userJson(user),
    };
  };

  /** A new session for the user with its first refresh token (GoTrue's IssueRefreshToken). */
  const startSession = async (tx: Queryable, userId: string, client: ClientInfo) => {
    const at = clock.now();
    const session = await dal.insertSession(tx, { id: crypto.randomUUID(), userId, at, ...client });
    const refresh = await newRefreshToken();
    await dal.insertRefreshToken(tx, { hash: refresh.hash, parentHash: null, sessionId: session.id, userId, at });
    const user = await dal.touchLastSignIn(tx, userId, at);
    return { user, session, refreshToken: refresh.token };
  };

  return {
    /** POST /signup: a confirmed user and its first session. */
    async signUp(body: { email: string; phone: string; password: string; data: Record<string, unknown> }, client: ClientInfo) {
      if (body.password === "") throw new AuthError(400, "validation_failed", "Signup requires a valid password");
      checkPasswordStrength(body.password);
      if (body.email !== "" && body.phone !== "") {
        throw new AuthError(400, "validation_failed", "Only an email address or phone number should be provided on signup.");
      }
      if (body.email === "") {
        if (body.phone !== "") throw new AuthError(400, "phone_provider_disabled", "Phone signups are disabled");
        throw new AuthError(422, "anonymous_provider_disabled", "Anonymous sign-ins are disabled");
      }
      const address = validEmail(body.email);
      const exists = () => new AuthError(422, "user_already_exists", "User already registered");
      if (await dal.findUserByEmail(db, address)) throw exists();
      // Outside the transaction, as GoTrue hashes: bcrypt takes a while on purpose.
      const passwordHash = await bcrypt.hash(body.password, settings.bcryptCost);
      const started = await db.transaction(async (tx) => {
        const user = await dal.insertUser(tx, {
          email: address,
          passwordHash,
          // Confirming an email marks it verified in the user's metadata, as GoTrue does.
          userMetadata: { ...body.data, email_verified: true },
        });
        if (!user) return null;
        return await startSession(tx, user.id, client);
      });
      if (!started) throw exists();
      return await sessionResponse(started.user, started.session, started.refreshToken);
    },

    /** POST /token?grant_type=password. */
    async signInWithPassword(body: { email: string; phone: string; password: string }, client: ClientInfo) {
      if (body.email !== "" && body.phone !== "") {
        throw new AuthError(400, "validation_failed", "Only an email address or phone number should be provided on login.");
      }
      if (body.email === "") {
        if (body.phone !== "") throw new AuthError(422, "phone_provider_disabled", "Phone logins are disabled");
        throw new AuthError(400, "validation_failed", "missing email or phone");
      }
      const user = await dal.findUserByEmail(db, body.email);
      const hash = user?.encrypted_password || await decoy();
      const matches = await bcrypt.compare(body.password, hash);
      // bcrypt would compare the first 72 bytes only: a longer password is never the one stored.
      const tooLong = new TextEncoder().encode(body.password).length > MAX_PASSWORD_BYTES;
      if (!user?.encrypted_password || !matches || tooLong) throw new AuthError(400, "invalid_credentials", INVALID_LOGIN);
      const started = await db.transaction((tx) => startSession(tx, user.id, client));
      return await sessionResponse(started.user, started.session, started.refreshToken);
    },

    /** POST /token?grant_type=refresh_token: rotates the token, with GoTrue's reuse rules. */
    async refresh(body: { refresh_token: string }, client: ClientInfo) {
      if (body.refresh_token.length < 12) throw new AuthError(400, "validation_failed", "Refresh token is not valid");
      const usedHash = await sha256Base64(body.refresh_token);
      const next = await newRefreshToken();
      const outcome = await db.transaction(async (tx) => {
        const used = await dal.lockRefreshToken(tx, usedHash);
        if (!used) return { error: new AuthError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found") };
        const now = clock.now();
        // The token the new one descends from: the one used, or the session's active token.
        let parent = used;
        if (used.revoked) {
          const active = await dal.activeRefreshToken(tx, used.session_id);
          const reusableUntil = new Date(used.updated_at).getTime() + settings.reuseIntervalSeconds * 1000;
          if (active && active.parent === used.token) {
            // The client never got its last refresh's answer. GoTrue hands back the active
            // token; only its hash is kept here, so the active one is rotated instead.
            parent = active;
          } else if (now.getTime() > reusableUntil) {
            // Not a lost answer, not a concurrent refresh: someone else holds this token.
            await dal.deleteSessions(tx, { sessionId: used.session_id });
            return { error: new AuthError(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used") };
          }
        }
        if (!parent.revoked) await dal.revokeRefreshToken(tx, parent.id, now);
        await dal.insertRefreshToken(tx, { hash: next.hash, parentHash: parent.token, sessionId: used.session_id, userId: used.user_id, at: now });
        await dal.touchSession(tx, used.session_id, now, client.userAgent, client.ip);
        const session = await dal.findSession(tx, used.session_id);
        const user = await dal.findUserById(tx, used.user_id);
        return { session: session!, user: user! };
      });
      // The session ended above is committed: the thief's token and the victim's are both dead.
      if ("error" in outcome) throw outcome.error;
      return await sessionResponse(outcome.user, outcome.session, next.token);
    },

    /**
     * The caller of a route that needs a user's access token (GoTrue's requireAuthentication):
     * a Bearer token signed by the local key, its user, and its session if it names one.
     */
    async authenticate(authorization: string | null): Promise<AuthenticatedCaller> {
      const match = /^[Bb]earer (\S+)$/.exec(authorization ?? "");
      if (!match) throw new AuthError(401, "no_authorization", "This endpoint requires a valid Bearer token");
      let claims;
      try {
        ({ payload: claims } = await jwtVerify(match[1], keySet, { algorithms: ["ES256"], currentDate: clock.now() }));
      } catch (err) {
        const reason = err instanceof joseErrors.JWTExpired ? "token has invalid claims: token is expired" : "token is malformed or its signature is invalid";
        throw new AuthError(403, "bad_jwt", `invalid JWT: unable to parse or verify signature, ${reason}`);
      }
      if (!claims.sub) throw new AuthError(403, "bad_jwt", "invalid claim: missing sub claim");
      if (!uuid.safeParse(claims.sub).success) throw new AuthError(400, "bad_jwt", "invalid claim: sub claim must be a UUID");
      const user = await dal.findUserById(db, claims.sub);
      if (!user) throw new AuthError(403, "user_not_found", "User from sub claim in JWT does not exist");
      const sessionId = typeof claims.session_id === "string" && claims.session_id !== "" && claims.session_id !== NIL_UUID
        ? claims.session_id
        : null;
      if (sessionId !== null) {
        if (!uuid.safeParse(sessionId).success) throw new AuthError(403, "bad_jwt", "invalid claim: session_id claim must be a UUID");
        if (!await dal.findSession(db, sessionId)) {
          throw new AuthError(403, "session_not_found", "Session from session_id claim in JWT does not exist");
        }
      }
      const audience = Array.isArray(claims.aud) ? claims.aud[0] ?? null : claims.aud ?? null;
      return { user, sessionId, audience };
    },

    /** GET /user. `requestAudience` is the `X-JWT-AUD` header, which must match the token's. */
    getUser(caller: AuthenticatedCaller, requestAudience: string | null) {
      if (!caller.audience || (requestAudience && requestAudience !== caller.audience)) {
        throw new AuthError(400, "validation_failed", "Token audience doesn't match request audience");
      }
      return userJson(caller.user);
    },

    /** POST /logout. A token naming no session signs the user out everywhere, as in GoTrue. */
    async logout(caller: AuthenticatedCaller, scope: "global" | "local" | "others") {
      const { sessionId, user } = caller;
      if (sessionId !== null && scope === "local") return await dal.deleteSessions(db, { sessionId });
      if (sessionId !== null && scope === "others") return await dal.deleteSessions(db, { userId: user.id, except: sessionId });
      await dal.deleteSessions(db, { userId: user.id });
    },
  };
}

export type LocalAuthService = ReturnType<typeof createLocalAuthService>;
