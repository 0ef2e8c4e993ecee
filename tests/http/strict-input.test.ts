/**
 * Nothing silently different from what was asked: a body that is not declared JSON, a body on
 * a route that takes none, bytes that are not UTF-8, an If-Match that disagrees with the body,
 * a number spelled any way but plain decimal, and HEAD on the audited reads are all refused,
 * and each refusal leaves the database as it was.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditOf, createHarness, type Harness, type Reply, snapshot, type TestUser } from "../helpers/harness.ts";

let h: Harness;
let alice: TestUser;
beforeAll(async () => {
  h = await createHarness();
  alice = await h.user("alice");
});
afterAll(async () => {
  await h?.close();
});

/** Sends raw bytes (no Content-Type unless given), which the harness's JSON helper cannot. */
async function sendBytes(method: string, path: string, token: string, bytes: Uint8Array, contentType?: string): Promise<Reply> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (contentType) headers["content-type"] = contentType;
  const res = await h.app.request(`/secrets${path}`, { method, headers, body: bytes });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : text, headers: res.headers };
}

const utf8 = (s: string) => new TextEncoder().encode(s);

/** A deployment row as the platform writes it. */
async function deployment(owner: TestUser): Promise<string> {
  const [row] = await h.db.query<{ id: string }>(
    `insert into public.deployments (user_id, name, required_env) values ($1::uuid, $2, '{}') returning id`,
    [owner.id, `mcp-${crypto.randomUUID().slice(0, 8)}`],
  );
  return row.id;
}

const tokensOf = (deploymentId: string) => h.db.query<{ ttl: number }>(
  `select extract(epoch from expires_at - created_at)::int as ttl from private.deployment_tokens where deployment_id = $1::uuid`,
  [deploymentId],
);

/** A secret at version 2, so a rollback to 1 would change it. */
async function twoVersions(owner = alice) {
  const s = await h.createSecret(owner);
  const value = `second-${crypto.randomUUID()}`;
  h.remember(value);
  expect((await h.request("PUT", `/${s.id}/value`, { token: owner.token, body: { value } })).status).toBe(200);
  return s;
}

describe("a body that is not declared JSON", () => {
  it("a rollback sent as text/plain or without a Content-Type is refused 415 and rolls nothing back", async () => {
    const s = await twoVersions();
    const before = await snapshot(h.db, s.id);
    const body = '{"expectedVersion":1}';
    for (const contentType of ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", undefined]) {
      const res = await sendBytes("POST", `/${s.id}/versions/1/restore`, alice.token, utf8(body), contentType);
      expect(res.status, String(contentType)).toBe(415);
      expect(res.body.error.code).toBe("unsupported_media_type");
    }
    expect(await snapshot(h.db, s.id)).toBe(before);
    // The same body declared JSON is read: version 2 is current, so expecting 1 is stale.
    const json = await sendBytes("POST", `/${s.id}/versions/1/restore`, alice.token, utf8(body), "application/json");
    expect(json.status).toBe(409);
    expect(await snapshot(h.db, s.id)).toBe(before);
  });

  it("a token request with its ttl as text/plain is refused 415 and issues no token", async () => {
    const id = await deployment(alice);
    const res = await h.request("POST", `/deployments/${id}/tokens`, {
      token: alice.token, rawBody: '{"ttlSeconds":60}', headers: { "content-type": "text/plain" },
    });
    expect(res.status).toBe(415);
    expect(res.body.error.code).toBe("unsupported_media_type");
    expect(await tokensOf(id)).toEqual([]);
    const json = await h.request("POST", `/deployments/${id}/tokens`, { token: alice.token, body: { ttlSeconds: 60 } });
    expect(json.status).toBe(201);
    h.remember(json.body.data.token);
    expect(await tokensOf(id)).toEqual([{ ttl: 60 }]);
  });

  it("every route that takes a JSON body refuses a text/plain one and changes nothing", async () => {
    const s = await twoVersions();
    const bob = await h.user("bob");
    const dep = await deployment(alice);
    const before = await snapshot(h.db, s.id);
    const service = await h.serviceToken();
    const counts = () => h.db.query(
      `select (select count(*)::int from public.secrets where user_id = $1::uuid) as secrets,
              (select count(*)::int from private.key_rotations) as rotations`, [alice.id]);
    const countsBefore = await counts();
    const routes: [string, string, unknown, string?][] = [
      ["POST", "", { name: `Plain_${crypto.randomUUID().slice(0, 8)}`, value: "plain-text-value" }],
      ["PATCH", `/${s.id}`, { description: "changed" }],
      ["PUT", `/${s.id}/value`, { value: "plain-text-value-2" }],
      ["POST", `/${s.id}/versions/1/restore`, {}],
      ["PUT", `/${s.id}/permissions`, { userId: bob.id, permission: "read" }],
      ["PUT", `/deployments/${dep}/secrets`, { bindings: [{ envName: "K", secretId: s.id }] }],
      ["POST", `/deployments/${dep}/tokens`, {}],
      ["POST", "/admin/keys/rotate", { batchSize: 1 }, service],
    ];
    for (const [method, path, body, token] of routes) {
      const res = await h.request(method, path, {
        token: token ?? alice.token, rawBody: JSON.stringify(body), headers: { "content-type": "text/plain" },
      });
      expect(res.status, `${method} ${path}`).toBe(415);
      expect(res.body.error.code).toBe("unsupported_media_type");
    }
    expect(await snapshot(h.db, s.id)).toBe(before);
    expect(await counts()).toEqual(countsBefore);
    expect(await h.db.query(`select 1 from public.deployment_secrets where deployment_id = $1::uuid`, [dep])).toEqual([]);
    expect(await tokensOf(dep)).toEqual([]);
  });

  it("refuses a JSON body declared in another charset, and takes JSON media types in any case or with +json", async () => {
    const s = await h.createSecret(alice);
    const latin1 = await h.request("PATCH", `/${s.id}`, {
      token: alice.token, rawBody: '{"description":"x"}', headers: { "content-type": "application/json; charset=iso-8859-1" },
    });
    expect(latin1.status).toBe(415);
    for (const contentType of ["APPLICATION/JSON", "application/json; charset=UTF-8", "application/merge-patch+json"]) {
      const res = await h.request("PATCH", `/${s.id}`, {
        token: alice.token, rawBody: JSON.stringify({ description: contentType }), headers: { "content-type": contentType },
      });
      expect(res.status, contentType).toBe(200);
      expect(res.body.data.description).toBe(contentType);
    }
  });

  it("a JSON route sent no body at all still takes its defaults", async () => {
    const id = await deployment(alice);
    const res = await h.request("POST", `/deployments/${id}/tokens`, { token: alice.token });
    expect(res.status).toBe(201);
    h.remember(res.body.data.token);
    expect(await tokensOf(id)).toEqual([{ ttl: 900 }]);
  });
});

