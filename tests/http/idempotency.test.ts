/**
 * Writes are safe to retry: with `Idempotency-Key`, a retry (same caller, same key, same
 * request) gets the first answer and changes nothing, even when the first commit went through
 * and its answer was lost; another request under the key is refused and changes nothing; an
 * error answer leaves nothing behind; the key is stored only hashed and the answer sealed.
 */
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../shared/config.ts";
import { asCaller, asOwner, type Database, inRequestTransaction } from "../../shared/db/database.ts";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";
import { createRuntime } from "../../shared/runtime.ts";
import { auditOf, createHarness, type Harness, type Reply, snapshot, type TestUser } from "../helpers/harness.ts";
import { describeOrSkip, needsPostgres } from "../helpers/skip.ts";

let h: Harness;
let alice: TestUser;
let bob: TestUser;
beforeAll(async () => {
  h = await createHarness();
  alice = await h.user("alice");
  bob = await h.user("bob");
});
afterAll(async () => {
  await h?.close();
});

const newKey = () => `key-${crypto.randomUUID()}`;

/** A write with an Idempotency-Key. */
function keyed(method: string, path: string, token: string, key: string, body?: unknown, headers: Record<string, string> = {}) {
  return h.request(method, path, { token, body, headers: { "idempotency-key": key, ...headers } });
}

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest();

/** The row key the database derives: SHA-256 of the caller, a zero byte and the key's SHA-256. */
function keyHash(who: string, key: string): string {
  return sha256(Buffer.concat([Buffer.from(who), Buffer.from([0]), sha256(Buffer.from(key))])).toString("hex");
}

function claimRow(db: Database, who: string, key: string) {
  return db.query<{ status: number | null; ciphertext: string | null; kek_version: number | null }>(
    `select status, encode(ciphertext, 'hex') as ciphertext, kek_version from private.idempotency_keys
      where key_hash = decode($1, 'hex')`,
    [keyHash(who, key)],
  );
}

async function versionCount(db: Database, secretId: string): Promise<number> {
  const [row] = await db.query<{ n: number }>(`select count(*)::int as n from public.secret_versions where secret_id = $1::uuid`, [secretId]);
  return row.n;
}

const replayed = (r: Reply) => r.headers.get("idempotent-replayed");

describe("the request transaction that asCaller and asOwner join", () => {
  const alicesContext = () => ({ role: "authenticated" as const, claims: { sub: alice.id, role: "authenticated" }, headers: {} });
  const setting = (name: string) => `coalesce(current_setting('${name}', true), '')`;

  it("gives each joined call its own role and claims, and rolls back only a call that failed", async () => {
    const seen = await inRequestTransaction(h.db, async () => {
      const asAlice = await asCaller(h.db, alicesContext(), (tx) =>
        tx.query<{ who: string; sub: string }>(`select current_user::text as who, ${setting("request.jwt.claims")}::text as sub`));
      // A call that changes something, then fails; its caller catches the failure.
      const failed = await asCaller(h.db, alicesContext(), async (tx) => {
        await tx.query(`select set_config('sigyl.test_marker', 'left behind', true)`);
        await tx.query(`select 1 / 0`);
      }).then(() => "ran", (err) => (err as { code?: string }).code);
      const asOwnerRow = await asOwner(h.db, null, (tx) =>
        tx.query<{ who: string; claims: string; marker: string }>(
          `select current_user::text as who, ${setting("request.jwt.claims")} as claims, ${setting("sigyl.test_marker")} as marker`));
      return { asAlice: asAlice[0], failed, asOwner: asOwnerRow[0] };
    });
    expect(seen.asAlice.who).toBe("authenticated");
    expect(JSON.parse(seen.asAlice.sub).sub).toBe(alice.id);
    expect(seen.failed).toBe("22012");
    // The owner call is the login again, with no caller's claims, and the failed call left nothing.
    expect(seen.asOwner.who).not.toBe("authenticated");
    expect(seen.asOwner.claims).toBe("");
    expect(seen.asOwner.marker).toBe("");
  });

  it("commits the joined calls together, or none of them", async () => {
    const s = await h.createSecret(alice);
    const describe = (d: string) => asCaller(h.db, alicesContext(), (tx) =>
      tx.query(`select * from private.update_secret($1::uuid, $2::text::jsonb)`, [s.id, JSON.stringify({ description: d })]));
    await expect(inRequestTransaction(h.db, async () => {
      await describe("first");
      await describe("second");
      throw new Error("the answer was an error");
    })).rejects.toThrow("the answer was an error");
    const [row] = await h.db.query<{ description: string }>(`select description from public.secrets where id = $1::uuid`, [s.id]);
    expect(row.description).not.toMatch(/first|second/);
    await inRequestTransaction(h.db, async () => {
      await describe("first");
      await describe("second");
    });
    const [after] = await h.db.query<{ description: string }>(`select description from public.secrets where id = $1::uuid`, [s.id]);
    expect(after.description).toBe("second");
  });
});

