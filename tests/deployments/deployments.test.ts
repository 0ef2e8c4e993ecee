/**
 * Deployments end to end: bindings, the database's own validation on deploy, deployment
 * tokens and env resolution, and what the `use` level means.
 */
import dotenv from "dotenv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDeploymentService } from "../../shared/deployments/deployment-service.ts";
import type { Database, Queryable } from "../../shared/db/database.ts";
import { auditOf, createHarness, type Harness, type TestUser } from "../helpers/harness.ts";

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h?.close();
});

/** A deployment row as the platform writes it, straight into its table. */
async function deployment(owner: TestUser, requiredEnv: string[] = []): Promise<string> {
  const [row] = await h.db.query<{ id: string }>(
    `insert into public.deployments (user_id, name, required_env)
     values ($1::uuid, $2, array(select jsonb_array_elements_text($3::text::jsonb))) returning id`,
    [owner.id, `mcp-${crypto.randomUUID().slice(0, 8)}`, JSON.stringify(requiredEnv)],
  );
  return row.id;
}

const bind = (token: string, id: string, bindings: { envName: string; secretId: string; version?: number }[]) =>
  h.request("PUT", `/deployments/${id}/secrets`, { token, body: { bindings } });

async function token(owner: TestUser, id: string) {
  const res = await h.request("POST", `/deployments/${id}/tokens`, { token: owner.token });
  expect(res.status).toBe(201);
  h.remember(res.body.data.token);
  return res.body.data.token as string;
}

const setStatus = (id: string, status: string) =>
  h.db.query(`update public.deployments set status = $2 where id = $1::uuid`, [id, status]);
const statusOf = async (id: string) =>
  (await h.db.query<{ status: string }>(`select status from public.deployments where id = $1::uuid`, [id]))[0].status;
const accessedFor = async (secretId: string) => (await auditOf(h.db, secretId)).filter((a) => a.action === "accessed");

describe("bindings", () => {
  it("replaces the bindings, reports each one's status, and audits bound and unbound once each", async () => {
    const owner = await h.user();
    const a = await h.createSecret(owner);
    const b = await h.createSecret(owner);
    const id = await deployment(owner, ["API_KEY", "DB_URL"]);
    const first = await bind(owner.token, id, [{ envName: "API_KEY", secretId: a.id }, { envName: "DB_URL", secretId: b.id }]);
    expect(first.status).toBe(200);
    expect(first.body.data.valid).toBe(true);
    expect(first.body.data.bindings.map((x: any) => [x.envName, x.secretName, x.status])).toEqual([
      ["API_KEY", a.name, "ok"], ["DB_URL", b.name, "ok"],
    ]);
    const second = await bind(owner.token, id, [{ envName: "API_KEY", secretId: a.id }]);
    expect(second.body.data.valid).toBe(false);
    expect(second.body.data.problems).toEqual([{ envName: "DB_URL", problem: "unbound", message: "DB_URL: required but not bound" }]);
    const actions = async (s: string) => (await auditOf(h.db, s)).filter((r) => ["bound", "unbound"].includes(r.action)).map((r) => r.action);
    expect(await actions(a.id)).toEqual(["bound"]);
    expect(await actions(b.id)).toEqual(["bound", "unbound"]);
    const row = (await auditOf(h.db, b.id)).find((r) => r.action === "unbound")!;
    expect(row).toMatchObject({ actor_id: owner.id, details: { envName: "DB_URL" } });
  });

  it("only the deployment owner (or the service role) binds, and only secrets the owner can use", async () => {
    const owner = await h.user();
    const stranger = await h.user();
    const mine = await h.createSecret(owner);
    const theirs = await h.createSecret(stranger);
    const id = await deployment(owner);
    const byStranger = await bind(stranger.token, id, [{ envName: "X", secretId: theirs.id }]);
    expect(byStranger.status).toBe(404);
    expect(byStranger.body.error.code).toBe("deployment_not_found");
    const foreign = await bind(owner.token, id, [{ envName: "X", secretId: theirs.id }, { envName: "Y", secretId: mine.id }]);
    expect(foreign.status).toBe(404);
    expect(foreign.body.error).toMatchObject({ code: "secret_not_found" });
    expect(foreign.body.error.message).toContain("X");
    expect(await h.db.query(`select * from public.deployment_secrets where deployment_id = $1::uuid`, [id])).toEqual([]);
    expect((await bind(await h.serviceToken(), id, [{ envName: "Y", secretId: mine.id }])).status).toBe(200);
    for (const bad of [
      [{ envName: "1BAD", secretId: mine.id }],
      [{ envName: "OK", secretId: "not-a-uuid" }],
      [{ envName: "SAME", secretId: mine.id }, { envName: "SAME", secretId: mine.id }],
      [{ envName: "OK", secretId: mine.id, version: 0 }],
    ]) {
      expect((await bind(owner.token, id, bad as any)).status, JSON.stringify(bad)).toBe(400);
    }
    expect((await h.request("GET", `/deployments/${id}/secrets`, { token: null })).status).toBe(401);
  });
});

