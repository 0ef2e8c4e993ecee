/**
 * The deployment token module alone: the form of a minted token, that only its SHA-256 is
 * looked up, and that nothing reaches the database for a malformed token or on a route that
 * does not take deployment tokens.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createAuthenticator } from "../../shared/auth/authenticate.ts";
import { systemClock } from "../../shared/clock.ts";
import type { Queryable } from "../../shared/db/database.ts";
import {
  deploymentTokenResolver, hashDeploymentToken, mintDeploymentToken,
} from "../../shared/deployments/deployment-token.ts";
import { JWT_SECRET } from "../helpers/harness.ts";

/** A database that answers the token lookup from a map of hash → deployment and counts queries. */
function fakeDb(live: Map<string, string>) {
  const seen: unknown[][] = [];
  const db: Queryable = {
    query: async <T>(_text: string, params: readonly unknown[] = []) => {
      seen.push([...params]);
      return [{ id: live.get(params[0] as string) ?? null }] as T[];
    },
    exec: async () => {},
  };
  return { db, seen };
}

const bearer = (token: string) => new Headers({ authorization: `Bearer ${token}` });

describe("deployment tokens", () => {
  it("are sgd_ and 256 random bits, never twice the same, hashed as SHA-256 in base64", async () => {
    const tokens = new Set(Array.from({ length: 1000 }, mintDeploymentToken));
    expect(tokens.size).toBe(1000);
    for (const t of [...tokens].slice(0, 20)) {
      expect(t).toMatch(/^sgd_[A-Za-z0-9_-]{43}$/);
      expect(await hashDeploymentToken(t)).toBe(createHash("sha256").update(t).digest("base64"));
    }
  });

  it("resolve by hash only, and a malformed token never reaches the database", async () => {
    const t = mintDeploymentToken();
    const { db, seen } = fakeDb(new Map([[await hashDeploymentToken(t), "dep-1"]]));
    const resolve = deploymentTokenResolver(db);
    for (const bad of ["sgd_", "sgd_short", `${t}x`, `${t.slice(0, -1)}!`, t.replace("sgd_", "sgx_")]) {
      expect(await resolve(bad), bad).toBeNull();
    }
    expect(seen).toEqual([]);
    expect(await resolve(t)).toEqual({ deploymentId: "dep-1", tokenHash: await hashDeploymentToken(t) });
    expect(await resolve(mintDeploymentToken())).toBeNull();
    expect(seen).toHaveLength(2);
    expect(JSON.stringify(seen)).not.toContain(t);
  });

  it("are refused without a lookup where the route does not take them, accepted where it does", async () => {
    const t = mintDeploymentToken();
    const { db, seen } = fakeDb(new Map([[await hashDeploymentToken(t), "dep-1"]]));
    const auth = createAuthenticator({ jwtSecret: JWT_SECRET, resolveDeploymentToken: deploymentTokenResolver(db) }, systemClock);
    await expect(auth(bearer(t))).rejects.toMatchObject({ status: 401, code: "unauthenticated" });
    expect(seen).toEqual([]);
    await expect(auth(bearer(t), { deploymentTokens: true })).resolves.toMatchObject({ kind: "deployment", deploymentId: "dep-1" });
    await expect(auth(bearer(mintDeploymentToken()), { deploymentTokens: true })).rejects.toMatchObject({ status: 401 });
  });
});
