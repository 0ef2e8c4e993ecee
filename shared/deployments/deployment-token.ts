/**
 * Deployment tokens, in one place: their form, minting, hashing and lookup. A token is
 * `sgd_` and 256 random bits (base64url); the database keeps only its SHA-256 and says which
 * live (unexpired, unrevoked) token belongs to which deployment. A token opens one route, the
 * env of its deployment: that route opts in to deployment callers, every other answers 401,
 * and the database checks that the token belongs to the deployment asked for.
 */
import { sha256Base64, toBase64Url } from "../bytes.ts";
import type { Queryable } from "../db/database.ts";
import { deploymentOfToken } from "./deployment-dal.ts";

const DEPLOYMENT_TOKEN_PREFIX = "sgd_";

const FORM = /^sgd_[A-Za-z0-9_-]{43}$/;

/** Whether a bearer is meant as a deployment token (it may still be malformed or dead). */
export const isDeploymentTokenForm = (bearer: string) => bearer.startsWith(DEPLOYMENT_TOKEN_PREFIX);

/** A fresh token; shown once to whoever asked for it, never stored. */
export function mintDeploymentToken(): string {
  return DEPLOYMENT_TOKEN_PREFIX + toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
}

/** SHA-256 of a token, base64: the only form the database ever holds. */
export const hashDeploymentToken = (token: string): Promise<string> => sha256Base64(token);

export interface ResolvedDeploymentToken {
  deploymentId: string;
  tokenHash: string;
}

export type DeploymentTokenResolver = (token: string) => Promise<ResolvedDeploymentToken | null>;

/** The deployment a live token opens, or null for a malformed, unknown, expired or revoked one. */
export function deploymentTokenResolver(db: Queryable): DeploymentTokenResolver {
  return async (token) => {
    if (!FORM.test(token)) return null;
    const tokenHash = await hashDeploymentToken(token);
    const deploymentId = await deploymentOfToken(db, tokenHash);
    return deploymentId ? { deploymentId, tokenHash } : null;
  };
}
