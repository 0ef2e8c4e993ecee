/**
 * Authentication of every request: a Supabase Auth user access token, or the service role
 * (a service-role JWT, or an `apikey` equal to the configured service key). Tokens are
 * verified with `jose`: signature (HS256 with the project's JWT secret, or the project's
 * JWKS), `exp` required, `aud` and `role` checked. Every failure is the same 401: the caller
 * learns nothing about why.
 */
import { createRemoteJWKSet, type JWTPayload, jwtVerify, type JWTVerifyGetKey } from "jose";
import type { Clock } from "../clock.ts";
import { type DeploymentTokenResolver, isDeploymentTokenForm } from "../deployments/deployment-token.ts";
import { appError } from "../errors.ts";
import { UUID_PATTERN } from "../http/validation.ts";

export type Caller =
  | { kind: "user"; userId: string; email: string | null; claims: JWTPayload }
  | { kind: "service"; claims: JWTPayload }
  /** A deployment token: opens the env of one deployment and nothing else. */
  | { kind: "deployment"; deploymentId: string; tokenHash: string; claims: JWTPayload };

export type CallerKind = Caller["kind"];

export interface AuthConfig {
  /** HS256 secret (Supabase's JWT secret). */
  jwtSecret?: string;
  /** The project's JWKS URL, for asymmetric signing keys. */
  jwksUrl?: string;
  /** A secret key that, sent as `apikey`, makes the caller the service role. */
  serviceKey?: string;
  /** Deployment tokens: the deployment a live one opens. Without it they are refused. */
  resolveDeploymentToken?: DeploymentTokenResolver;
}

/**
 * Who sent the request. `deploymentTokens`: whether the route takes deployment tokens (only
 * the env route does); elsewhere one is refused like any invalid token, without a lookup.
 */
export type Authenticator = (headers: Headers, options?: { deploymentTokens?: boolean }) => Promise<Caller>;

export const unauthenticated = () => appError("unauthenticated");

/** Compares two strings in time independent of where they differ. */
function timingSafeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

export function createAuthenticator(config: AuthConfig, clock: Clock): Authenticator {
  const secret = config.jwtSecret ? new TextEncoder().encode(config.jwtSecret) : undefined;
  const jwks: JWTVerifyGetKey | undefined = config.jwksUrl ? createRemoteJWKSet(new URL(config.jwksUrl)) : undefined;
  if (!secret && !jwks) throw new Error("authentication needs a JWT secret or a JWKS URL");
  // Imported once, non-extractable and verify-only: given raw bytes, jose imports the key again
  // on every request (a check took 95 µs that way, 59 µs this way, profiling npm run bench).
  const hmacKey = secret
    ? crypto.subtle.importKey("raw", secret as BufferSource, { name: "HMAC", hash: "SHA-256" }, false, ["verify"])
    : undefined;

  async function verify(token: string): Promise<JWTPayload> {
    const options = { currentDate: clock.now(), requiredClaims: ["exp", "role"] };
    if (jwks) {
      try {
        return (await jwtVerify(token, jwks, { ...options, algorithms: ["RS256", "ES256", "EdDSA"] })).payload;
      } catch (err) {
        if (!hmacKey) throw err;
      }
    }
    return (await jwtVerify(token, await hmacKey!, { ...options, algorithms: ["HS256"] })).payload;
  }

  return async (headers, options = {}) => {
    const apikey = headers.get("apikey");
    const bearer = headers.get("authorization")?.match(/^Bearer\s+(\S+)$/i)?.[1];
    if (config.serviceKey && apikey && timingSafeEqual(apikey, config.serviceKey) && (!bearer || bearer === apikey)) {
      return { kind: "service", claims: { role: "service_role" } };
    }
    if (!bearer) throw unauthenticated();
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
      claims = await verify(bearer);
    } catch {
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