describe("a retried write with the same key", () => {
  it("returns the first answer and writes no second version or audit row", async () => {
    const s = await h.createSecret(alice);
    const key = newKey();
    const value = `v2-${crypto.randomUUID()}`;
    h.remember(value);
    const first = await keyed("PUT", `/${s.id}/value`, alice.token, key, { value });
    expect(first.status).toBe(200);
    expect(first.body.data.currentVersion).toBe(2);
    expect(replayed(first)).toBeNull();
    const versions = await versionCount(h.db, s.id);
    const audit = (await auditOf(h.db, s.id)).length;

    const again = await keyed("PUT", `/${s.id}/value`, alice.token, key, { value });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get("etag")).toBe(first.headers.get("etag"));
    expect(replayed(again)).toBe("true");
    expect(again.headers.get("x-request-id")).not.toBe(first.headers.get("x-request-id"));
    expect(await versionCount(h.db, s.id)).toBe(versions);
    expect((await auditOf(h.db, s.id)).length).toBe(audit);
  });

  it("creating a secret twice gives one secret and the same 201 with its Location", async () => {
    const key = newKey();
    const body = { name: `IDEM_${crypto.randomUUID().slice(0, 8)}`, value: `v-${crypto.randomUUID()}` };
    h.remember(body.value);
    const first = await keyed("POST", "", alice.token, key, body);
    expect(first.status).toBe(201);
    // The same body spelled another way (key order, spacing) is the same request.
    const respelled = JSON.stringify({ value: body.value, name: body.name }, null, 2);
    const again = await h.request("POST", "", {
      token: alice.token, rawBody: respelled, headers: { "idempotency-key": key, "content-type": "application/json" },
    });
    expect(again.status).toBe(201);
    expect(replayed(again)).toBe("true");
    expect(again.body.data.id).toBe(first.body.data.id);
    expect(again.headers.get("location")).toBe(first.headers.get("location"));
    const rows = await h.db.query(`select id from public.secrets where name = $1`, [body.name]);
    expect(rows).toHaveLength(1);
  });

  it("is ignored on reads", async () => {
    const s = await h.createSecret(alice);
    const key = newKey();
    const read = await h.request("GET", `/${s.id}`, { token: alice.token, headers: { "idempotency-key": key } });
    expect(read.status).toBe(200);
    expect(replayed(read)).toBeNull();
    expect(await claimRow(h.db, `user:${alice.id}`, key)).toEqual([]);
  });
});

