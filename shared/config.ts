/**
 * Configuration, read once in the composition root through one zod schema. Services never
 * read the environment.
 *
 * Authentication needs nothing set on hosted Supabase: it reads what the platform hands every
 * function, under the names and in the order of Supabase's own server helper
 * (`@supabase/server`), so the same variables mean the same thing to both:
 * - user tokens are verified against `SUPABASE_JWKS` (the project's key set, inline); without
 *   it, against the key set fetched from `SUPABASE_JWKS_URL`, else from
 *   `<SUPABASE_PUBLIC_URL or SUPABASE_URL>/auth/v1/.well-known/jwks.json` (https, or http on a
 *   loopback host only: a key set fetched in clear text could be swapped);
 * - the legacy HS256 secret, which the platform never hands out, is `SIGYL_JWT_SECRET`, since
 *   names starting with `SUPABASE_` cannot be set on hosted; `SUPABASE_JWT_SECRET` is read too
 *   (self-hosted stacks and scripts that already export it). Locally it defaults to the public
 *   secret of Supabase's local stack, which production refuses;
 * - the service role is any entry of `SUPABASE_SECRET_KEYS` (else `SUPABASE_SECRET_KEY`), or
 *   the legacy `SUPABASE_SERVICE_ROLE_KEY` unless `SIGYL_ACCEPT_SERVICE_ROLE_KEY=false`.
 *
 * Production (`SB_REGION` set, as on hosted, or `SIGYL_ENV=production`) starts with only those
 * platform variables and refuses only what cannot be safe: no way at all to verify a user
 * token, or the public local secret.
 */
import { base64url, type JSONWebKeySet } from "jose";
import { z } from "zod";

/**
 * The database login the function is meant to use: created by the foundation migration, it
 * owns nothing and may only become `authenticated`/`service_role` and call the API helpers.
 */
export const API_ROLE = "sigyl_api";

/** The JWT secret of Supabase's local stack (public; used only when running locally). */
export const LOCAL_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";

const csv = z.string().transform((s) => s.split(",").map((x) => x.trim()).filter(Boolean));
const boolish = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");

/** A platform variable: blank means unset, as in `@supabase/server`. */
const platform = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (typeof v === "string" && v.trim() === "" ? undefined : v), schema.optional());

/** A variable holding JSON, then checked against `schema`. */
const json = <T extends z.ZodType>(schema: T) =>
  z.string().transform((text, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      ctx.addIssue({ code: "custom", message: "is not JSON" });
      return z.NEVER;
    }
  }).pipe(schema);

const jwk = z.looseObject({
  kty: z.string(),
  kid: z.string().optional(),
  k: z.string().regex(/^[A-Za-z0-9_-]+$/, "k must be base64url").optional(),
  d: z.string().optional(),
});
/** `{"keys":[…]}`, or a bare array of keys (both accepted by `@supabase/server`). */
const keySet = z.union([
  z.looseObject({ keys: z.array(jwk) }),
  z.array(jwk).transform((keys) => ({ keys })),
], { error: 'expected a JSON Web Key Set, {"keys":[…]}' });
/** `{"default":"sb_secret_…", …}`: named API keys. */
const apiKeys = z.record(z.string(), z.string().min(20, "each key must be at least 20 characters"), {
  error: 'expected a JSON object of named keys, {"default":"sb_secret_…"}',
});

const isLoopback = (hostname: string) =>
  hostname === "localhost" || hostname.endsWith(".localhost") || hostname === "[::1]" || /^127(\.\d{1,3}){3}$/.test(hostname);
/** https, or http on a loopback host: a key set fetched in clear text could be swapped on the way. */
const isSafeKeySetUrl = (url: URL) => url.protocol === "https:" || (url.protocol === "http:" && isLoopback(url.hostname));

