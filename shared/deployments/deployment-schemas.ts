/** Request shapes of the deployment routes (zod, the single source). */
import { z } from "zod";
import { decimalInt, int4, uuid } from "../http/validation.ts";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_BINDINGS = 500;

export const deploymentParam = z.strictObject({ id: uuid });
export const tokenParams = z.strictObject({ id: uuid, tokenId: uuid });

export const bindingsBody = z.strictObject({
  bindings: z.array(z.strictObject({
    envName: z.string().max(255).regex(ENV_NAME, "an env var name: a letter or _, then letters, digits or _"),
    secretId: uuid,
    /**
     * Pin a version; omitted, the deployment gets the version current when it deploys. Only a
     * deployment owner who may read the secret may pin (403 `pin_requires_read` below read).
     */
    version: int4.optional(),
  })).max(MAX_BINDINGS),
}).refine(
  (b) => new Set(b.bindings.map((x) => x.envName)).size === b.bindings.length,
  { message: "each env var name may be bound once", path: ["bindings"] },
);
export type BindingsInput = z.infer<typeof bindingsBody>;

export const tokenBody = z.strictObject({
  /** Lifetime in seconds: 1 minute to 24 hours, default 15 minutes. */
  ttlSeconds: z.number().int().min(60).max(86_400).default(900),
}).default({ ttlSeconds: 900 });

export const DEPLOYMENT_STATUSES = ["pending", "deploying", "running", "failed", "stopped"] as const;

export const deploymentListQuery = z.strictObject({
  status: z.enum(DEPLOYMENT_STATUSES).optional(),
  /** Service role: one owner's deployments (a user only ever sees its own). */
  ownerId: uuid.optional(),
  /** The `nextCursor` of the previous page. */
  cursor: z.string().max(512).optional(),
  limit: decimalInt(1, 100).default(50),
});
export type DeploymentListQuery = z.infer<typeof deploymentListQuery>;

export const envQuery = z.strictObject({ format: z.enum(["json", "dotenv"]).default("json") });
export type EnvFormat = z.infer<typeof envQuery>["format"];

// Responses: strict objects, so nothing but these fields can reach JSON (see secret-schemas.ts).

const idOut = z.guid();
const timestamp = z.iso.datetime();

export const bindingDto = z.strictObject({
  envName: z.string(),
  secretId: idOut,
  /** Null when the secret is no longer visible to the caller. */
  secretName: z.string().nullable(),
  pinnedVersion: z.number().int().nullable(),
  /** The version the deployment gets, fixed when it deploys; null before. */
  resolvedVersion: z.number().int().nullable(),
  /** The secret's current version; null when the caller cannot see the secret. */
  currentVersion: z.number().int().nullable(),
  /** A newer version exists than the one the deployment gets (deployed with or pinned): redeploy, or move the pin, to take it. */
  outdated: z.boolean(),
  /** "ok", or the first problem of this binding (see problems). */
  status: z.string(),
}).meta({ id: "Binding" });
export type BindingDto = z.infer<typeof bindingDto>;

export const problemDto = z.strictObject({
  envName: z.string(),
  problem: z.string(),
  message: z.string(),
}).meta({ id: "Problem" });
export type ProblemDto = z.infer<typeof problemDto>;

/** What would stop a deployment (`POST /deployments/:id/validate`). */
export const validationDto = z.strictObject({ valid: z.boolean(), problems: z.array(problemDto) });

/** A deployment, its bindings each with a status, and its problems (GET and PUT of the bindings). */
export const deploymentBindingsDto = z.strictObject({
  deployment: z.strictObject({
    id: idOut, name: z.string(), status: z.string(), ownerId: idOut, requiredEnv: z.array(z.string()),
  }),
  valid: z.boolean(),
  bindings: z.array(bindingDto),
  problems: z.array(problemDto),
});

/** A deployment as listed: what it needs, and how much of it is bound. */
export const deploymentSummaryDto = z.strictObject({
  id: idOut,
  name: z.string(),
  status: z.string(),
  ownerId: idOut,
  /** Env var names the MCP server declares it needs. */
  requiredEnv: z.array(z.string()),
  /** How many env vars are bound (required or not). */
  bindingCount: z.number().int().min(0),
  /** Required env var names no binding covers: the deployment cannot deploy until they are bound. */
  unboundEnv: z.array(z.string()),
}).meta({ id: "DeploymentSummary" });

/** A page of `GET /deployments`, by name. */
export const deploymentPage = z.strictObject({
  items: z.array(deploymentSummaryDto),
  /** Pass back as `cursor` for the next page; null on the last. */
  nextCursor: z.string().nullable(),
});

/** A new token: the only answer that ever holds it. */
export const createdTokenDto = z.strictObject({
  id: idOut, token: z.string().startsWith("sgd_"), expiresAt: timestamp, deploymentId: idOut,
});

/** A token as listed: never its value. */
export const tokenDto = z.strictObject({
  id: idOut, createdBy: idOut.nullable(), createdAt: timestamp, expiresAt: timestamp, revokedAt: timestamp.nullable(),
  active: z.boolean(),
});

/** The answer to a revocation. */
export const revokedToken = z.strictObject({ revoked: z.literal(true), id: idOut });

/** The resolved env as JSON: env var name → value. */
export const envValues = z.record(z.string(), z.string());