describe("rebinding", () => {
  it("names each secret in its own row: the old one unbound under its owner, the new one bound", async () => {
    const alice = await h.user();
    const carol = await h.user();
    const bob = await h.user();
    const a = await h.createSecret(alice);
    const c = await h.createSecret(carol);
    await h.grant(alice, a.id, bob, "use");
    await h.grant(carol, c.id, bob, "use");
    const id = await deployment(bob);
    await bind(bob.token, id, [{ envName: "K", secretId: a.id }]);
    await bind(bob.token, id, [{ envName: "K", secretId: c.id }]);
    const unbound = (await auditOf(h.db, a.id)).find((r) => r.action === "unbound");
    expect(unbound).toBeDefined();
    const [row] = await h.db.query<{ owner_id: string; secret_name: string }>(
      `select owner_id, secret_name from public.secret_access_logs where secret_id = $1::uuid and action = 'unbound'`, [a.id]);
    expect(row).toEqual({ owner_id: alice.id, secret_name: a.name });
    expect((await auditOf(h.db, c.id)).filter((r) => r.action === "bound")).toHaveLength(1);
  });

  it("is refused while the deployment is deploying, so the pinned versions hold", async () => {
    const owner = await h.user();
    const s = await h.createSecret(owner);
    const other = await h.createSecret(owner);
    const id = await deployment(owner, ["K"]);
    await bind(owner.token, id, [{ envName: "K", secretId: s.id }]);
    await setStatus(id, "deploying");
    const res = await bind(owner.token, id, [{ envName: "K", secretId: s.id }, { envName: "L", secretId: other.id }]);
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe("deployment_in_progress");
    const rows = await h.db.query(`select env_name, resolved_version from public.deployment_secrets where deployment_id = $1::uuid`, [id]);
    expect(rows).toEqual([{ env_name: "K", resolved_version: 1 }]);
  });
});

