/**
 * Authentication of every request: a Supabase Auth user access token, the service role, or a
 * deployment token. Every failure is the same 401: the caller learns nothing about why.
 *
 * - **User tokens** (`Authorization: Bearer <JWT>`) are verified with `jose`: ES256/RS256/EdDSA
 *   against the project's key set (inline, or fetched from its URL), HS256 against the legacy
 *   secret; the token's own `alg` picks the key, so `alg: none` or a public key used as an HMAC
 *   secret never verifies. `exp` is required, `role` and `aud` must say `authenticated`, `sub`
 *   must be a user id. A JWT with role `service_role` is the service role.
 * - **The service role** is also whoever sends one of the project's secret API keys
 *   (`sb_secret_…`, or the legacy service_role key), as supabase-js sends keys: in the `apikey`
 *   header, and as `Authorization: Bearer` when no user token rides along. Keys are compared
 *   as SHA-256 digests, in time independent of the key and of which one matches. A publishable
 *   key (`sb_publishable_…`) is not a caller: alone it gets the 401.
 *
 * Why not `@supabase/server` (Supabase's server helper, also on `jose`): its user mode rejects
 * tokens without `kid`, so legacy HS256 projects could not sign in; it does not require `exp` or
 * check `role`, so every claim would be checked again here; it takes the time from the system
 * clock, where tests inject theirs; it reads the process environment itself, where ours is read
 * once through config; and its `core` entry imports supabase-js, which the function does not
 * run. Its conventions are followed instead: the same variables, in the same order
 * (shared/config.ts), keys in `apikey`, an `sb_` bearer never taken for a JWT, any entry of the
 * secret key set accepted, constant-time comparison.
 */
import {
  base64url,
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  type JSONWebKeySet,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey,
} from "jose";
import type { Clock } from "../clock.ts";
import { type DeploymentTokenResolver, isDeploymentTokenForm } from "../deployments/deployment-token.ts";
import { appError } from "../errors.ts";
import { UUID_PATTERN } from "../http/validation.ts";
import { createTokenCache, type TokenCache } from "./token-cache.ts";

export type Caller =
  | { kind: "user"; userId: string; email: string | null; claims: JWTPayload }
  | { kind: "service"; claims: JWTPayload }
  /** A deployment token: opens the env of one deployment and nothing else. */
  | { kind: "deployment"; deploymentId: string; tokenHash: string; claims: JWTPayload };

export type CallerKind = Caller["kind"];

export interface AuthConfig {
  /**
   * The project's key set, inline (`SUPABASE_JWKS`): its public keys verify asymmetric tokens;
   * a symmetric (`oct`) key in it is an HS256 secret, as Supabase's CLI hands its local secret.
   */
  jwks?: JSONWebKeySet;
  /** Where to fetch the key set (public keys only) when it is not inline. */
  jwksUrl?: string;
  /** The legacy HS256 secret. */
  jwtSecret?: string;
  /** Secret API keys: any of them makes its sender the service role. */
  serviceKeys?: readonly string[];
  /** Deployment tokens: the deployment a live one opens. Without it they are refused. */
  resolveDeploymentToken?: DeploymentTokenResolver;
  /**
   * Verified JWTs kept until their `exp` (shared/auth/token-cache.ts); default: a cache of the
   * default size. Deployment tokens and API keys never go through it.
   */
  tokenCache?: TokenCache;
}

/**
 * Who sent the request. `deploymentTokens`: whether the route takes deployment tokens (only
 * the env route does); elsewhere one is refused like any invalid token, without a lookup.
 */
export type Authenticator = (headers: Headers, options?: { deploymentTokens?: boolean }) => Promise<Caller>;

export const unauthenticated = () => appError("unauthenticated");

const ASYMMETRIC_ALGORITHMS = ["ES256", "RS256", "EdDSA"];
const ASYMMETRIC_KEY_TYPES = new Set(["EC", "RSA", "OKP"]);
const service = (): Caller => ({ kind: "service", claims: { role: "service_role" } });

const sha256 = async (text: string) => new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));

// Imported once, non-extractable and verify-only: given raw bytes, jose imports the key again
// on every request (a check took 95 µs that way, 59 µs this way, profiling npm run bench).
const hmacKey = (secret: Uint8Array) =>
  crypto.subtle.importKey("raw", secret as BufferSource, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);

