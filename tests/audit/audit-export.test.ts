/**
 * The audit export for a SIEM (`GET /admin/audit/export?since=&limit=`, NDJSON) and who may
 * verify or export at all: the service role only.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, type Harness, type TestUser } from "../helpers/harness.ts";
import { itOrSkip, needsPostgres } from "../helpers/skip.ts";
import { copyTrail, restoreTrail, tamper } from "./trail.ts";

let h: Harness;
let service: string;
let owner: TestUser;
let secret: { id: string; value: string };

beforeAll(async () => {
  h = await createHarness({ isolatedDatabase: true });
  service = await h.serviceToken();
  owner = await h.user("owner");
  secret = await h.createSecret(owner);
  await h.createSecret(owner);
  await Promise.all(Array.from({ length: 12 }, () => h.request("GET", `/${secret.id}/value`, { token: owner.token })));
});

afterAll(async () => {
  await h?.close();
});

const exportPage = (since?: string, limit?: number, token: string | null = service) => {
  const q = new URLSearchParams();
  if (since !== undefined) q.set("since", since);
  if (limit !== undefined) q.set("limit", String(limit));
  return h.request("GET", `/admin/audit/export?${q}`, { token });
};

/** The rows of an NDJSON body (the harness parses a body of exactly one line as JSON already). */
const lines = (body: unknown): any[] =>
  typeof body === "string" ? body.split("\n").filter(Boolean).map((l) => JSON.parse(l)) : [body];

const allIds = async () =>
  (await h.db.query<{ id: string }>(`select l.id::text as id from public.secret_access_logs l order by l.id`)).map((r) => r.id);

async function drain(from = "0", limit = 5) {
  const seen: any[] = [];
  let cursor = from;
  for (let i = 0; i < 1000; i++) {
    const res = await exportPage(cursor, limit);
    expect(res.status).toBe(200);
    const page = lines(res.body);
    expect(page.length).toBeLessThanOrEqual(limit);
    if (page.length === 0) {
      expect(res.headers.get("x-next-cursor")).toBe(cursor);
      return { rows: seen, cursor };
    }
    expect(res.headers.get("x-next-cursor")).toBe(page[page.length - 1].id);
    seen.push(...page);
    cursor = res.headers.get("x-next-cursor")!;
  }
  throw new Error("the export never ran dry");
}