const EnvSchema = z.object({
  DATABASE_URL: z.string().min(1).optional(),
  /** Set by the hosted edge runtime. */
  SUPABASE_DB_URL: z.string().min(1).optional(),
  /** Set by the hosted edge runtime: the project's URL, and the key set it serves. */
  SUPABASE_URL: platform(z.url()),
  SUPABASE_PUBLIC_URL: platform(z.url()),
  SUPABASE_JWKS: platform(json(keySet)),
  SUPABASE_JWKS_URL: platform(z.url().refine((u) => isSafeKeySetUrl(new URL(u)), "must be https (http only on a loopback host)")),
  /** Set by the hosted edge runtime: the project's secret API keys, by name. */
  SUPABASE_SECRET_KEYS: platform(json(apiKeys)),
  SUPABASE_SECRET_KEY: platform(z.string().min(20)),
  /** Set by the hosted edge runtime: the legacy service_role key (a JWT). */
  SUPABASE_SERVICE_ROLE_KEY: platform(z.string().min(20)),
  SIGYL_ACCEPT_SERVICE_ROLE_KEY: boolish.default(true),
  SIGYL_JWT_SECRET: z.string().min(32).optional(),
  SUPABASE_JWT_SECRET: z.string().min(32).optional(),
  SIGYL_ENV: z.enum(["local", "production"]).optional(),
  SB_REGION: z.string().optional(),
  SIGYL_CORS_ORIGINS: csv.default(["*"]),
  SIGYL_DB_POOL_SIZE: z.coerce.number().int().min(1).max(100).default(10),
  SIGYL_DB_PREPARE: boolish.default(true),
  /** A transaction's statements written without waiting for each answer (see `PostgresOptions.pipeline`); unset: automatic. */
  SIGYL_DB_PIPELINE: boolish.optional(),
  /** Each request's transaction, connection wait included; see `DatabaseTimeouts`. */
  SIGYL_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(5000),
  SIGYL_DATA_DIR: z.string().default(".sigyl/pglite"),
  SIGYL_TRUSTED_PROXY_HOPS: z.coerce.number().int().min(0).max(10).default(1),
  SIGYL_JOB_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(3600).default(60),
  /** The local sign-in stand-in's `refresh_token_reuse_interval` (GoTrue's name and default), in seconds. */
  SIGYL_AUTH_REFRESH_TOKEN_REUSE_INTERVAL: z.coerce.number().int().min(0).max(3600).default(10),
  HOST: z.string().default("127.0.0.1"),
  PORT: z.coerce.number().int().min(0).max(65535).default(54321),
});

type Env = z.infer<typeof EnvSchema>;

/** How callers are recognised; the fields of `AuthConfig` in shared/auth/authenticate.ts. */
export interface AuthSettings {
  /** The project's key set, inline (`SUPABASE_JWKS`). */
  jwks?: JSONWebKeySet;
  /** Where to fetch the key set when it is not inline. */
  jwksUrl?: string;
  /** The legacy HS256 secret. */
  jwtSecret?: string;
  /** Keys that make their sender the service role. */
  serviceKeys: string[];
}

export interface Config {
  production: boolean;
  databaseUrl: string | null;
  auth: AuthSettings;
  corsOrigins: string[];
  trustedProxyHops: number;
  db: { max: number; prepare: boolean; pipeline?: boolean; requestTimeoutMs: number };
  dataDir: string;
  jobIntervalSeconds: number;
  /** How long the local sign-in stand-in honours a refresh token after rotating it (scripts/lib/auth/). */
  authReuseIntervalSeconds: number;
  host: string;
  port: number;
}

export class ConfigError extends Error {}

/**
 * `defaultEnv` is what an unset SIGYL_ENV means: the local scripts default to local, the
 * edge function to production, so a deployment that cannot verify tokens fails closed
 * instead of trusting the public local secret. `SB_REGION` (hosted) is production whatever
 * SIGYL_ENV says.
 */
export function loadConfig(env: Record<string, string | undefined>, options: { defaultEnv?: "local" | "production" } = {}): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new ConfigError(`invalid configuration: ${fields}`);
  }
  const e = parsed.data;
  const production = Boolean(e.SB_REGION) || (e.SIGYL_ENV ?? options.defaultEnv) === "production";
  return {
    production,
    databaseUrl: e.DATABASE_URL ?? e.SUPABASE_DB_URL ?? null,
    auth: authSettings(e, production),
    corsOrigins: e.SIGYL_CORS_ORIGINS,
    trustedProxyHops: e.SIGYL_TRUSTED_PROXY_HOPS,
    db: {
      max: e.SIGYL_DB_POOL_SIZE, prepare: e.SIGYL_DB_PREPARE, pipeline: e.SIGYL_DB_PIPELINE, requestTimeoutMs: e.SIGYL_REQUEST_TIMEOUT_MS,
    },
    dataDir: e.SIGYL_DATA_DIR,
    jobIntervalSeconds: e.SIGYL_JOB_INTERVAL_SECONDS,
    authReuseIntervalSeconds: e.SIGYL_AUTH_REFRESH_TOKEN_REUSE_INTERVAL,
    host: e.HOST,
    port: e.PORT,
  };
}