describe("the deploy trigger", () => {
  it("names every problem in one message and leaves the status unchanged — through plain SQL too", async () => {
    const owner = await h.user();
    const other = await h.user();
    const deleted = await h.createSecret(owner);
    const inactive = await h.createSecret(owner);
    const expiring = await h.createSecret(owner, { expiresAt: new Date(Date.now() + 1500).toISOString() });
    const shared = await h.createSecret(other);
    await h.grant(other, shared.id, owner, "use");
    const pinned = await h.createSecret(owner);
    const id = await deployment(owner, ["MISSING", "DELETED", "INACTIVE", "EXPIRED", "REVOKED", "PINNED"]);
    expect((await bind(owner.token, id, [
      { envName: "DELETED", secretId: deleted.id }, { envName: "INACTIVE", secretId: inactive.id },
      { envName: "EXPIRED", secretId: expiring.id }, { envName: "REVOKED", secretId: shared.id },
      { envName: "PINNED", secretId: pinned.id, version: 7 },
    ])).status).toBe(200);
    await h.request("DELETE", `/${deleted.id}`, { token: owner.token });
    await h.request("PATCH", `/${inactive.id}`, { token: owner.token, body: { isActive: false } });
    await h.request("DELETE", `/${shared.id}/permissions/${owner.id}`, { token: owner.token });
    await new Promise((r) => setTimeout(r, 1600));

    const err = await setStatus(id, "deploying").catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    for (const part of [
      "MISSING: required but not bound", "DELETED: the bound secret is deleted", "INACTIVE: the bound secret is inactive",
      "EXPIRED: the bound secret has expired", "REVOKED: the deployment owner no longer holds at least use",
      "PINNED: the pinned version does not exist",
    ]) expect(err.message).toContain(part);
    expect(await statusOf(id)).toBe("pending");

    const report = await h.request("POST", `/deployments/${id}/validate`, { token: owner.token });
    expect(report.status).toBe(200);
    expect(report.body.data.valid).toBe(false);
    expect(report.body.data.problems.map((p: any) => [p.envName, p.problem])).toEqual([
      ["DELETED", "secret_deleted"], ["EXPIRED", "secret_expired"], ["INACTIVE", "secret_inactive"],
      ["MISSING", "unbound"], ["PINNED", "version_missing"], ["REVOKED", "permission_missing"],
    ]);
    expect(await statusOf(id)).toBe("pending");
  });

  it("a valid deployment deploys and pins the versions it will get", async () => {
    const owner = await h.user();
    const s = await h.createSecret(owner);
    const id = await deployment(owner, ["KEY"]);
    await bind(owner.token, id, [{ envName: "KEY", secretId: s.id }]);
    await setStatus(id, "deploying");
    expect(await statusOf(id)).toBe("deploying");
    const [b] = await h.db.query<{ resolved_version: number }>(`select resolved_version from public.deployment_secrets where deployment_id = $1::uuid`, [id]);
    expect(b.resolved_version).toBe(1);
    h.remember("after-deploy-value");
    await h.request("PUT", `/${s.id}/value`, { token: owner.token, body: { value: "after-deploy-value" } });
    const env = await h.request("GET", `/deployments/${id}/env`, { token: await token(owner, id) });
    expect(env.body.data).toEqual({ KEY: s.value });
    await setStatus(id, "running");
    expect(await statusOf(id)).toBe("running");
  });
});