export function createAuthenticator(config: AuthConfig, clock: Clock): Authenticator {
  const inline = config.jwks?.keys ?? [];
  const publicKeys = inline.filter((k) => ASYMMETRIC_KEY_TYPES.has(k.kty!));
  // The inline set is authoritative; the URL is for when the platform handed none.
  const keySet: JWTVerifyGetKey | undefined = config.jwks
    ? (publicKeys.length ? createLocalJWKSet({ keys: publicKeys }) : undefined)
    : config.jwksUrl ? createRemoteJWKSet(new URL(config.jwksUrl)) : undefined;
  const hmacKeys: { kid?: string; key: Promise<CryptoKey> }[] = [
    ...(config.jwtSecret ? [{ key: hmacKey(new TextEncoder().encode(config.jwtSecret)) }] : []),
    ...inline.filter((k) => k.kty === "oct" && typeof k.k === "string").map((k) => ({ kid: k.kid, key: hmacKey(base64url.decode(k.k!)) })),
  ];
  if (!keySet && hmacKeys.length === 0) throw new Error("authentication needs a key set, a key set URL or a JWT secret");

  const serviceKeys = Promise.all((config.serviceKeys ?? []).map(sha256));
  // The legacy service_role key is a JWT, which this project may have no secret to verify.
  const jwtServiceKey = (config.serviceKeys ?? []).some((k) => !k.startsWith("sb_"));

  async function isServiceKey(presented: string): Promise<boolean> {
    const keys = await serviceKeys;
    if (keys.length === 0) return false;
    const digest = await sha256(presented);
    let matches = 0;
    for (const key of keys) {
      let diff = 0;
      for (let i = 0; i < key.length; i++) diff |= key[i] ^ digest[i];
      matches |= Number(diff === 0);
    }
    return matches === 1;
  }

  const verified = config.tokenCache ?? createTokenCache();

  /** The token's claims: from the cache while it holds them, else verified and kept. */
  async function claimsOf(token: string): Promise<JWTPayload> {
    const now = clock.now();
    const cached = verified.get(token, now.getTime());
    if (cached) return cached;
    const claims = Object.freeze(await verify(token, now));
    verified.set(token, claims, now.getTime());
    return claims;
  }

  async function verify(token: string, now: Date): Promise<JWTPayload> {
    const { alg, kid } = decodeProtectedHeader(token);
    const options = { currentDate: now, requiredClaims: ["exp", "role"] };
    if (alg === "HS256") {
      for (const candidate of hmacKeys) {
        if (kid && candidate.kid && candidate.kid !== kid) continue;
        try {
          return (await jwtVerify(token, await candidate.key, { ...options, algorithms: ["HS256"] })).payload;
        } catch { /* the next secret, if any */ }
      }
    } else if (keySet && typeof alg === "string" && ASYMMETRIC_ALGORITHMS.includes(alg)) {
      return (await jwtVerify(token, keySet, { ...options, algorithms: ASYMMETRIC_ALGORITHMS })).payload;
    }
    throw unauthenticated();
  }

  return async (headers, options = {}) => {
    const apikey = headers.get("apikey");
    const bearer = headers.get("authorization")?.match(/^Bearer\s+(\S+)$/i)?.[1];
    if (!bearer) {
      if (apikey && await isServiceKey(apikey)) return service();
      throw unauthenticated();
    }
    // An API key, never a JWT: a secret key is the service role, anything else nobody.
    if (bearer.startsWith("sb_")) {
      if (await isServiceKey(bearer)) return service();
      throw unauthenticated();
    }
    if (isDeploymentTokenForm(bearer)) {
      if (!options.deploymentTokens || !config.resolveDeploymentToken) throw unauthenticated();
      const resolved = await config.resolveDeploymentToken(bearer);
      if (!resolved) throw unauthenticated();
      const { deploymentId, tokenHash } = resolved;
      return {
        kind: "deployment", deploymentId, tokenHash,
        claims: { role: "authenticated", sigyl_actor: "deployment", deployment_id: deploymentId },
      };
    }
    let claims: JWTPayload;
    try {
      claims = await claimsOf(bearer);
    } catch {
      if (jwtServiceKey && await isServiceKey(bearer)) return service();
      throw unauthenticated();
    }
    if (claims.role === "service_role") return { kind: "service", claims };
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (claims.role !== "authenticated" || !aud.includes("authenticated") || typeof claims.sub !== "string" || !UUID_PATTERN.test(claims.sub)) {
      throw unauthenticated();
    }
    return {
      kind: "user",
      userId: claims.sub.toLowerCase(),
      email: typeof claims.email === "string" ? claims.email : null,
      claims,
    };
  };
}
