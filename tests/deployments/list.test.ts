/**
 * `GET /deployments`: each user lists the deployments it owns and no other; the service role
 * lists every owner's; a page at a time by name; bad input is a 400 that changes nothing.
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

/** A deployment row as the platform writes it, straight into its table. */
async function deployment(owner: TestUser, name: string, requiredEnv: string[] = [], status = "pending"): Promise<string> {
  const [row] = await h.db.query<{ id: string }>(
    `insert into public.deployments (user_id, name, required_env, status)
     values ($1::uuid, $2, array(select jsonb_array_elements_text($3::text::jsonb)), $4) returning id`,
    [owner.id, name, JSON.stringify(requiredEnv), status],
  );
  return row.id;
}

const list = (token: string | null, query = "") => h.request("GET", `/deployments${query}`, { token });
const names = (res: { body: any }) => res.body.data.items.map((d: any) => d.name);
/** Audit rows with `actor` as their actor (other suites write theirs meanwhile). */
const auditRowsBy = async (actor: TestUser) =>
  (await h.db.query<{ n: number }>(`select count(*)::int as n from public.secret_access_logs where actor_id = $1::uuid`, [actor.id]))[0].n;

describe("GET /deployments", () => {
  it("lists the caller's own deployments by name, with what is bound and what is not", async () => {
    const alice = await h.user("alice");
    const bob = await h.user("bob");
    const key = await h.createSecret(alice);
    const web = await deployment(alice, "web-mcp", ["API_KEY", "DB_URL"]);
    const cli = await deployment(alice, "cli-mcp", [], "running");
    await deployment(bob, "bobs-mcp", ["TOKEN"]);
    const bound = await h.request("PUT", `/deployments/${web}/secrets`, {
      token: alice.token, body: { bindings: [{ envName: "API_KEY", secretId: key.id }, { envName: "EXTRA", secretId: key.id }] },
    });
    expect(bound.status).toBe(200);

    const before = await auditRowsBy(alice);
    expect(before).toBeGreaterThan(0); // the create and the bindings: the count sees her rows
    const res = await list(alice.token);
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({
      items: [
        { id: cli, name: "cli-mcp", status: "running", ownerId: alice.id, requiredEnv: [], bindingCount: 0, unboundEnv: [] },
        {
          id: web, name: "web-mcp", status: "pending", ownerId: alice.id, requiredEnv: ["API_KEY", "DB_URL"],
          bindingCount: 2, unboundEnv: ["DB_URL"],
        },
      ],
      nextCursor: null,
    });
    // Listing reads no value and writes no audit row.
    expect(await auditRowsBy(alice)).toBe(before);

    expect(names(await list(bob.token))).toEqual(["bobs-mcp"]);
    // Asking for someone else's gets nothing, not an error that tells them apart.
    const other = await list(bob.token, `?ownerId=${alice.id}`);
    expect(other.status).toBe(200);
    expect(other.body.data.items).toEqual([]);
    expect(names(await list(alice.token, "?status=running"))).toEqual(["cli-mcp"]);
  });

  it("gives the service role every owner's, or one owner's with ownerId", async () => {
    const carol = await h.user("carol");
    const dave = await h.user("dave");
    const carols = await deployment(carol, "carol-a");
    const daves = await deployment(dave, "dave-a");
    const service = await h.serviceToken();
    expect((await list(service, `?ownerId=${carol.id}`)).body.data.items.map((d: any) => d.id)).toEqual([carols]);
    const all: string[] = [];
    for (let cursor: string | null = null; ;) {
      const res: any = await list(service, `?limit=100${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status).toBe(200);
      all.push(...res.body.data.items.map((d: any) => d.id));
      cursor = res.body.data.nextCursor;
      if (!cursor) break;
    }
    expect(all).toEqual(expect.arrayContaining([carols, daves]));
    expect(new Set(all).size).toBe(all.length);
  });

  it("pages by name: every deployment once, in order, whatever the page size", async () => {
    const erin = await h.user("erin");
    // Two share a name prefix, two have long names (the platform sets no limit), all inserted out of order.
    const expected = [...["a", "b", "b", "c", "d"].map((n, i) => `${n}-${i}`), `e-${"x".repeat(1500)}`, `f-${"界".repeat(1500)}`];
    for (const name of [...expected].reverse()) await deployment(erin, name);
    for (const limit of [1, 2, 3]) {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: any = await list(erin.token, `?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
        expect(res.status).toBe(200);
        expect(res.body.data.items.length).toBeLessThanOrEqual(limit);
        seen.push(...names(res));
        cursor = res.body.data.nextCursor;
      } while (cursor);
      expect(seen, `limit ${limit}`).toEqual(expected);
    }
  });

  it("refuses bad input with a 400 naming the field, and a caller without a user or service token with 401", async () => {
    const frank = await h.user("frank");
    const id = await deployment(frank, "frank-mcp");
    for (const [query, field] of [
      ["?limit=0", "limit"], ["?limit=101", "limit"], ["?limit=1e1", "limit"], ["?status=gone", "status"],
      ["?ownerId=not-a-uuid", "ownerId"], ["?sort=name", null],
    ] as const) {
      const res = await list(frank.token, query);
      expect(res.status, query).toBe(400);
      expect(res.body.error.code, query).toBe("invalid_request");
      if (field) expect(JSON.stringify(res.body.error.details), query).toContain(field);
    }
    // A cursor is the id of a deployment the caller sees: not an id, someone else's, or one
    // gone since, it is refused.
    const stranger = await h.user("stranger");
    const theirs = await deployment(stranger, "not-franks");
    const gone = await deployment(frank, "gone-mcp");
    await h.db.query(`delete from public.deployments where id = $1::uuid`, [gone]);
    for (const cursor of ["%%%", "not-a-uuid", theirs, gone]) {
      const res = await list(frank.token, `?cursor=${encodeURIComponent(cursor)}`);
      expect(res.status, cursor).toBe(400);
      expect(res.body.error.code, cursor).toBe("invalid_cursor");
      expect(JSON.stringify(res.body)).not.toContain("not-franks");
    }
    // Its own deployment's id is a cursor: the page after it.
    const after = await list(frank.token, `?cursor=${id}`);
    expect(after.status).toBe(200);
    expect(after.body.data.items).toEqual([]);

    expect((await list(null)).status).toBe(401);
    // A deployment token opens its env and nothing else.
    const issued = await h.request("POST", `/deployments/${id}/tokens`, { token: frank.token });
    expect(issued.status).toBe(201);
    h.remember(issued.body.data.token);
    const byToken = await list(issued.body.data.token);
    expect(byToken.status).toBe(401);
    expect(JSON.stringify(byToken.body)).not.toContain("frank-mcp");
  });
});