describe("deployment tokens", () => {
  it("open exactly the env of their deployment: wrong deployment, expired, revoked, forged or another route fail with no accessed row", async () => {
    const owner = await h.user();
    const s = await h.createSecret(owner);
    const id = await deployment(owner, ["KEY"]);
    const otherId = await deployment(owner);
    await bind(owner.token, id, [{ envName: "KEY", secretId: s.id }]);
    const t = await token(owner, id);
    expect(t).toMatch(/^sgd_[A-Za-z0-9_-]{43}$/);
    const notReady = await h.request("GET", `/deployments/${id}/env`, { token: t });
    expect(notReady.status).toBe(409);
    expect(notReady.body.error.code).toBe("deployment_not_ready");
    await setStatus(id, "deploying");
    const [{ n }] = await h.db.query<{ n: number }>(`select count(*)::int as n from private.deployment_tokens where deployment_id = $1::uuid`, [id]);
    expect(n).toBe(1);

    const wrong = await h.request("GET", `/deployments/${otherId}/env`, { token: t });
    expect(wrong.status).toBe(404);
    for (const path of [`/${s.id}/value`, "", `/deployments/${id}/secrets`, `/deployments/${id}/tokens`, "/audit"]) {
      expect((await h.request("GET", path, { token: t })).status, path).toBe(401);
    }
    expect((await h.request("POST", `/deployments/${id}/tokens`, { token: t })).status).toBe(401);
    const forged = "sgd_" + Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
    expect((await h.request("GET", `/deployments/${id}/env`, { token: forged })).status).toBe(401);
    expect(await accessedFor(s.id)).toEqual([]);

    const ok = await h.request("GET", `/deployments/${id}/env`, { token: t });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("cache-control")).toBe("no-store");
    expect(ok.body.data).toEqual({ KEY: s.value });
    const accessed = await accessedFor(s.id);
    expect(accessed).toHaveLength(1);
    expect(accessed[0]).toMatchObject({ actor_type: "deployment", actor_id: null, details: { envName: "KEY", tokenIssuedBy: owner.id } });
    const [dep] = await h.db.query<{ deployment_id: string }>(`select deployment_id from public.secret_access_logs where secret_id = $1::uuid and action = 'accessed'`, [s.id]);
    expect(dep.deployment_id).toBe(id);

    const list = await h.request("GET", `/deployments/${id}/tokens`, { token: owner.token });
    const tokenId = list.body.data[0].id;
    expect(accessed[0].details.tokenId).toBe(tokenId);
    expect(JSON.stringify(list.body)).not.toContain(t);
    expect((await h.request("DELETE", `/deployments/${id}/tokens/${tokenId}`, { token: owner.token })).status).toBe(200);
    expect((await h.request("GET", `/deployments/${id}/env`, { token: t })).status).toBe(401);

    const t2 = await token(owner, id);
    await h.db.query(`update private.deployment_tokens set expires_at = now() - interval '1 second' where deployment_id = $1::uuid and revoked_at is null`, [id]);
    expect((await h.request("GET", `/deployments/${id}/env`, { token: t2 })).status).toBe(401);
    expect(await accessedFor(s.id)).toHaveLength(1);

    const issued = await h.db.query<{ action: string; actor_id: string; owner_id: string }>(
      `select action::text, actor_id, owner_id from public.secret_access_logs
        where deployment_id = $1::uuid and action in ('token_issued', 'token_revoked') order by id`, [id]);
    expect(issued.map((r) => r.action)).toEqual(["token_issued", "token_revoked", "token_issued"]);
    expect(issued.every((r) => r.actor_id === owner.id && r.owner_id === owner.id)).toBe(true);
  });

  it("serve no env once the deployment is stopped", async () => {
    const owner = await h.user();
    const s = await h.createSecret(owner);
    const id = await deployment(owner, ["KEY"]);
    await bind(owner.token, id, [{ envName: "KEY", secretId: s.id }]);
    await setStatus(id, "deploying");
    const t = await token(owner, id);
    expect((await h.request("GET", `/deployments/${id}/env`, { token: t })).status).toBe(200);
    await setStatus(id, "stopped");
    const stopped = await h.request("GET", `/deployments/${id}/env`, { token: t });
    expect(stopped.status).toBe(409);
    expect(stopped.body.error.code).toBe("deployment_not_ready");
    expect(await accessedFor(s.id)).toHaveLength(1);
  });

  it("are issued only to the deployment owner or the service role, for 1 minute to 24 hours", async () => {
    const owner = await h.user();
    const stranger = await h.user();
    const id = await deployment(owner);
    expect((await h.request("POST", `/deployments/${id}/tokens`, { token: stranger.token })).status).toBe(404);
    const svc = await h.request("POST", `/deployments/${id}/tokens`, { token: await h.serviceToken(), body: { ttlSeconds: 60 } });
    expect(svc.status).toBe(201);
    h.remember(svc.body.data.token);
    expect(new Date(svc.body.data.expiresAt).getTime() - Date.now()).toBeLessThanOrEqual(61_000);
    expect((await h.request("POST", `/deployments/${id}/tokens`, { token: owner.token, body: { ttlSeconds: 10 } })).status).toBe(400);
    expect((await h.request("POST", `/deployments/${id}/tokens`, { token: owner.token, body: { ttlSeconds: 86_401 } })).status).toBe(400);
  });
});