describe("a body on a route that takes none", () => {
  it("is refused 400 naming the body, on delete, restore, revoke and validate, and changes nothing", async () => {
    const s = await h.createSecret(alice);
    const bob = await h.user("bob");
    await h.grant(alice, s.id, bob, "read");
    const deleted = await h.createSecret(alice);
    expect((await h.request("DELETE", `/${deleted.id}`, { token: alice.token })).status).toBe(200);
    const dep = await deployment(alice);
    const before = [await snapshot(h.db, s.id), await snapshot(h.db, deleted.id)];
    const auditBefore = [(await auditOf(h.db, s.id)).length, (await auditOf(h.db, deleted.id)).length];

    const routes: [string, string][] = [
      ["DELETE", `/${s.id}`], ["POST", `/${deleted.id}/restore`], ["DELETE", `/${s.id}/permissions/${bob.id}`],
      ["POST", `/deployments/${dep}/validate`],
    ];
    for (const [method, path] of routes) {
      for (const [body, contentType] of [['{"force":true}', "application/json"], ["{}", "application/json"], ["x", "text/plain"]]) {
        const res = await h.request(method, path, { token: alice.token, rawBody: body, headers: { "content-type": contentType } });
        expect(res.status, `${method} ${path} ${contentType}`).toBe(400);
        expect(res.body.error.code).toBe("invalid_request");
        expect(res.body.error.details).toEqual([{ path: "body", message: "this route takes no body" }]);
      }
    }
    expect([await snapshot(h.db, s.id), await snapshot(h.db, deleted.id)]).toEqual(before);
    expect([(await auditOf(h.db, s.id)).length, (await auditOf(h.db, deleted.id)).length]).toEqual(auditBefore);
    // Without a body the same calls go through.
    expect((await h.request("DELETE", `/${s.id}`, { token: alice.token })).status).toBe(200);
  });

  it("an unknown path or a wrong method still answers 404 or 405, body or not", async () => {
    const s = await h.createSecret(alice);
    const wrongMethod = await h.request("POST", `/${s.id}/value`, { token: alice.token, rawBody: "x", headers: { "content-type": "text/plain" } });
    expect(wrongMethod.status).toBe(405);
    const unknown = await h.request("POST", "/no/such/route", { token: alice.token, body: {} });
    expect(unknown.status).toBe(404);
  });
});

describe("bytes that are not UTF-8", () => {
  const latin1Value = () => {
    const head = utf8('{"value":"p');
    const tail = utf8('ssw0rd"}');
    return new Uint8Array([...head, 0xe9, ...tail]);
  };

  it("a new value with invalid UTF-8 is refused 400 and nothing is stored", async () => {
    const s = await h.createSecret(alice);
    const before = await snapshot(h.db, s.id);
    const res = await sendBytes("PUT", `/${s.id}/value`, alice.token, latin1Value(), "application/json");
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_json");
    expect(res.body.error.message).toMatch(/UTF-8/);
    expect(await snapshot(h.db, s.id)).toBe(before);
    const read = await h.request("GET", `/${s.id}/value`, { token: alice.token });
    expect(read.body.data.value).toBe(s.value);
  });

  it("a create with invalid UTF-8, or with a UTF-8-encoded surrogate, stores no secret", async () => {
    const count = async () => (await h.db.query(`select 1 from public.secrets where user_id = $1::uuid`, [alice.id])).length;
    const n = await count();
    const name = utf8(`{"name":"Bad_${crypto.randomUUID().slice(0, 8)}","value":"p`);
    for (const bad of [[0xe9], [0xed, 0xa0, 0x80], [0xc0, 0xaf]]) {
      const bytes = new Uint8Array([...name, ...bad, ...utf8('ssw0rd"}')]);
      const res = await sendBytes("POST", "", alice.token, bytes, "application/json");
      expect(res.status, bad.join(",")).toBe(400);
      expect(res.body.error.code).toBe("invalid_json");
    }
    expect(await count()).toBe(n);
  });
});

