/** Request shapes of the deployment routes (zod, the single source). */
import { z } from "zod";
import { int4, uuid } from "../http/validation.ts";

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

export const envQuery = z.strictObject({ format: z.enum(["json", "dotenv"]).default("json") });
export type EnvFormat = z.infer<typeof envQuery>["format"];

export interface BindingDto {
  envName: string;
  secretId: string;
  secretName: string | null;
  pinnedVersion: number | null;
  resolvedVersion: number | null;
  /** "ok", or the first problem of this binding (see problems). */
  status: string;
}

export interface ProblemDto {
  envName: string;
  problem: string;
  message: string;
}