describe("use: bind without seeing", () => {
  it("a teammate with use binds the secret, the deployment gets the value, the teammate never does", async () => {
    const owner = await h.user();
    const teammate = await h.user();
    const s = await h.createSecret(owner);
    const own = await h.createSecret(teammate);
    await h.grant(owner, s.id, teammate, "use");
    const id = await deployment(teammate, ["SHARED_KEY", "OWN_KEY"]);
    expect((await bind(teammate.token, id, [{ envName: "SHARED_KEY", secretId: s.id }, { envName: "OWN_KEY", secretId: own.id }])).status).toBe(200);
    await setStatus(id, "deploying");

    // The teammate's own token would hand the value to the teammate: refused, nothing audited as read.
    const mine = await h.request("GET", `/deployments/${id}/env`, { token: await token(teammate, id) });
    expect(mine.status).toBe(403);
    expect(mine.body.error.message).toContain("SHARED_KEY");
    expect(mine.body.error.message).not.toContain("OWN_KEY");
    expect(JSON.stringify(mine.body)).not.toContain(s.value);
    expect(await accessedFor(s.id)).toEqual([]);

    // The platform's token (service role) delivers it to the container.
    const platform = await h.request("POST", `/deployments/${id}/tokens`, { token: await h.serviceToken() });
    h.remember(platform.body.data.token);
    const env = await h.request("GET", `/deployments/${id}/env?format=dotenv`, { token: platform.body.data.token });
    expect(env.status).toBe(200);
    expect(env.headers.get("content-type")).toContain("text/plain");
    expect(dotenv.parse(env.body)).toEqual({ SHARED_KEY: s.value, OWN_KEY: own.value });
    const direct = await h.request("GET", `/${s.id}/value`, { token: teammate.token });
    expect(direct.status).toBe(403);
    expect((await h.request("GET", `/deployments/${id}/env`, { token: teammate.token })).status).toBe(403);
    expect(JSON.stringify(direct.body)).not.toContain(s.value);
  });

  it("below read a binding cannot pin a version: it follows the current one, so use never deploys a value the owner replaced", async () => {
    const owner = await h.user();
    const teammate = await h.user();
    const reader = await h.user();
    const s = await h.createSecret(owner);
    // The owner rotates the value away from version 1 (a leaked key, say).
    const replacement = `replacement-${crypto.randomUUID()}`;
    h.remember(replacement);
    expect((await h.request("PUT", `/${s.id}/value`, { token: owner.token, body: { value: replacement } })).status).toBe(200);
    await h.grant(owner, s.id, teammate, "use");
    const id = await deployment(teammate, ["KEY"]);
    const bindings = () => h.db.query(`select * from public.deployment_secrets where deployment_id = $1::uuid`, [id]);
    const bound = async () => (await auditOf(h.db, s.id)).filter((r) => r.action === "bound");

    // Pinning any version is refused, for the teammate and for the service role on its behalf: nothing bound or audited.
    const service = await h.serviceToken();
    for (const [token, version] of [[teammate.token, 1], [teammate.token, 2], [service, 1]] as const) {
      const res = await bind(token, id, [{ envName: "KEY", secretId: s.id, version }]);
      expect(res.status, `version ${version}`).toBe(403);
      expect(res.body.error).toEqual({
        code: "pin_requires_read",
        message: "the deployment owner holds only use on the secret bound to KEY; bind it without a version, to follow the current one",
      });
    }
    expect(await bindings()).toEqual([]);
    expect(await bound()).toEqual([]);

    // Unpinned, it deploys with the current version and the container gets the replacement.
    expect((await bind(teammate.token, id, [{ envName: "KEY", secretId: s.id }])).status).toBe(200);
    await setStatus(id, "deploying");
    expect((await bindings()).map((b: any) => [b.pinned_version, b.resolved_version])).toEqual([[null, 2]]);
    const platform = await h.request("POST", `/deployments/${id}/tokens`, { token: service });
    h.remember(platform.body.data.token);
    const env = await h.request("GET", `/deployments/${id}/env`, { token: platform.body.data.token });
    expect(env.body.data).toEqual({ KEY: replacement });

    // With read the version is the reader's to choose; downgraded to use, the pin it left stops
    // the deployment: validation names it, the deploy trigger and env resolution refuse it.
    await h.grant(owner, s.id, reader, "read");
    const readerDep = await deployment(reader, ["KEY"]);
    const pinned = await bind(reader.token, readerDep, [{ envName: "KEY", secretId: s.id, version: 1 }]);
    expect(pinned.status).toBe(200);
    expect(pinned.body.data.bindings[0]).toMatchObject({ pinnedVersion: 1, status: "ok" });
    await setStatus(readerDep, "deploying");
    const readerToken = await h.request("POST", `/deployments/${readerDep}/tokens`, { token: service });
    h.remember(readerToken.body.data.token);
    expect((await h.request("GET", `/deployments/${readerDep}/env`, { token: readerToken.body.data.token })).body.data).toEqual({ KEY: s.value });
    await setStatus(readerDep, "stopped");

    await h.grant(owner, s.id, reader, "use");
    const problem = {
      envName: "KEY", problem: "pin_requires_read",
      message: "KEY: the deployment owner holds only use on the bound secret, so the binding cannot pin a version; bind it without one",
    };
    const report = await h.request("POST", `/deployments/${readerDep}/validate`, { token: reader.token });
    expect(report.body.data).toEqual({ valid: false, problems: [problem] });
    await expect(setStatus(readerDep, "deploying")).rejects.toThrow(/pin_requires_read|cannot pin a version/);
    expect(await statusOf(readerDep)).toBe("stopped");
    const accessed = (await accessedFor(s.id)).length;
    const refused = await h.request("GET", `/deployments/${readerDep}/env`, { token: service });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("deployment_invalid");
    expect(refused.body.error.message).toContain("cannot pin a version");
    expect(await accessedFor(s.id)).toHaveLength(accessed);
  });
});