describe("the same key with another request", () => {
  it("is refused with 422 and changes nothing, whatever differs", async () => {
    const s = await h.createSecret(alice);
    const key = newKey();
    const value = `v-${crypto.randomUUID()}`;
    h.remember(value);
    expect((await keyed("PUT", `/${s.id}/value`, alice.token, key, { value })).status).toBe(200);
    const before = await snapshot(h.db, s.id);
    const auditBefore = (await auditOf(h.db, s.id)).length;

    const other = `other-${crypto.randomUUID()}`;
    h.remember(other);
    const attempts = [
      keyed("PUT", `/${s.id}/value`, alice.token, key, { value: other }),
      keyed("PUT", `/${s.id}/value`, alice.token, key, { value, expectedVersion: 2 }),
      keyed("PUT", `/${s.id}/value`, alice.token, key, { value }, { "if-match": `"2"` }),
      keyed("PATCH", `/${s.id}`, alice.token, key, { description: "changed" }),
      keyed("DELETE", `/${s.id}`, alice.token, key),
    ];
    for (const res of attempts) {
      const r = await res;
      expect(r.status).toBe(422);
      expect(r.body.error.code).toBe("idempotency_key_reused");
    }
    expect(await snapshot(h.db, s.id)).toBe(before);
    expect((await auditOf(h.db, s.id)).length).toBe(auditBefore);
  });

  it("from another caller is another key: it runs", async () => {
    const s = await h.createSecret(alice);
    await h.grant(alice, s.id, bob, "write");
    const key = newKey();
    const [a, b] = [`a-${crypto.randomUUID()}`, `b-${crypto.randomUUID()}`];
    h.remember(a);
    h.remember(b);
    expect((await keyed("PUT", `/${s.id}/value`, alice.token, key, { value: a })).body.data.currentVersion).toBe(2);
    const bobs = await keyed("PUT", `/${s.id}/value`, bob.token, key, { value: b });
    expect(bobs.status).toBe(200);
    expect(replayed(bobs)).toBeNull();
    expect(bobs.body.data.currentVersion).toBe(3);
    expect(await versionCount(h.db, s.id)).toBe(3);
  });
});

it("concurrent duplicates make one change and all get its answer", async () => {
  const s = await h.createSecret(alice);
  const key = newKey();
  const value = `c-${crypto.randomUUID()}`;
  h.remember(value);
  const replies = await Promise.all([1, 2, 3].map(() => keyed("PUT", `/${s.id}/value`, alice.token, key, { value })));
  expect(replies.map((r) => r.status)).toEqual([200, 200, 200]);
  for (const r of replies) expect(r.body).toEqual(replies[0].body);
  expect(replies.filter((r) => replayed(r) === "true")).toHaveLength(2);
  expect(await versionCount(h.db, s.id)).toBe(2);
  expect((await auditOf(h.db, s.id)).filter((a) => a.action === "updated" || a.action === "rotated")).toHaveLength(1);
});

describe("an error answer", () => {
  it("stores nothing: the key is free again and a corrected request runs", async () => {
    const s = await h.createSecret(alice);
    const key = newKey();
    const value = `e-${crypto.randomUUID()}`;
    h.remember(value);
    const stale = await keyed("PUT", `/${s.id}/value`, alice.token, key, { value, expectedVersion: 7 });
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe("version_conflict");
    expect(await claimRow(h.db, `user:${alice.id}`, key)).toEqual([]);
    expect(await versionCount(h.db, s.id)).toBe(1);

    const fixed = await keyed("PUT", `/${s.id}/value`, alice.token, key, { value, expectedVersion: 1 });
    expect(fixed.status).toBe(200);
    expect(replayed(fixed)).toBeNull();
    expect(await versionCount(h.db, s.id)).toBe(2);
  });

  it("an invalid key is 400 and nothing runs", async () => {
    const s = await h.createSecret(alice);
    for (const bad of ["x".repeat(256), "two words", "naïve", "tab\there"]) {
      const r = await keyed("PATCH", `/${s.id}`, alice.token, bad, { description: "nope" });
      expect(r.status, bad).toBe(400);
      expect(r.body.error.code).toBe("idempotency_key_invalid");
    }
    expect((await h.request("GET", `/${s.id}`, { token: alice.token })).body.data.description).not.toBe("nope");
    expect((await keyed("PATCH", `/${s.id}`, alice.token, "k".repeat(255), { description: "ok" })).status).toBe(200);
  });
});

/** The database of `db`, whose next transactions commit and then report a dropped connection. */
function losingAnswers(db: Database) {
  let lose = 0;
  const wrapped: Database = {
    ...db,
    close: async () => {},
    transaction: async (fn) => {
      const result = await db.transaction(fn);
      if (lose > 0) {
        lose--;
        throw Object.assign(new Error("connection reset after the commit"), { code: "ECONNRESET" });
      }
      return result;
    },
  };
  return { db: wrapped, loseNext: () => void lose++ };
}

