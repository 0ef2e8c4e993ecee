/**
 * Configuration, read once in the composition root through one zod schema. Services never
 * read the environment.
 */
import { z } from "zod";

/** The JWT secret of Supabase's local stack (public; used only when running locally). */
export const LOCAL_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";

const csv = z.string().transform((s) => s.split(",").map((x) => x.trim()).filter(Boolean));
const boolish = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");

const EnvSchema = z.object({
  DATABASE_URL: z.string().min(1).optional(),
  /** Set by the hosted edge runtime. */
  SUPABASE_DB_URL: z.string().min(1).optional(),
  SUPABASE_JWT_SECRET: z.string().min(32).optional(),
  SUPABASE_JWKS_URL: z.url().optional(),
  SUPABASE_SERVICE_ROLE_KEY: z.string().min(20).optional(),
  SIGYL_ENV: z.enum(["local", "production"]).optional(),
  SB_REGION: z.string().optional(),
  SIGYL_CORS_ORIGINS: csv.default(["*"]),
  SIGYL_DB_POOL_SIZE: z.coerce.number().int().min(1).max(100).default(10),
  SIGYL_DB_PREPARE: boolish.default(true),
  SIGYL_DATA_DIR: z.string().default(".sigyl/pglite"),
  SIGYL_TRUSTED_PROXY_HOPS: z.coerce.number().int().min(0).max(10).default(1),
  SIGYL_JOB_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(3600).default(60),
  HOST: z.string().default("127.0.0.1"),
  PORT: z.coerce.number().int().min(0).max(65535).default(54321),
});

export interface Config {
  production: boolean;
  databaseUrl: string | null;
  auth: { jwtSecret?: string; jwksUrl?: string; serviceKey?: string };
  corsOrigins: string[];
  trustedProxyHops: number;
  db: { max: number; prepare: boolean };
  dataDir: string;
  jobIntervalSeconds: number;
  host: string;
  port: number;
}

export class ConfigError extends Error {}

/**
 * `defaultEnv` is what an unset SIGYL_ENV means: the local scripts default to local, the
 * edge function to production, so a deployment that forgets its JWT secret fails closed
 * instead of trusting the public local one.
 */
export function loadConfig(env: Record<string, string | undefined>, options: { defaultEnv?: "local" | "production" } = {}): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new ConfigError(`invalid configuration: ${fields}`);
  }
  const e = parsed.data;
  // Hosted edge functions run with SB_REGION set; there the public local JWT secret is refused.
  const production = e.SIGYL_ENV ? e.SIGYL_ENV === "production" : Boolean(e.SB_REGION) || options.defaultEnv === "production";
  const jwksUrl = e.SUPABASE_JWKS_URL;
  let jwtSecret = e.SUPABASE_JWT_SECRET;
  if (!jwtSecret && !jwksUrl) {
    if (production) throw new ConfigError("SUPABASE_JWT_SECRET or SUPABASE_JWKS_URL is required in production");
    jwtSecret = LOCAL_JWT_SECRET;
  }
  if (production && jwtSecret === LOCAL_JWT_SECRET) {
    throw new ConfigError("the local development JWT secret cannot be used in production");
  }
  return {
    production,
    databaseUrl: e.DATABASE_URL ?? e.SUPABASE_DB_URL ?? null,
    auth: { jwtSecret, jwksUrl, serviceKey: e.SUPABASE_SERVICE_ROLE_KEY },
    corsOrigins: e.SIGYL_CORS_ORIGINS,
    trustedProxyHops: e.SIGYL_TRUSTED_PROXY_HOPS,
    db: { max: e.SIGYL_DB_POOL_SIZE, prepare: e.SIGYL_DB_PREPARE },
    dataDir: e.SIGYL_DATA_DIR,
    jobIntervalSeconds: e.SIGYL_JOB_INTERVAL_SECONDS,
    host: e.HOST,
    port: e.PORT,
  };
}