describe("loose parsing", () => {
  it("a rollback whose If-Match disagrees with expectedVersion is refused 400 and rolls nothing back", async () => {
    const s = await twoVersions();
    const before = await snapshot(h.db, s.id);
    const res = await h.request("POST", `/${s.id}/versions/1/restore`, {
      token: alice.token, body: { expectedVersion: 2 }, headers: { "if-match": '"1"' },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_request");
    expect(await snapshot(h.db, s.id)).toBe(before);
    const agreeing = await h.request("POST", `/${s.id}/versions/1/restore`, {
      token: alice.token, body: { expectedVersion: 2 }, headers: { "if-match": '"2"' },
    });
    expect(agreeing.status).toBe(200);
    expect(agreeing.body.data.currentVersion).toBe(3);
  });

  it("numbers in a path or query are plain decimal integers: 0x1, 1e0, ' 1', '+1', '01', '1.0' are 400", async () => {
    const s = await twoVersions();
    const before = await snapshot(h.db, s.id);
    const service = await h.serviceToken();
    const accessed = async () => (await auditOf(h.db, s.id)).filter((a) => a.action === "accessed").length;
    const reads = await accessed();
    for (const n of ["0x1", "1e0", "%201", "1%20", "+1", "01", "1.0", "0b1", "%091"]) {
      const calls: [string, string, string?][] = [
        ["GET", `/${s.id}/value?version=${n}`],
        ["POST", `/${s.id}/versions/${n}/restore`],
        ["GET", `?limit=${n}`],
        ["GET", `/audit?limit=${n}`],
        ["GET", `/${s.id}/audit?limit=${n}`],
        ["POST", `/admin/keys/${n}/retire`, service],
      ];
      for (const [method, path, token] of calls) {
        const res = await h.request(method, path, { token: token ?? alice.token });
        expect(res.status, `${method} ${path}`).toBe(400);
        expect(res.body.error.code, `${method} ${path}`).toBe("invalid_request");
      }
    }
    expect(await snapshot(h.db, s.id)).toBe(before);
    expect(await accessed()).toBe(reads);
    // Plain decimals still work.
    expect((await h.request("GET", `/${s.id}/value?version=1`, { token: alice.token })).body.data.value).toBe(s.value);
    expect((await h.request("GET", "?limit=1", { token: alice.token })).status).toBe(200);
    expect((await h.request("GET", "/audit?limit=10", { token: alice.token })).status).toBe(200);
  });

  it("HEAD on the value route is 405 with Allow, and reads nothing: no accessed row", async () => {
    const s = await h.createSecret(alice);
    const accessed = async () => (await auditOf(h.db, s.id)).filter((a) => a.action === "accessed").length;
    const res = await h.request("HEAD", `/${s.id}/value`, { token: alice.token });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")?.split(", ").sort()).toEqual(["GET", "PUT"]);
    expect(await accessed()).toBe(0);
    // The count can move: a GET is audited.
    expect((await h.request("GET", `/${s.id}/value`, { token: alice.token })).status).toBe(200);
    expect(await accessed()).toBe(1);
    // HEAD on metadata stays allowed (it reads no value and writes no audit row).
    expect((await h.request("HEAD", `/${s.id}`, { token: alice.token })).status).toBe(200);
  });

  it("HEAD on the env route is 405 with Allow, and resolves nothing: no accessed row", async () => {
    const s = await h.createSecret(alice);
    const id = await deployment(alice);
    expect((await h.request("PUT", `/deployments/${id}/secrets`, { token: alice.token, body: { bindings: [{ envName: "KEY", secretId: s.id }] } })).status).toBe(200);
    await h.db.query(`update public.deployments set status = 'deploying' where id = $1::uuid`, [id]);
    const issued = await h.request("POST", `/deployments/${id}/tokens`, { token: alice.token });
    const t = issued.body.data.token as string;
    h.remember(t);
    const accessed = async () => (await auditOf(h.db, s.id)).filter((a) => a.action === "accessed").length;
    for (const token of [t, await h.serviceToken()]) {
      const res = await h.request("HEAD", `/deployments/${id}/env`, { token });
      expect(res.status).toBe(405);
      expect(res.headers.get("allow")).toBe("GET");
    }
    expect(await accessed()).toBe(0);
    expect((await h.request("HEAD", `/deployments/${id}/env`)).status).toBe(401);
    expect((await h.request("GET", `/deployments/${id}/env`, { token: t })).status).toBe(200);
    expect(await accessed()).toBe(1);
  });
});