describe("a write whose commit went through but whose answer was lost", () => {
  let lossy: ReturnType<typeof losingAnswers>;
  let request: (method: string, path: string, body: unknown, headers?: Record<string, string>) => Promise<Reply>;
  beforeAll(async () => {
    lossy = losingAnswers(h.db);
    const runtime = await createRuntime({ config: loadConfig({}), db: lossy.db, clock: h.clock, log: () => {} });
    request = async (method, path, body, headers = {}) => {
      const res = await runtime.app.request(`/secrets${path}`, {
        method, body: JSON.stringify(body),
        headers: { authorization: `Bearer ${alice.token}`, "content-type": "application/json", ...headers },
      });
      return { status: res.status, body: await res.json(), headers: res.headers };
    };
  });

  it("is answered 503, and the retry with the key replays it instead of writing again", async () => {
    const s = await h.createSecret(alice);
    const key = newKey();
    const value = `lost-${crypto.randomUUID()}`;
    h.remember(value);
    lossy.loseNext();
    const first = await request("PUT", `/${s.id}/value`, { value }, { "idempotency-key": key });
    expect(first.status).toBe(503);
    expect(first.body.error.code).toBe("database_unavailable");
    expect(await versionCount(h.db, s.id)).toBe(2); // it did commit

    const retry = await request("PUT", `/${s.id}/value`, { value }, { "idempotency-key": key });
    expect(retry.status).toBe(200);
    expect(replayed(retry)).toBe("true");
    expect(retry.body.data.currentVersion).toBe(2);
    expect(await versionCount(h.db, s.id)).toBe(2);
  });

  it("without a key the same retry writes a second version (what the key prevents)", async () => {
    const s = await h.createSecret(alice);
    const value = `lost-${crypto.randomUUID()}`;
    h.remember(value);
    lossy.loseNext();
    expect((await request("PUT", `/${s.id}/value`, { value })).status).toBe(503);
    expect((await request("PUT", `/${s.id}/value`, { value })).status).toBe(200);
    expect(await versionCount(h.db, s.id)).toBe(3);
  });
});

describeOrSkip("the request deadline around a keyed write", needsPostgres, () => {
  it("covers the whole transaction: a write held past it answers 503, leaves nothing, and the retry runs", async () => {
    const url = process.env.DATABASE_URL!;
    const prepare = process.env.SIGYL_DB_PREPARE !== "false";
    const db = createPostgresDatabase(url, { max: 2, prepare, requestTimeoutMs: 1000 });
    const holder = createPostgresDatabase(url, { max: 1, prepare });
    try {
      const runtime = await createRuntime({ config: loadConfig({}), db, clock: h.clock, log: () => {} });
      const put = async (value: string, key: string) => {
        const res = await runtime.app.request(`/secrets/${s.id}/value`, {
          method: "PUT", body: JSON.stringify({ value }),
          headers: { authorization: `Bearer ${alice.token}`, "content-type": "application/json", "idempotency-key": key },
        });
        return { status: res.status, body: await res.json(), headers: res.headers } as Reply;
      };
      const s = await h.createSecret(alice);
      const key = newKey();
      const value = `d-${crypto.randomUUID()}`;
      h.remember(value);

      // Another transaction holds the secret's row: the write waits past its lock budget.
      let release!: () => void;
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => locked = r);
      const holding = holder.transaction(async (tx) => {
        await tx.query(`select 1 from public.secrets where id = $1::uuid for update`, [s.id]);
        locked();
        await new Promise<void>((r) => release = r);
      });
      await isLocked;
      const first = await put(value, key);
      release();
      await holding;
      expect(first.status).toBe(503);
      expect(first.body.error.code).toBe("database_unavailable");
      expect(await versionCount(h.db, s.id)).toBe(1);
      expect(await claimRow(h.db, `user:${alice.id}`, key)).toEqual([]);

      const retry = await put(value, key);
      expect(retry.status).toBe(200);
      expect(replayed(retry)).toBeNull();
      expect(await versionCount(h.db, s.id)).toBe(2);
      const again = await put(value, key);
      expect(replayed(again)).toBe("true");
      expect(await versionCount(h.db, s.id)).toBe(2);
    } finally {
      await db.close();
      await holder.close();
    }
  });
});

