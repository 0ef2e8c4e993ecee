/**
 * Deployments: bindings of env vars to secrets, validation, deployment tokens and env
 * resolution for the container builder. The database authorises (the deployment owner or
 * the service role) and validates; this service shapes, encrypts nothing, and decrypts the
 * resolved env in the transaction that audits it.
 */
import type { Clock } from "../clock.ts";
import { createValueOpener } from "../crypto/value-opener.ts";
import type { Keyring } from "../crypto/keyring.ts";
import { asCaller, type CallerContext, type Database } from "../db/database.ts";
import { AppError, appError } from "../errors.ts";
import * as dal from "./deployment-dal.ts";
import type { BindingDto, BindingsInput, ProblemDto } from "./deployment-schemas.ts";

export interface DeploymentServiceDeps {
  db: Database;
  keyring: Keyring;
  clock: Clock;
  log?: (event: string, fields: Record<string, unknown>) => void;
}

export const DEPLOYMENT_TOKEN_PREFIX = "sgd_";

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const b64url = (bytes: Uint8Array) => b64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

/** SHA-256 of a deployment token, base64: the only form the database ever holds. */
export async function hashDeploymentToken(token: string): Promise<string> {
  return b64(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token))));
}

const toProblem = (p: dal.ProblemRow): ProblemDto => ({ envName: p.env_name, problem: p.problem, message: p.message });

const OUTCOME_STATUS: Record<string, 403 | 404 | 409> = {
  deployment_invalid: 409,
  deployment_not_ready: 409,
  forbidden: 403,
  deployment_not_found: 404,
};

/** "<code>: <detail>" from the database, e.g. every problem of an invalid deployment. */
function outcomeError(outcome: string): AppError {
  const at = outcome.indexOf(": ");
  const code = at < 0 ? outcome : outcome.slice(0, at);
  return appError(OUTCOME_STATUS[code] ?? 404, code, at < 0 ? undefined : outcome.slice(at + 2));
}

export function createDeploymentService(deps: DeploymentServiceDeps) {
  const { db, keyring, clock } = deps;
  const { open, withCurrentKeyring } = createValueOpener(keyring, deps.log ?? (() => {}));

  async function describe(ctx: CallerContext, id: string) {
    return await asCaller(db, ctx, async (tx) => {
      const d = await dal.deploymentFor(tx, id);
      const [bindings, problems] = await Promise.all([dal.listBindings(tx, id), dal.problems(tx, id)]);
      const firstProblem = new Map<string, string>();
      for (const p of problems) if (!firstProblem.has(p.env_name)) firstProblem.set(p.env_name, p.problem);
      return {
        deployment: { id: d.id, name: d.name, status: d.status, ownerId: d.user_id, requiredEnv: d.required_env },
        valid: problems.length === 0,
        bindings: bindings.map((b): BindingDto => ({
          envName: b.env_name, secretId: b.secret_id, secretName: b.secret_name, pinnedVersion: b.pinned_version,
          resolvedVersion: b.resolved_version, status: firstProblem.get(b.env_name) ?? "ok",
        })),
        problems: problems.map(toProblem),
      };
    });
  }

    /**
     * The env rendered by `render` inside the transaction, so a rendering failure (a value
     * dotenv cannot hold) rolls back the 'accessed' rows of values that were never delivered.
     */
  /**
   * The env, rendered by `render` inside the transaction that audits it: one statement
   * fetches and audits every binding whatever their number, values are decrypted before the
   * commit, and a failure to decrypt or to render (a value dotenv cannot hold) rolls back the
   * 'accessed' rows of values that were never delivered.
   */
  async function resolveEnvAs<T>(
    ctx: CallerContext, id: string, tokenHash: string | null,
    render: (entries: { name: string; value: string }[]) => T,
  ): Promise<T> {
    const result = await withCurrentKeyring(() => asCaller(db, ctx, async (tx) => {
      const rows = await dal.resolveEnv(tx, id, tokenHash);
      if (rows.length && rows[0].outcome !== "ok") return { error: outcomeError(rows[0].outcome) };
      const entries = await Promise.all(rows.map(async (r) => ({
        name: r.env_name,
        value: await open(r.secret_id, r.version, r.sealed, { deploymentId: id }),
      })));
      return { rendered: render(entries) };
    }));
    if ("error" in result) throw result.error;
    return result.rendered;
  }

  return {
    /** Replaces every binding of the deployment; then reports them as GET does. */
    async replaceBindings(ctx: CallerContext, id: string, input: BindingsInput) {
      await asCaller(db, ctx, (tx) => dal.replaceBindings(tx, id, input.bindings));
      return await describe(ctx, id);
    },

    listBindings: describe,

    /** What would stop this deployment, changing nothing. */
    async validate(ctx: CallerContext, id: string) {
      const { valid, problems } = await describe(ctx, id);
      return { valid, problems };
    },

    /** A fresh opaque token (256 random bits) for this deployment; only its hash is stored. */
    async createToken(ctx: CallerContext, id: string, ttlSeconds: number) {
      const token = DEPLOYMENT_TOKEN_PREFIX + b64url(crypto.getRandomValues(new Uint8Array(32)));
      const expiresAt = new Date(clock.now().getTime() + ttlSeconds * 1000).toISOString();
      const row = await asCaller(db, ctx, async (tx) => dal.createToken(tx, id, await hashDeploymentToken(token), expiresAt));
      return { id: row.id, token, expiresAt: new Date(row.expires_at).toISOString(), deploymentId: id };
    },

    async listTokens(ctx: CallerContext, id: string) {
      const rows = await asCaller(db, ctx, (tx) => dal.listTokens(tx, id));
      const now = clock.now();
      return rows.map((t) => ({
        id: t.id, createdBy: t.created_by, createdAt: new Date(t.created_at).toISOString(),
        expiresAt: new Date(t.expires_at).toISOString(), revokedAt: t.revoked_at ? new Date(t.revoked_at).toISOString() : null,
        active: !t.revoked_at && new Date(t.expires_at) > now,
      }));
    },

    async revokeToken(ctx: CallerContext, id: string, tokenId: string) {
      await asCaller(db, ctx, (tx) => dal.revokeToken(tx, id, tokenId));
    },

    /**
     * The resolved env: one statement fetches and audits every binding, whatever their
     * number; values are decrypted before the transaction commits, so a failure leaves no
     * 'accessed' row behind.
     */
    async resolveEnv(ctx: CallerContext, id: string, tokenHash: string | null): Promise<{ name: string; value: string }[]> {
      return await resolveEnvAs(ctx, id, tokenHash, (entries) => entries);
    },

    resolveEnvAs,

  };
}

export type DeploymentService = ReturnType<typeof createDeploymentService>;