describe("the audit export", () => {
  it("returns every row exactly once across pages, in id order, as NDJSON, without values", async () => {
    const first = await exportPage("0", 5);
    expect(first.headers.get("content-type")).toBe("application/x-ndjson; charset=utf-8");
    expect(first.headers.get("cache-control")).toBe("no-store");

    const { rows } = await drain();
    expect(rows.map((r) => r.id)).toEqual(await allIds());
    for (const r of rows) {
      expect(Object.keys(r).sort()).toEqual([
        "action", "actorId", "actorType", "chain", "createdAt", "deploymentId", "details", "hash", "id", "ip", "outcome",
        "ownerId", "requestId", "secretId", "secretName", "seq", "userAgent", "version",
      ]);
      expect(r.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(r.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    }
    // Each chain's positions run 1, 2, 3… in id order: the receiver can check the chain too.
    const byChain = new Map<number, number[]>();
    for (const r of rows) byChain.set(r.chain, [...(byChain.get(r.chain) ?? []), r.seq]);
    for (const seqs of byChain.values()) expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    const reads = rows.filter((r) => r.action === "accessed" && r.secretId === secret.id);
    expect(reads).toHaveLength(12);

    const body = (await exportPage("0", 10_000)).body as string;
    expect(body).not.toContain(secret.value);
    expect(body).not.toContain(Buffer.from(secret.value).toString("base64"));
  });

  it("answers the same cursor with the same page, and an exhausted cursor with nothing until new rows come", async () => {
    const ids = await allIds();
    const a = await exportPage(ids[3], 4);
    const b = await exportPage(ids[3], 4);
    expect(a.body).toBe(b.body);
    expect(lines(a.body).map((r) => r.id)).toEqual(ids.slice(4, 8));

    const end = await exportPage(ids[ids.length - 1], 100);
    expect(end.body).toBe("");
    expect(end.headers.get("x-next-cursor")).toBe(ids[ids.length - 1]);
    await h.request("GET", `/${secret.id}/value`, { token: owner.token });
    const next = lines((await exportPage(ids[ids.length - 1], 100)).body);
    expect(next).toHaveLength(1);
    expect(next[0]).toMatchObject({ action: "accessed", secretId: secret.id });
  });

  it("refuses a cursor or a limit it did not offer, exporting nothing", async () => {
    for (const q of ["since=abc", "since=-1", "since=01", "limit=0", "limit=10001", "limit=1.5", "other=1"]) {
      const res = await h.request("GET", `/admin/audit/export?${q}`, { token: service });
      expect(res.status, q).toBe(400);
      expect(res.body.error.code, q).toBe("invalid_request");
      expect(JSON.stringify(res.body)).not.toContain('"hash"');
    }
  });

  itOrSkip("never passes a row whose transaction has not committed yet, so a later page still brings it", needsPostgres, async () => {
    const before = (await allIds()).at(-1)!;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let pendingId = "";
    let drawn!: () => void;
    const hasDrawn = new Promise<void>((r) => (drawn = r));
    // A slow transaction draws an id, then another commits a higher one.
    const slow = h.db.transaction(async (tx) => {
      await tx.query(`select private.write_audit(null, 'slow', null, 'accessed')`);
      pendingId = (await tx.query<{ id: string }>(`select currval('public.secret_access_logs_id_seq')::text as id`))[0].id;
      drawn();
      await gate;
    });
    try {
      await hasDrawn;
      expect((await h.request("GET", `/${secret.id}/value`, { token: owner.token })).status).toBe(200);
      const committed = (await allIds()).at(-1)!;
      expect(BigInt(committed)).toBeGreaterThan(BigInt(pendingId));

      const early = await drain(before, 100);
      expect(early.rows.map((r) => r.id)).not.toContain(committed);
      expect(BigInt(early.cursor)).toBeLessThan(BigInt(pendingId));
      release();
      await slow;
      const late = await drain(early.cursor, 100);
      expect(late.rows.map((r) => r.id)).toEqual([pendingId, committed]);
    } finally {
      release();
      await slow.catch(() => {});
    }
  });
});

describe("the export while a transaction whose chain has no head yet runs", () => {
  itOrSkip("holds back only the ids that transaction may still commit, not the rows committed before it", needsPostgres, async () => {
    const clean = await copyTrail(h.db);
    // No chain has a committed head: as for a chain's first transaction ever.
    await tamper(h.db, `delete from private.audit_chains`);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let drawn!: () => void;
    const hasDrawn = new Promise<void>((r) => (drawn = r));
    let pendingId = "";
    let slow: Promise<void> | undefined;
    try {
      const before = (await allIds()).at(-1)!;
      // A row committed before the slow transaction began: nothing can precede it any more.
      await h.db.query(`select private.write_audit(null, 'committed-first', null, 'accessed')`);
      const committed = (await allIds()).at(-1)!;
      await tamper(h.db, `delete from private.audit_chains`);
      slow = h.db.transaction(async (tx) => {
        await tx.query(`select private.write_audit(null, 'slow', null, 'accessed')`);
        pendingId = (await tx.query<{ id: string }>(`select currval('public.secret_access_logs_id_seq')::text as id`))[0].id;
        drawn();
        await gate;
      });
      await hasDrawn;
      expect(BigInt(pendingId)).toBeGreaterThan(BigInt(committed));
      const early = await drain(before, 100);
      expect(early.rows.map((r) => r.id)).toEqual([committed]);
      release();
      await slow;
      const late = await drain(early.cursor, 100);
      expect(late.rows.map((r) => r.id)).toEqual([pendingId]);
    } finally {
      release();
      await slow?.catch(() => {});
      await restoreTrail(h.db, clean);
    }
  });
});

describe("who may verify and export the audit trail", () => {
  const routes: [string, string, unknown?][] = [
    ["GET", "/admin/audit/verify"],
    ["POST", "/admin/audit/verify", { checkpoint: [] }],
    ["GET", "/admin/audit/export?since=0"],
  ];

  it("the service role: 200", async () => {
    for (const [method, path, body] of routes) {
      const res = await h.request(method, path, { token: service, body });
      expect(res.status, `${method} ${path}`).toBe(200);
    }
  });

  it("a signed-in user, even one whose rows are in the trail: 403 forbidden, and nothing of the trail", async () => {
    for (const [method, path, body] of routes) {
      const res = await h.request(method, path, { token: owner.token, body });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.error.code).toBe("forbidden");
      expect(JSON.stringify(res.body)).not.toMatch(/"(heads|hash|secretId)"/);
    }
  });

  it("a deployment token, a forged token or none: 401 unauthenticated", async () => {
    const [dep] = await h.db.query<{ id: string }>(
      `insert into public.deployments (user_id, name, required_env) values ($1::uuid, 'mcp-audit', '{}') returning id`, [owner.id],
    );
    const minted = await h.request("POST", `/deployments/${dep.id}/tokens`, { token: owner.token });
    expect(minted.status).toBe(201);
    const deploymentToken = minted.body.data.token as string;
    h.remember(deploymentToken);
    for (const [method, path, body] of routes) {
      for (const token of [deploymentToken, `${service.slice(0, -4)}AAAA`, null]) {
        const res = await h.request(method, path, { token, body });
        expect(res.status, `${method} ${path}`).toBe(401);
        expect(res.body.error.code).toBe("unauthenticated");
      }
    }
  });
});