describe("what is stored", () => {
  it("only the key's hash, and the answer sealed: a new deployment token replays but is nowhere in the database", async () => {
    const [dep] = await h.db.query<{ id: string }>(
      `insert into public.deployments (user_id, name, required_env) values ($1::uuid, $2, '{}') returning id`,
      [alice.id, `mcp-${crypto.randomUUID().slice(0, 8)}`],
    );
    const key = newKey();
    h.remember(key);
    const first = await keyed("POST", `/deployments/${dep.id}/tokens`, alice.token, key, { ttlSeconds: 600 });
    expect(first.status).toBe(201);
    const token = first.body.data.token as string;
    h.remember(token);
    const again = await keyed("POST", `/deployments/${dep.id}/tokens`, alice.token, key, { ttlSeconds: 600 });
    expect(again.status).toBe(201);
    expect(again.body.data.token).toBe(token);
    expect(again.headers.get("cache-control")).toBe("no-store");
    const [{ n }] = await h.db.query<{ n: number }>(
      `select count(*)::int as n from private.deployment_tokens where deployment_id = $1::uuid`, [dep.id]);
    expect(n).toBe(1);

    const [row] = await claimRow(h.db, `user:${alice.id}`, key);
    expect(row.status).toBe(201);
    expect(row.ciphertext).not.toContain(Buffer.from('"success"').toString("hex"));
    // Neither the key nor the token, as text, hex or base64, in any table.
    expect(await h.findPlaintext()).toEqual([]);
  });

  it("an expired key counts as absent, and the purge removes expired keys only", async () => {
    const s = await h.createSecret(alice);
    const [oldKey, liveKey] = [newKey(), newKey()];
    const value = `p-${crypto.randomUUID()}`;
    h.remember(value);
    expect((await keyed("PATCH", `/${s.id}`, alice.token, oldKey, { description: "a" })).status).toBe(200);
    expect((await keyed("PATCH", `/${s.id}`, alice.token, liveKey, { description: "b" })).status).toBe(200);
    await h.db.query(`update private.idempotency_keys set expires_at = now() - interval '1 second' where key_hash = decode($1, 'hex')`,
      [keyHash(`user:${alice.id}`, oldKey)]);

    const purged = await h.db.query<{ n: number }>(`select private.purge_idempotency_keys() as n`);
    expect(purged[0].n).toBeGreaterThanOrEqual(1);
    expect(await claimRow(h.db, `user:${alice.id}`, oldKey)).toEqual([]);
    expect(await claimRow(h.db, `user:${alice.id}`, liveKey)).toHaveLength(1);
    // After expiry the key is new again: another request under it runs.
    const reused = await keyed("PUT", `/${s.id}/value`, alice.token, oldKey, { value });
    expect(reused.status).toBe(200);
    expect(replayed(reused)).toBeNull();
  });
});