describe("env resolution", () => {
  it("resolves 100 bindings in one request, JSON and dotenv, each read audited with the deployment", async () => {
    const owner = await h.user();
    const values: Record<string, string> = {};
    const bindings = [];
    const tricky = [`it's "q"`, "multi\nline", "#hash $dollar \\back =eq", "  spaced  ", "ключ 🔑"];
    for (let i = 0; i < 100; i++) {
      const value = `${tricky[i % tricky.length]}-${i}-${crypto.randomUUID()}`;
      const s = await h.createSecret(owner, { value });
      values[`VAR_${i}`] = value;
      bindings.push({ envName: `VAR_${i}`, secretId: s.id });
    }
    const id = await deployment(owner, Object.keys(values));
    expect((await bind(owner.token, id, bindings)).status).toBe(200);
    await setStatus(id, "deploying");
    const t = await token(owner, id);
    const json = await h.request("GET", `/deployments/${id}/env`, { token: t });
    expect(json.status).toBe(200);
    expect(json.body.data).toEqual(values);
    const text = await h.request("GET", `/deployments/${id}/env?format=dotenv`, { token: t });
    expect(dotenv.parse(text.body)).toEqual(values);
    const [{ n }] = await h.db.query<{ n: number }>(
      `select count(*)::int as n from public.secret_access_logs where deployment_id = $1::uuid and action = 'accessed'`, [id]);
    expect(n).toBe(200);
  });

  it("uses a constant number of database round trips, whatever the number of bindings", async () => {
    const owner = await h.user();
    let count = 0;
    const counting = (q: Queryable): Queryable => ({
      query: (text, params) => (count++, q.query(text, params)),
      exec: (text) => (count++, q.exec(text)),
    });
    const db: Database = { ...h.db, ...counting(h.db), transaction: (fn) => h.db.transaction((tx) => fn(counting(tx))) };
    const service = createDeploymentService({ db, keyring: h.runtime.keyring, clock: h.clock });
    const ctx = { role: "service_role" as const, claims: { role: "service_role" }, headers: {} };
    const trips = async (n: number) => {
      const id = await deployment(owner);
      const bindings = [];
      for (let i = 0; i < n; i++) bindings.push({ envName: `V${i}`, secretId: (await h.createSecret(owner)).id });
      await bind(owner.token, id, bindings);
      count = 0;
      const env = await service.resolveEnv(ctx, id, { tokenHash: null, format: "json" });
      expect(env.format === "json" && Object.keys(env.values)).toHaveLength(n);
      return count;
    };
    const one = await trips(1);
    expect(await trips(30)).toBe(one);
    expect(one).toBeLessThanOrEqual(3);
  });

  it("refuses the env of a deployment with problems (409, every problem named) and values dotenv cannot hold (422)", async () => {
    const owner = await h.user();
    const s = await h.createSecret(owner, { value: "`all' three\" \\" });
    const id = await deployment(owner, ["A", "B"]);
    await bind(owner.token, id, [{ envName: "A", secretId: s.id }]);
    const t = await h.serviceToken();
    const invalid = await h.request("GET", `/deployments/${id}/env`, { token: t });
    expect(invalid.status).toBe(409);
    expect(invalid.body.error).toMatchObject({ code: "deployment_invalid" });
    expect(invalid.body.error.message).toContain("B: required but not bound");
    expect(await accessedFor(s.id)).toEqual([]);
    await h.db.query(`update public.deployments set required_env = '{A}' where id = $1::uuid`, [id]);
    const dot = await h.request("GET", `/deployments/${id}/env?format=dotenv`, { token: t });
    expect(dot.status).toBe(422);
    expect(dot.body.error.code).toBe("not_representable_as_dotenv");
    expect(JSON.stringify(dot.body)).not.toContain(s.value);
    expect(await accessedFor(s.id)).toEqual([]);
    expect((await h.request("GET", `/deployments/${id}/env`, { token: t })).body.data).toEqual({ A: s.value });
  });
});

