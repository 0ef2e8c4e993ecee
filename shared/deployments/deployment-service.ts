/**
 * Deployments: bindings of env vars to secrets, validation, deployment tokens and env
 * resolution for the container builder. The database authorises (the deployment owner or
 * the service role) and validates; this service shapes, encrypts nothing, and decrypts the
 * resolved env in the transaction that audits it.
 */
import { type Clock, iso, isoOrNull } from "../clock.ts";
import type { DekCache } from "../crypto/dek-cache.ts";
import { createValueOpener } from "../crypto/value-opener.ts";
import type { Keyring } from "../crypto/keyring.ts";
import { asCaller, type CallerContext, type Database } from "../db/database.ts";
import { appError, fromCodedMessage } from "../errors.ts";
import { UUID_PATTERN } from "../http/validation.ts";
import * as dal from "./deployment-dal.ts";
import { formatDotenv, NotRepresentableError } from "./dotenv.ts";
import type { BindingDto, BindingsInput, DeploymentListQuery, EnvFormat, ProblemDto } from "./deployment-schemas.ts";
import { hashDeploymentToken, mintDeploymentToken } from "./deployment-token.ts";

export interface DeploymentServiceDeps {
  db: Database;
  keyring: Keyring;
  clock: Clock;
  log?: (event: string, fields: Record<string, unknown>) => void;
  /** Unwrapped DEKs, shared with the other services of the app (shared/crypto/dek-cache.ts). */
  deks?: DekCache;
}

/** The resolved env, in the form asked for. */
export type ResolvedEnv =
  | { format: "json"; values: Record<string, string> }
  | { format: "dotenv"; text: string };

/** The env and its fingerprint (the answer's ETag), or only the fingerprint when the caller holds it. */
export type EnvAnswer = (ResolvedEnv & { fingerprint: string }) | { notModified: true; fingerprint: string };

/**
 * Behind: a new version of the secret exists that the deployment does not get (the version it
 * was deployed with, or pinned to, is older). A binding that follows the current version and
 * was never deployed is not behind; neither is one whose secret the caller cannot see.
 */
export function isOutdated(b: Pick<dal.BindingRow, "pinned_version" | "resolved_version" | "current_version">): boolean {
  const served = b.resolved_version ?? b.pinned_version;
  return served !== null && b.current_version !== null && served < b.current_version;
}

const toProblem = (p: dal.ProblemRow): ProblemDto => ({ envName: p.env_name, problem: p.problem, message: p.message });

function render(format: EnvFormat, entries: { name: string; value: string }[]): ResolvedEnv {
  if (format === "json") return { format, values: Object.fromEntries(entries.map((e) => [e.name, e.value])) };
  try {
    return { format, text: formatDotenv(entries) };
  } catch (err) {
    if (!(err instanceof NotRepresentableError)) throw err;
    throw appError("not_representable_as_dotenv",
      `dotenv cannot hold the value of ${err.names.join(", ")} verbatim; use format=json.`);
  }
}

/** A page's cursor is the id of its last deployment; anything else is `invalid_cursor`. */
function cursorId(cursor: string): string {
  if (!UUID_PATTERN.test(cursor)) throw appError("invalid_cursor");
  return cursor.toLowerCase();
}

export function createDeploymentService(deps: DeploymentServiceDeps) {
  const { db, keyring, clock } = deps;
  const { open, withCurrentKeyring } = createValueOpener(keyring, deps.log ?? (() => {}), deps.deks);

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
          resolvedVersion: b.resolved_version, currentVersion: b.current_version, outdated: isOutdated(b),
          status: firstProblem.get(b.env_name) ?? "ok",
        })),
        problems: problems.map(toProblem),
      };
    });
  }

  /**
   * The env, rendered inside the transaction that audits it: one statement fetches and audits
   * every binding whatever their number, values are decrypted before the commit, and a failure
   * to decrypt or to render (a value dotenv cannot hold) rolls back the 'accessed' rows of
   * values that were never delivered. `tokenHash` is the deployment token's (the database
   * checks it opens this deployment), or null for the service role. `ifNoneMatch`: the
   * fingerprints the caller holds (`If-None-Match`); one of them current, nothing is read.
   */
  async function resolveEnv(
    ctx: CallerContext, id: string,
    options: { tokenHash: string | null; format: EnvFormat; ifNoneMatch?: string[] | null },
  ): Promise<EnvAnswer> {
    const result = await withCurrentKeyring(() => asCaller(db, ctx, async (tx) => {
      const resolved = await dal.resolveEnv(tx, id, options.tokenHash, options.ifNoneMatch ?? null);
      // Returned, not thrown: nothing was written, and the refusal is not a driver error.
      if ("refused" in resolved) return { refused: resolved.refused, env: null };
      if ("notModified" in resolved) return { refused: null, env: resolved };
      const entries = await Promise.all(resolved.entries.map(async (e) => ({
        name: e.envName,
        value: await open(e.secretId, e.version, e.sealed, { deploymentId: id }),
      })));
      return { refused: null, env: { ...render(options.format, entries), fingerprint: resolved.fingerprint } };
    }));
    if (result.env) return result.env;
    throw fromCodedMessage(result.refused!) ?? new Error(`unexpected env outcome: ${result.refused}`);
  }

  return {
    /** The caller's deployments by name, a page at a time (the service role: every owner's, or `ownerId`'s). */
    async list(ctx: CallerContext, q: DeploymentListQuery) {
      const rows = await asCaller(db, ctx, (tx) =>
        dal.listDeployments(tx, {
          owner: q.ownerId, status: q.status, limit: q.limit + 1,
          after: q.cursor === undefined ? undefined : cursorId(q.cursor),
        }));
      const page = rows.slice(0, q.limit);
      const last = page[page.length - 1];
      return {
        items: page.map((d) => ({
          id: d.id, name: d.name, status: d.status, ownerId: d.user_id, requiredEnv: d.required_env,
          bindingCount: d.binding_count, unboundEnv: d.unbound_env,
        })),
        // The last deployment's id: names have no length limit of ours, ids do.
        nextCursor: rows.length > q.limit ? last.id : null,
      };
    },

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
      const token = mintDeploymentToken();
      const expiresAt = iso(new Date(clock.now().getTime() + ttlSeconds * 1000));
      const row = await asCaller(db, ctx, async (tx) => dal.createToken(tx, id, await hashDeploymentToken(token), expiresAt));
      return { id: row.id, token, expiresAt: iso(row.expires_at), deploymentId: id };
    },

    async listTokens(ctx: CallerContext, id: string) {
      const rows = await asCaller(db, ctx, (tx) => dal.listTokens(tx, id));
      const now = clock.now();
      return rows.map((t) => ({
        id: t.id, createdBy: t.created_by, createdAt: iso(t.created_at), expiresAt: iso(t.expires_at),
        revokedAt: isoOrNull(t.revoked_at),
        active: !t.revoked_at && new Date(t.expires_at) > now,
      }));
    },

    async revokeToken(ctx: CallerContext, id: string, tokenId: string) {
      await asCaller(db, ctx, (tx) => dal.revokeToken(tx, id, tokenId));
    },

    resolveEnv,
  };
}

export type DeploymentService = ReturnType<typeof createDeploymentService>;