describe("KEK rotation, whose work spans several transactions", () => {
  let k: Harness;
  beforeAll(async () => {
    k = await createHarness({ isolatedDatabase: true });
  });
  afterAll(async () => {
    await k?.close();
  });
  const rotate = async (key: string, body: unknown = {}) =>
    k.request("POST", "/admin/keys/rotate", { token: await k.serviceToken(), body, headers: { "idempotency-key": key } });
  const keyVersions = async () => (await k.db.query<{ n: number }>(`select count(*)::int as n from private.key_versions`))[0].n;

  it("runs at most once per key: a retry replays, and one without a stored answer is 409, never a new rotation", async () => {
    const owner = await k.user("owner");
    await k.createSecret(owner);
    const key = newKey();
    const first = await rotate(key);
    expect(first.status).toBe(200);
    expect(first.body.data.completed).toBe(true);
    const versions = await keyVersions();

    const again = await rotate(key);
    expect(again.status).toBe(200);
    expect(replayed(again)).toBe("true");
    expect(again.body).toEqual(first.body);
    expect(await keyVersions()).toBe(versions);

    expect((await rotate(key, { batchSize: 10 })).body.error.code).toBe("idempotency_key_reused");

    // As if the first call had stopped after its work but before storing its answer.
    await k.db.query(
      `update private.idempotency_keys set status = null, headers = null, enc_format = null, iv = null, ciphertext = null,
              wrapped_dek = null, kek_version = null where key_hash = decode($1, 'hex')`,
      [keyHash("service", key)],
    );
    const unknown = await rotate(key);
    expect(unknown.status).toBe(409);
    expect(unknown.body.error.code).toBe("idempotency_key_in_flight");
    expect(await keyVersions()).toBe(versions);
  });

  it("a retry after a rotation retired the KEK its answer was sealed under: 409, the write not done again", async () => {
    const owner = await k.user("retired-answer");
    const s = await k.createSecret(owner);
    const key = newKey();
    const value = `r-${crypto.randomUUID()}`;
    k.remember(value);
    const put = () => k.request("PUT", `/${s.id}/value`, { token: owner.token, body: { value }, headers: { "idempotency-key": key } });
    expect((await put()).status).toBe(200);
    expect((await rotate(newKey())).body.data.completed).toBe(true);
    const versions = await versionCount(k.db, s.id);
    const audit = (await k.db.query<{ n: number }>(`select count(*)::int as n from public.secret_access_logs where secret_id = $1`, [s.id]))[0].n;
    const again = await put();
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("idempotency_answer_unavailable");
    expect(await versionCount(k.db, s.id)).toBe(versions);
    expect((await k.db.query<{ n: number }>(`select count(*)::int as n from public.secret_access_logs where secret_id = $1`, [s.id]))[0].n).toBe(audit);
  });

  it(
    "a write whose KEK a rotation retired meanwhile is sealed again inside the same request transaction, once",
    // The keyring reload joins the request's transaction (asOwner), so this runs on PGlite's
    // one connection too.
    async () => {
      const owner = await k.user("stale");
      const s = await k.createSecret(owner);
      // An instance that loaded its keyring before the rotation below.
      const stale = await createRuntime({ config: loadConfig({}), db: k.db, clock: k.clock, log: () => {} });
      const before = stale.keyring.activeVersion;
      expect((await rotate(newKey())).body.data.completed).toBe(true);
      const key = newKey();
      const value = `r-${crypto.randomUUID()}`;
      k.remember(value);
      const put = async () => {
        const res = await stale.app.request(`/secrets/${s.id}/value`, {
          method: "PUT", body: JSON.stringify({ value }),
          headers: { authorization: `Bearer ${owner.token}`, "content-type": "application/json", "idempotency-key": key },
        });
        return { status: res.status, body: await res.json(), headers: res.headers } as Reply;
      };
      const first = await put();
      expect(first.status, JSON.stringify(first.body)).toBe(200);
      expect(stale.keyring.activeVersion).toBeGreaterThan(before);
      expect(await versionCount(k.db, s.id)).toBe(2);
      const again = await put();
      expect(replayed(again)).toBe("true");
      expect(await versionCount(k.db, s.id)).toBe(2);
    },
  );

  it("a single-transaction key route (retire) joins the request's transaction as the owner and replays", async () => {
    const [{ v }] = await k.db.query<{ v: number }>(`select min(version)::int as v from private.key_versions where status = 'retired'`);
    expect(v).not.toBeNull();
    const key = newKey();
    const retire = async () =>
      k.request("POST", `/admin/keys/${v}/retire`, { token: await k.serviceToken(), headers: { "idempotency-key": key } });
    const first = await retire();
    expect(first.status).toBe(200);
    expect(first.body.data.status).toBe("retired");
    const again = await retire();
    expect(replayed(again)).toBe("true");
    expect(again.body).toEqual(first.body);
    const [row] = await claimRow(k.db, "service", key);
    expect(row.status).toBe(200);
  });
});