describe("changes reach deployments: outdated bindings and conditional reads", () => {
  const newVersion = async (owner: TestUser, secretId: string, value: string) => {
    h.remember(value);
    const res = await h.request("PUT", `/${secretId}/value`, { token: owner.token, body: { value } });
    expect(res.status).toBe(200);
  };
  const env = (t: string, id: string, ifNoneMatch?: string, query = "") =>
    h.request("GET", `/deployments/${id}/env${query}`, { token: t, headers: ifNoneMatch ? { "if-none-match": ifNoneMatch } : {} });
  const accessedRows = async (id: string) => (await h.db.query<{ n: number }>(
    `select count(*)::int as n from public.secret_access_logs where deployment_id = $1::uuid and action = 'accessed'`, [id]))[0].n;

  it("answers the env's ETag back with 304: no body, no value read, nothing audited", async () => {
    const owner = await h.user();
    const s = await h.createSecret(owner);
    const id = await deployment(owner, ["KEY"]);
    await bind(owner.token, id, [{ envName: "KEY", secretId: s.id }]);
    await setStatus(id, "deploying");
    const t = await token(owner, id);
    const first = await env(t, id);
    expect(first.status).toBe(200);
    const etag = first.headers.get("etag")!;
    expect(etag).toMatch(/^"[0-9a-f]{32}"$/);
    expect(await accessedRows(id)).toBe(1);

    for (const header of [etag, `W/${etag}`, `"other", ${etag}`, "*"]) {
      const again = await env(t, id, header);
      expect(again.status, header).toBe(304);
      expect(again.body, header).toBe("");
      expect(again.headers.get("etag")).toBe(etag);
      expect(again.headers.get("cache-control")).toBe("no-store");
    }
    // The same env as dotenv has the same fingerprint; a tag that is not current reads again.
    expect((await env(t, id, etag, "?format=dotenv")).status).toBe(304);
    expect(await accessedRows(id)).toBe(1);
    const stale = await env(t, id, '"0123456789abcdef0123456789abcdef"');
    expect(stale.status).toBe(200);
    expect(stale.body.data).toEqual({ KEY: s.value });
    expect(await accessedRows(id)).toBe(2);

    // The checks still run first: a revoked token is refused, with the tag or without.
    const list = await h.request("GET", `/deployments/${id}/tokens`, { token: owner.token });
    await h.request("DELETE", `/deployments/${id}/tokens/${list.body.data[0].id}`, { token: owner.token });
    expect((await env(t, id, etag)).status).toBe(401);
    // And a deployment that became invalid is refused, not 304.
    const service = await h.serviceToken();
    await h.request("DELETE", `/${s.id}`, { token: owner.token });
    const invalid = await env(service, id, etag);
    expect(invalid.status).toBe(409);
    expect(invalid.body.error.code).toBe("deployment_invalid");
  });

  it("a new version marks the binding outdated at once; the env changes when the deployment deploys again", async () => {
    const owner = await h.user();
    const followed = await h.createSecret(owner);
    const pinned = await h.createSecret(owner);
    const id = await deployment(owner, ["FOLLOWED", "PINNED"]);
    await bind(owner.token, id, [{ envName: "FOLLOWED", secretId: followed.id }, { envName: "PINNED", secretId: pinned.id, version: 1 }]);
    const outdated = async () => {
      const res = await h.request("GET", `/deployments/${id}/secrets`, { token: owner.token });
      expect(res.status).toBe(200);
      return { etag: res.headers.get("etag")!, rows: res.body.data.bindings.map((b: any) => [b.envName, b.currentVersion, b.outdated]) };
    };
    // Not deployed yet: the follower gets whatever is current, so it is never behind.
    expect((await outdated()).rows).toEqual([["FOLLOWED", 1, false], ["PINNED", 1, false]]);
    await setStatus(id, "deploying");
    await setStatus(id, "running");
    const t = await token(owner, id);
    const before = await env(t, id);
    const bindingsBefore = await outdated();
    expect((await h.request("GET", `/deployments/${id}/secrets`, { token: owner.token, headers: { "if-none-match": bindingsBefore.etag } })).status).toBe(304);

    const next = `next-${crypto.randomUUID()}`;
    await newVersion(owner, followed.id, next);
    await newVersion(owner, pinned.id, `pinned-next-${crypto.randomUUID()}`);
    const after = await outdated();
    expect(after.rows).toEqual([["FOLLOWED", 2, true], ["PINNED", 2, true]]);
    expect(after.etag).not.toBe(bindingsBefore.etag);
    const polled = await h.request("GET", `/deployments/${id}/secrets`, { token: owner.token, headers: { "if-none-match": bindingsBefore.etag } });
    expect(polled.status).toBe(200);

    // The running deployment keeps the versions it was deployed with: its env has not changed.
    expect((await env(t, id, before.headers.get("etag")!)).status).toBe(304);
    // The platform redeploys: the follower moves to version 2, the pin stays at 1.
    await setStatus(id, "deploying");
    const redeployed = await env(t, id, before.headers.get("etag")!);
    expect(redeployed.status).toBe(200);
    expect(redeployed.headers.get("etag")).not.toBe(before.headers.get("etag"));
    expect(redeployed.body.data).toEqual({ FOLLOWED: next, PINNED: pinned.value });
    expect((await outdated()).rows).toEqual([["FOLLOWED", 2, false], ["PINNED", 2, true]]);
  });

  it("a binding to a secret the caller cannot see is never called outdated", async () => {
    const owner = await h.user();
    const teammate = await h.user();
    const s = await h.createSecret(teammate);
    await h.grant(teammate, s.id, owner, "use");
    const id = await deployment(owner, ["K"]);
    await bind(owner.token, id, [{ envName: "K", secretId: s.id }]);
    await setStatus(id, "deploying");
    await newVersion(teammate, s.id, `teammate-next-${crypto.randomUUID()}`);
    await h.request("DELETE", `/${s.id}/permissions/${owner.id}`, { token: teammate.token });
    const res = await h.request("GET", `/deployments/${id}/secrets`, { token: owner.token });
    expect(res.body.data.bindings).toMatchObject([{ envName: "K", secretName: null, currentVersion: null, outdated: false }]);
  });
});