const ASYMMETRIC_KEY_TYPES = new Set(["EC", "RSA", "OKP"]);

function authSettings(e: Env, production: boolean): AuthSettings {
  if (e.SIGYL_JWT_SECRET && e.SUPABASE_JWT_SECRET && e.SIGYL_JWT_SECRET !== e.SUPABASE_JWT_SECRET) {
    throw new ConfigError("SIGYL_JWT_SECRET and SUPABASE_JWT_SECRET are both set and differ; set only SIGYL_JWT_SECRET");
  }
  const jwtSecret = e.SIGYL_JWT_SECRET ?? e.SUPABASE_JWT_SECRET ?? (production ? undefined : LOCAL_JWT_SECRET);

  // The inline key set is authoritative when present; a URL is consulted only without it.
  const jwks = e.SUPABASE_JWKS as JSONWebKeySet | undefined;
  const jwksUrl = jwks ? undefined : e.SUPABASE_JWKS_URL ?? keySetUrlOf(e.SUPABASE_PUBLIC_URL ?? e.SUPABASE_URL);
  const keys = jwks?.keys ?? [];
  if (keys.some((k) => ASYMMETRIC_KEY_TYPES.has(k.kty!) && k.d !== undefined)) {
    throw new ConfigError("SUPABASE_JWKS holds a private key; it must hold the public keys only");
  }
  // A symmetric key in the set is an HS256 secret: Supabase's CLI hands its local stack's legacy
  // secret to functions that way. Never from a fetched key set, which is public.
  const symmetric = keys.filter((k) => k.kty === "oct" && typeof k.k === "string");
  const usable = keys.some((k) => ASYMMETRIC_KEY_TYPES.has(k.kty!)) || symmetric.length > 0;

  if (production) {
    const local = new TextEncoder().encode(LOCAL_JWT_SECRET);
    if (jwtSecret === LOCAL_JWT_SECRET || symmetric.some((k) => sameBytes(base64url.decode(k.k!), local))) {
      throw new ConfigError("the local development JWT secret cannot be used in production");
    }
    if (!usable && !jwksUrl && !jwtSecret) {
      const projectUrl = e.SUPABASE_PUBLIC_URL ? ["SUPABASE_PUBLIC_URL", e.SUPABASE_PUBLIC_URL] : e.SUPABASE_URL ? ["SUPABASE_URL", e.SUPABASE_URL] : null;
      throw new ConfigError(
        jwks
          ? "no way to verify user tokens: SUPABASE_JWKS holds no signing key, so the project still signs them with " +
            "its legacy JWT secret; set SIGYL_JWT_SECRET to that secret, or move the project to JWT signing keys"
          : projectUrl
          ? `no way to verify user tokens: SUPABASE_JWKS is unset, the key set is not fetched from ${projectUrl[0]}=${projectUrl[1]} ` +
            "(https only, or http on a loopback host; SUPABASE_JWKS_URL names another place) and SIGYL_JWT_SECRET is not set"
          : "no way to verify user tokens: SUPABASE_JWKS and SUPABASE_URL are unset (the Supabase platform sets both " +
            "for every function) and SIGYL_JWT_SECRET is not set",
      );
    }
  }

  const secretKeys = e.SUPABASE_SECRET_KEYS ? Object.values(e.SUPABASE_SECRET_KEYS) : e.SUPABASE_SECRET_KEY ? [e.SUPABASE_SECRET_KEY] : [];
  if (secretKeys.some((k) => k.startsWith("sb_publishable_"))) {
    throw new ConfigError("SUPABASE_SECRET_KEYS holds a publishable key (sb_publishable_…), which is public: it must never make a caller the service role");
  }
  const legacy = e.SIGYL_ACCEPT_SERVICE_ROLE_KEY && e.SUPABASE_SERVICE_ROLE_KEY ? [e.SUPABASE_SERVICE_ROLE_KEY] : [];
  return { jwks, jwksUrl, jwtSecret, serviceKeys: [...new Set([...secretKeys, ...legacy])] };
}

/** `<project URL>/auth/v1/.well-known/jwks.json`, where every Supabase project serves its key set. */
function keySetUrlOf(projectUrl: string | undefined): string | undefined {
  if (!projectUrl) return undefined;
  const url = new URL(projectUrl);
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/auth/v1/.well-known/jwks.json`;
  url.search = "";
  url.hash = "";
  return isSafeKeySetUrl(url) ? url.href : undefined;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
