/**
 * The deploy trigger as the platform meets it, moving statuses in plain SQL: a deployment is
 * checked and its versions pinned whenever it starts being served — a move into deploying or
 * running from a status that is neither, or an INSERT with either — and deploying → running
 * keeps the versions pinned at deploying.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, type Harness, type TestUser } from "../helpers/harness.ts";

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h?.close();
});

async function deployment(owner: TestUser, requiredEnv: string[], status = "pending"): Promise<string> {
  const [row] = await h.db.query<{ id: string }>(
    `insert into public.deployments (user_id, name, required_env, status)
     values ($1::uuid, $2, array(select jsonb_array_elements_text($3::text::jsonb)), $4) returning id`,
    [owner.id, `mcp-${crypto.randomUUID().slice(0, 8)}`, JSON.stringify(requiredEnv), status],
  );
  return row.id;
}

const bind = (owner: TestUser, id: string, bindings: { envName: string; secretId: string }[]) =>
  h.request("PUT", `/deployments/${id}/secrets`, { token: owner.token, body: { bindings } });
const setStatus = (id: string, status: string) =>
  h.db.query(`update public.deployments set status = $2 where id = $1::uuid`, [id, status]);
const statusOf = async (id: string) =>
  (await h.db.query<{ status: string }>(`select status from public.deployments where id = $1::uuid`, [id]))[0]?.status;
const pinned = async (id: string) =>
  (await h.db.query<{ resolved_version: number | null }>(
    `select resolved_version from public.deployment_secrets where deployment_id = $1::uuid`, [id]))[0]?.resolved_version;

describe("the deploy trigger", () => {
  it("refuses a deployment moved from pending straight to running when it has problems, and leaves it pending", async () => {
    const owner = await h.user();
    const id = await deployment(owner, ["MISSING"]);
    const err = await setStatus(id, "running").catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toContain("MISSING: required but not bound");
    expect(await statusOf(id)).toBe("pending");
  });

  it("refuses a deployment inserted as running with problems, and no row is written", async () => {
    const owner = await h.user();
    const err = await deployment(owner, ["MISSING"], "running").catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toContain("MISSING: required but not bound");
    const rows = await h.db.query(`select 1 from public.deployments where user_id = $1::uuid`, [owner.id]);
    expect(rows).toEqual([]);
  });

  it("pins the current versions on pending → running", async () => {
    const owner = await h.user();
    const s = await h.createSecret(owner);
    const id = await deployment(owner, ["KEY"]);
    expect((await bind(owner, id, [{ envName: "KEY", secretId: s.id }])).status).toBe(200);
    expect(await pinned(id)).toBeNull();
    await setStatus(id, "running");
    expect(await pinned(id)).toBe(1);
  });

  it("deploying → running keeps the versions pinned at deploying, even after a new value", async () => {
    const owner = await h.user();
    const s = await h.createSecret(owner);
    const id = await deployment(owner, ["KEY"]);
    await bind(owner, id, [{ envName: "KEY", secretId: s.id }]);
    await setStatus(id, "deploying");
    h.remember("value-written-while-deploying");
    const put = await h.request("PUT", `/${s.id}/value`, { token: owner.token, body: { value: "value-written-while-deploying" } });
    expect(put.status).toBe(200);
    await setStatus(id, "running");
    expect(await statusOf(id)).toBe("running");
    expect(await pinned(id)).toBe(1);
    const env = await h.request("GET", `/deployments/${id}/env`, { token: await h.serviceToken() });
    expect(env.status).toBe(200);
    expect(env.body.data).toEqual({ KEY: s.value });
  });
});
