/**
 * KEK rotation end to end: a new KEK born in Vault, every DEK re-wrapped in batches while
 * values stay byte for byte the same, reads that never fail during it, resumption after an
 * interruption, retirement, other instances that catch up by themselves, the service-role
 * gate, and key material that never leaves the database.
 *
 * Also: a new wrapping is checked before it replaces the only copy of a DEK (a faulty wrap
 * stops the rotation and stores nothing), instances hold only active and retiring keys, and
 * the database counts every wrap per KEK (the 2^32 random-IV cap of NIST SP 800-38D).
 *
 * The tests run in order on one database and each starts from whatever key the previous one
 * left active. On PostgreSQL the suite takes a database of its own: a rotation changes the
 * keyring of everything that shares the database.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../shared/config.ts";
import { createRuntime } from "../../shared/runtime.ts";
import { auditOf, createHarness, type Harness, type TestUser } from "../helpers/harness.ts";
import { itOrSkip, needsPostgres, skipNow } from "../helpers/skip.ts";

interface KeyDto {
  version: number;
  status: "active" | "retiring" | "retired";
  createdAt: string;
  retiredAt: string | null;
  dekCount: number;
  wraps: number;
  nearWrapLimit: boolean;
}

let h: Harness;
let service: string;
let owner: TestUser;
/** Every response body of the suite, for the key-material scan at the end. */
const replies: string[] = [];

beforeAll(async () => {
  h = await createHarness({ isolatedDatabase: true });
  service = await h.serviceToken();
  owner = await h.user("owner");
});
afterAll(async () => {
  await h?.close();
});

async function call(method: string, path: string, opts: Parameters<Harness["request"]>[2] = {}) {
  const res = await h.request(method, path, opts);
  replies.push(JSON.stringify(res.body));
  return res;
}

const asService = (method: string, path: string, body?: unknown) => call(method, path, { token: service, body });
const rotate = (body?: unknown) => asService("POST", "/admin/keys/rotate", body);

async function keys(): Promise<KeyDto[]> {
  const res = await asService("GET", "/admin/keys");
  expect(res.status).toBe(200);
  return res.body.data;
}

const activeVersion = async () => (await keys()).find((k) => k.status === "active")!.version;

async function readValue(id: string, version?: number, token = owner.token) {
  const res = await call("GET", `/${id}/value${version ? `?version=${version}` : ""}`, { token });
  return { status: res.status, value: res.body?.data?.value as string | undefined };
}

async function putValue(id: string, value: string, token = owner.token) {
  h.remember(value);
  const res = await call("PUT", `/${id}/value`, { token, body: { value } });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.data as { currentVersion: number };
}

/** The stored envelope of some secrets' versions, as hex. */
function envelopes(ids: string[]) {
  return h.db.query<{ secret_id: string; version: number; iv: string; ciphertext: string; wrapped_dek: string; kek_version: number }>(
    `select secret_id, version, encode(iv, 'hex') as iv, encode(ciphertext, 'hex') as ciphertext,
            encode(wrapped_dek, 'hex') as wrapped_dek, kek_version
       from public.secret_versions where secret_id = any ($1::uuid[]) order by secret_id, version`,
    [ids],
  );
}

function keyRotatedRows() {
  return h.db.query<{ secret_id: string | null; actor_type: string; actor_id: string | null; version: number | null; details: any; request_id: string | null }>(
    `select secret_id, actor_type::text, actor_id, version, details, request_id
       from public.secret_access_logs where action = 'key_rotated' order by id`,
  );
}

/** All the values of some secrets, every version, keyed "id@version". */
async function readAll(secrets: { id: string; values: string[] }[]) {
  const out: Record<string, string | undefined> = {};
  for (const s of secrets) {
    for (let v = 1; v <= s.values.length; v++) out[`${s.id}@${v}`] = (await readValue(s.id, v)).value;
  }
  return out;
}

const expected = (secrets: { id: string; values: string[] }[]) =>
  Object.fromEntries(secrets.flatMap((s) => s.values.map((value, i) => [`${s.id}@${i + 1}`, value])));

/** Secrets with several versions each, all sealed under the active KEK. */
async function seed(count: number, versionsEach = 1) {
  const out: { id: string; values: string[] }[] = [];
  for (let i = 0; i < count; i++) {
    const s = await h.createSecret(owner);
    const values = [s.value];
    for (let v = 2; v <= versionsEach; v++) {
      const value = `v${v}-${crypto.randomUUID()}`;
      await putValue(s.id, value);
      values.push(value);
    }
    out.push({ id: s.id, values });
  }
  return out;
}

describe("KEK rotation", () => {
  it("values written under KEK 1 read identically after a rotation that changes only the wrapped DEKs", async () => {
    expect(await keys()).toEqual([
      { version: 1, status: "active", createdAt: expect.any(String), retiredAt: null, dekCount: 0, wraps: 0, nearWrapLimit: false },
    ]);
    const secrets = [...await seed(2, 3), ...await seed(3)];
    const ids = secrets.map((s) => s.id);
    const deks = secrets.reduce((n, s) => n + s.values.length, 0);
    const before = await envelopes(ids);
    expect(before.every((r) => r.kek_version === 1)).toBe(true);

    const res = await rotate({ batchSize: 2 });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      success: true,
      data: { fromVersion: 1, toVersion: 2, rewrapped: deks, remaining: 0, completed: true },
    });
    expect(res.headers.get("cache-control")).toBe("no-store");

    const after = await envelopes(ids);
    expect(after).toHaveLength(before.length);
    for (const [i, row] of after.entries()) {
      expect(row).toMatchObject({ secret_id: before[i].secret_id, version: before[i].version, kek_version: 2 });
      // The value's ciphertext and IV are untouched; only the wrapped DEK is new.
      expect(row.iv).toBe(before[i].iv);
      expect(row.ciphertext).toBe(before[i].ciphertext);
      expect(row.wrapped_dek).not.toBe(before[i].wrapped_dek);
    }
    expect(await readAll(secrets)).toEqual(expected(secrets));
    const versions = await call("GET", `/${ids[0]}/versions`, { token: owner.token });
    expect(versions.body.data.map((v: { kekVersion: number }) => v.kekVersion)).toEqual([2, 2, 2]);

    // KEK 1 made one wrap per version and keeps its count; KEK 2 one per re-wrap.
    const list = await keys();
    expect(list).toEqual([
      { version: 1, status: "retired", createdAt: expect.any(String), retiredAt: expect.any(String), dekCount: 0, wraps: deks, nearWrapLimit: false },
      { version: 2, status: "active", createdAt: expect.any(String), retiredAt: null, dekCount: deks, wraps: deks, nearWrapLimit: false },
    ]);
    expect(Date.parse(list[1].createdAt)).toBeGreaterThanOrEqual(Date.parse(list[0].createdAt));

    // Instances hold the active key only now: KEK 1 is left in Vault, not loaded.
    expect(h.runtime.keyring.versions).toEqual([2]);
    expect((await h.db.query<{ version: number }>(`select version from private.load_keyring()`)).map((r) => r.version)).toEqual([2]);

    // The new KEK lives in Vault under its name, like the first.
    const vault = await h.db.query<{ name: string }>(`select name from vault.secrets where name like 'sigyl_kek_v%' order by name`);
    expect(vault.map((r) => r.name)).toEqual(["sigyl_kek_v1", "sigyl_kek_v2"]);

    const audit = await keyRotatedRows();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      secret_id: null, actor_type: "service", actor_id: null, version: null,
      details: { fromVersion: 1, toVersion: 2, rewrapped: deks },
    });
    expect(audit[0].request_id).toBeTruthy();
    // The service role finds it in its audit view; a user does not.
    const view = await asService("GET", "/audit?action=key_rotated");
    expect(view.body.data.items.map((i: { details: unknown }) => i.details)).toEqual([{ fromVersion: 1, toVersion: 2, rewrapped: deks }]);
    expect((await call("GET", "/audit?action=key_rotated", { token: owner.token })).body.data.items).toEqual([]);

    // New values are sealed under the new key at once.
    const fresh = await h.createSecret(owner);
    expect((await envelopes([fresh.id]))[0].kek_version).toBe(2);
    expect((await readValue(fresh.id)).value).toBe(fresh.value);
  });

  it("value reads and writes running during a rotation in small batches never fail", async () => {
    const secrets = await seed(10, 2);
    const from = await activeVersion();
    const failures: string[] = [];
    let reads = 0;
    let readsDuringRotation = 0;
    let rotating = true;
    let rotationStarted = false;

    const reader = async () => {
      for (let i = 0; rotating; i++) {
        const s = secrets[(i * 7 + reads) % secrets.length];
        const version = (i % 2) + 1;
        const startedDuring = rotationStarted;
        const res = await readValue(s.id, version);
        reads++;
        if (startedDuring && rotating) readsDuringRotation++;
        if (res.status !== 200 || res.value !== s.values[version - 1]) failures.push(`${s.id}@${version}: ${res.status}`);
      }
    };
    const writes: string[] = [];
    const writer = async () => {
      while (rotating) {
        const value = `during-${crypto.randomUUID()}`;
        h.remember(value);
        const res = await call("PUT", `/${secrets[0].id}/value`, { token: owner.token, body: { value } });
        if (res.status !== 200) failures.push(`write: ${res.status} ${JSON.stringify(res.body)}`);
        else writes.push(value);
      }
    };

    const loops = [reader(), reader(), reader(), writer()];
    await new Promise((r) => setTimeout(r, 20));
    rotationStarted = true;
    const res = await rotate({ batchSize: 1 });
    rotating = false;
    await Promise.all(loops);

    expect(failures).toEqual([]);
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ fromVersion: from, toVersion: from + 1, remaining: 0, completed: true });
    expect(readsDuringRotation).toBeGreaterThan(0);
    expect(await readAll(secrets)).toEqual(expected(secrets));
    // What was written during the rotation reads back too, whichever key sealed it.
    const latest = await readValue(secrets[0].id);
    expect(latest.value).toBe(writes.at(-1) ?? secrets[0].values[1]);
    expect((await keys()).filter((k) => k.status !== "retired").map((k) => k.version)).toEqual([from + 1]);
  });

  it("a rotation interrupted half way keeps every value readable, then resumes and completes without a third key", async () => {
    const secrets = await seed(4, 2);
    const before = await keys();
    const from = before.find((k) => k.status === "active")!.version;
    const total = before.find((k) => k.version === from)!.dekCount;
    expect(total).toBeGreaterThanOrEqual(8);

    const first = await rotate({ batchSize: 2, maxBatches: 1 });
    expect(first.body.data).toEqual({ fromVersion: from, toVersion: from + 1, rewrapped: 2, remaining: total - 2, completed: false });
    let list = await keys();
    expect(list.filter((k) => k.version >= from)).toEqual([
      expect.objectContaining({ version: from, status: "retiring", retiredAt: null, dekCount: total - 2 }),
      expect.objectContaining({ version: from + 1, status: "active", dekCount: 2 }),
    ]);

    // Half way: values under either key read fine, and a new version goes under the new key.
    expect(await readAll(secrets)).toEqual(expected(secrets));
    const value = `mid-rotation-${crypto.randomUUID()}`;
    const put = await putValue(secrets[0].id, value);
    secrets[0].values.push(value);
    expect((await envelopes([secrets[0].id])).at(-1)).toMatchObject({ version: put.currentVersion, kek_version: from + 1 });

    // The old key cannot be retired while it wraps DEKs, nor the active one ever.
    const inUse = await asService("POST", `/admin/keys/${from}/retire`);
    expect(inUse.status).toBe(409);
    expect(inUse.body.error.code).toBe("key_in_use");
    const isActive = await asService("POST", `/admin/keys/${from + 1}/retire`);
    expect(isActive.status).toBe(409);
    expect(isActive.body.error.code).toBe("key_active");

    const second = await rotate({ batchSize: 2, maxBatches: 1 });
    expect(second.body.data).toEqual({ fromVersion: from, toVersion: from + 1, rewrapped: 2, remaining: total - 4, completed: false });
    const rest = await rotate({ batchSize: 2 });
    expect(rest.body.data).toEqual({ fromVersion: from, toVersion: from + 1, rewrapped: total - 4, remaining: 0, completed: true });

    list = await keys();
    expect(list.map((k) => k.version)).toEqual(before.map((k) => k.version).concat(from + 1));
    expect(list.find((k) => k.version === from)).toMatchObject({ status: "retired", dekCount: 0, retiredAt: expect.any(String) });
    expect(await readAll(secrets)).toEqual(expected(secrets));
    // One audit row for the whole rotation, counting what every call re-wrapped.
    expect((await keyRotatedRows()).filter((r) => r.details.toVersion === from + 1).map((r) => r.details)).toEqual([
      { fromVersion: from, toVersion: from + 1, rewrapped: total },
    ]);

    // Retiring a retired key changes nothing; an unknown or malformed version is refused.
    const again = await asService("POST", `/admin/keys/${from}/retire`);
    expect(again.status).toBe(200);
    expect(again.body.data).toEqual(list.find((k) => k.version === from));
    expect((await asService("POST", "/admin/keys/999/retire")).body.error.code).toBe("key_not_found");
    expect((await asService("POST", "/admin/keys/999/retire")).status).toBe(404);
    for (const bad of ["0", "-1", "abc", "1.5", "99999999999"]) {
      expect((await asService("POST", `/admin/keys/${bad}/retire`)).status, bad).toBe(400);
    }
  });

  it("a key that no longer wraps anything can be retired by hand, and the open rotation then completes", async () => {
    const [doomed] = await seed(1, 2);
    const from = await activeVersion();
    const total = (await keys()).find((k) => k.version === from)!.dekCount;
    const open = await rotate({ batchSize: 1, maxBatches: 1 });
    expect(open.body.data).toMatchObject({ fromVersion: from, toVersion: from + 1, completed: false });
    // Every DEK still under the old key goes away with its secret (a purge, as the job does).
    const left = await h.db.query<{ secret_id: string }>(
      `select distinct secret_id from public.secret_versions where kek_version = $1`, [from]);
    expect(left.length).toBeGreaterThan(0);
    expect(total).toBeGreaterThan(1);
    await h.db.query(`delete from public.secrets where id = any ($1::uuid[])`, [left.map((r) => r.secret_id)]);

    const retired = await asService("POST", `/admin/keys/${from}/retire`);
    expect(retired.status).toBe(200);
    expect(retired.body.data).toMatchObject({ version: from, status: "retired", dekCount: 0, retiredAt: expect.any(String) });

    const done = await rotate();
    expect(done.body.data).toEqual({ fromVersion: from, toVersion: from + 1, rewrapped: 0, remaining: 0, completed: true });
    expect((await keyRotatedRows()).at(-1)!.details).toEqual({ fromVersion: from, toVersion: from + 1, rewrapped: 1 });
    expect(left.map((r) => r.secret_id)).toContain(doomed.id);
  });

  it("another instance whose keyring predates the rotation reloads it once and keeps reading and writing", async () => {
    const config = loadConfig({});
    const log = (event: string, fields: Record<string, unknown>) => void h.logs.push(JSON.stringify({ event, ...fields }));
    const instance = async () => (await createRuntime({ config, db: h.db, clock: h.clock, log })).app;
    const ask = async (app: Awaited<ReturnType<typeof instance>>, method: string, path: string, body?: unknown) => {
      const res = await app.request(`/secrets${path}`, {
        method,
        headers: { authorization: `Bearer ${owner.token}`, ...(body ? { "content-type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      const parsed = await res.json();
      replies.push(JSON.stringify(parsed));
      return { status: res.status, body: parsed };
    };

    const [a, b, c] = await seed(3);
    const reader = await instance();
    const writer = await instance();
    const straggler = await instance();
    const from = await activeVersion();

    // While the rotation is open, the database takes new versions under the active key only
    // (private.check_sealed_value): an instance still on the old key is refused (kek_retired),
    // reloads and seals under the new one.
    expect((await rotate({ batchSize: 1, maxBatches: 1 })).body.data.completed).toBe(false);
    const early = `straggler-${crypto.randomUUID()}`;
    h.remember(early);
    expect((await ask(straggler, "PUT", `/${c.id}/value`, { value: early })).status).toBe(200);
    expect((await envelopes([c.id])).at(-1)!.kek_version).toBe(from + 1);
    expect((await rotate()).body.data).toMatchObject({ toVersion: from + 1, remaining: 0, completed: true });
    expect((await envelopes([c.id])).map((r) => r.kek_version)).toEqual([from + 1, from + 1]);
    expect((await readValue(c.id)).value).toBe(early);

    // The reader meets KEK from+1, which it does not hold: it reloads and answers, with one audit row.
    const accessedBefore = (await auditOf(h.db, a.id)).filter((r) => r.action === "accessed").length;
    const read = await ask(reader, "GET", `/${a.id}/value`);
    expect(read).toMatchObject({ status: 200, body: { data: { value: a.values[0] } } });
    expect((await auditOf(h.db, a.id)).filter((r) => r.action === "accessed")).toHaveLength(accessedBefore + 1);

    // The writer's active key is retired now: the insert is refused, it reloads and seals again.
    const value = `after-rotation-${crypto.randomUUID()}`;
    h.remember(value);
    const put = await ask(writer, "PUT", `/${b.id}/value`, { value });
    expect(put.status).toBe(200);
    expect(put.body.data.currentVersion).toBe(2);
    expect((await envelopes([b.id])).at(-1)).toMatchObject({ version: 2, kek_version: from + 1 });
    expect((await readValue(b.id)).value).toBe(value);
    expect((await ask(writer, "GET", `/${b.id}/value`)).body.data.value).toBe(value);
    expect((await auditOf(h.db, b.id)).filter((r) => r.action === "rotated")).toHaveLength(1);
  });

  it("refuses, in the database, a version written or re-wrapped under a retired KEK", async () => {
    const [s] = await seed(1);
    const retired = (await keys()).find((k) => k.status === "retired")!.version;
    await expect(h.db.query(
      `insert into public.secret_versions (secret_id, version, iv, ciphertext, wrapped_dek, kek_version)
       values ($1::uuid, 99, extensions.gen_random_bytes(12), extensions.gen_random_bytes(33), extensions.gen_random_bytes(60), $2)`,
      [s.id, retired],
    )).rejects.toThrow(/kek_retired/);
    await expect(h.db.query(`update public.secret_versions set kek_version = $2 where secret_id = $1::uuid`, [s.id, retired]))
      .rejects.toThrow(/kek_retired/);
    expect((await readValue(s.id)).value).toBe(s.values[0]);
  });

  it("two rotation calls at once create one key between them and one audit row", async () => {
    await seed(3);
    const before = await keys();
    const from = before.find((k) => k.status === "active")!.version;
    const audits = (await keyRotatedRows()).length;
    const [x, y] = await Promise.all([rotate({ batchSize: 1 }), rotate({ batchSize: 1 })]);
    expect([x.status, y.status]).toEqual([200, 200]);
    expect([x.body.data.toVersion, y.body.data.toVersion]).toEqual([from + 1, from + 1]);
    // Whichever finishes last completes it; if both stopped early (rows the other held), one more call does.
    const last = !x.body.data.completed && !y.body.data.completed ? (await rotate()).body.data : null;
    if (last) expect(last).toMatchObject({ toVersion: from + 1, completed: true });
    expect(x.body.data.rewrapped + y.body.data.rewrapped + (last?.rewrapped ?? 0))
      .toBe(before.find((k) => k.version === from)!.dekCount);
    expect((await keys()).map((k) => k.version)).toEqual([...before.map((k) => k.version), from + 1]);
    expect(await keyRotatedRows()).toHaveLength(audits + 1);
  });

  it("is for the service role only: a user gets 403, no token 401, and nothing changes", async () => {
    const before = await keys();
    const user = await h.user("plain");
    const routes: [string, string, unknown?][] = [
      ["GET", "/admin/keys"],
      ["POST", "/admin/keys/rotate", { batchSize: 10 }],
      ["POST", `/admin/keys/${before[0].version}/retire`],
    ];
    for (const [method, path, body] of routes) {
      const asUser = await call(method, path, { token: user.token, body });
      expect(asUser.status, `${method} ${path}`).toBe(403);
      expect(asUser.body.error.code).toBe("forbidden");
      const anonymous = await call(method, path, { token: null, body });
      expect(anonymous.status, `${method} ${path}`).toBe(401);
      expect(anonymous.body.error.code).toBe("unauthenticated");
    }
    expect(await keys()).toEqual(before);
    expect((await asService("GET", "/admin/keys")).status).toBe(200);
  });

  it("rejects a malformed rotation body with 400 and rotates nothing", async () => {
    const before = await keys();
    for (const body of [{ batchSize: 0 }, { batchSize: 5001 }, { batchSize: 1.5 }, { batchSize: "10" }, { maxBatches: 0 }, { force: true }]) {
      const res = await rotate(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe("invalid_request");
    }
    expect((await call("POST", "/admin/keys/rotate", { token: service, rawBody: "{", headers: { "content-type": "application/json" } })).status).toBe(400);
    expect(await keys()).toEqual(before);
  });

  it("skips and logs a DEK that does not unwrap; its key stays in use until the row is dealt with", async () => {
    const [good, bad] = await seed(2);
    const from = await activeVersion();
    // Tamper with one wrapped DEK, as an attacker with database access might.
    await h.db.query(
      `update public.secret_versions set wrapped_dek = set_byte(wrapped_dek, 20, (get_byte(wrapped_dek, 20) + 1) % 256)
        where secret_id = $1::uuid`, [bad.id]);
    const logsBefore = h.logs.length;

    const res = await rotate({ batchSize: 1 });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ fromVersion: from, toVersion: from + 1, remaining: 1, completed: false });
    const failed = h.logs.slice(logsBefore).map((l) => JSON.parse(l)).filter((l) => l.event === "rewrap_failed");
    expect(failed).toEqual([{ event: "rewrap_failed", secretId: bad.id, version: 1, kekVersion: from }]);
    expect((await keys()).find((k) => k.version === from)).toMatchObject({ status: "retiring", dekCount: 1 });
    expect((await asService("POST", `/admin/keys/${from}/retire`)).body.error.code).toBe("key_in_use");
    expect((await readValue(good.id)).value).toBe(good.values[0]);
    expect((await readValue(bad.id)).status).toBe(500);

    // Once the tampered version is gone (its secret purged), the same rotation completes.
    await h.db.query(`delete from public.secrets where id = $1::uuid`, [bad.id]);
    expect((await rotate()).body.data).toEqual({ fromVersion: from, toVersion: from + 1, rewrapped: 0, remaining: 0, completed: true });
  });

  it("stops a rotation whose new wrapping fails its check: nothing stored, every secret still reads", async () => {
    const secrets = await seed(3, 2);
    const from = await activeVersion();
    const stored = () => h.db.query<{ secret_id: string; version: number; wrapped_dek: string; kek_version: number }>(
      `select secret_id, version, encode(wrapped_dek, 'hex') as wrapped_dek, kek_version
         from public.secret_versions order by secret_id, version`);
    const before = await stored();
    expect(before.every((r) => r.kek_version === from)).toBe(true);
    const fromBefore = (await keys()).find((k) => k.version === from)!;
    const audits = (await keyRotatedRows()).length;
    const logsBefore = h.logs.length;

    // A faulty wrap (the re-wrap seals the DEK's bytes with encrypt): every blob it returns
    // has one bit flipped.
    const real = crypto.subtle.encrypt.bind(crypto.subtle);
    const spy = vi.spyOn(crypto.subtle, "encrypt").mockImplementation(async (...args) => {
      const out = new Uint8Array(await real(...args));
      out[20] ^= 1;
      return out.buffer;
    });
    let res: Awaited<ReturnType<typeof rotate>>;
    let faultyWraps: number;
    try {
      res = await rotate({ batchSize: 2 });
    } finally {
      faultyWraps = spy.mock.calls.length;
      spy.mockRestore();
    }
    expect(faultyWraps).toBeGreaterThan(0);
    expect(res.status).toBe(500);
    expect(res.body.error).toEqual({
      code: "rewrap_unverified",
      message: "A re-wrapped DEK did not unwrap to the same key; the rotation stopped and stored nothing of that batch.",
      requestId: expect.any(String),
    });

    // Nothing stored: every wrapped DEK byte for byte, no wrap counted, no audit row.
    expect(await stored()).toEqual(before);
    const list = await keys();
    expect(list.find((k) => k.version === from)).toEqual({ ...fromBefore, status: "retiring" });
    expect(list.find((k) => k.version === from + 1)).toMatchObject({ status: "active", dekCount: 0, wraps: 0 });
    expect(await keyRotatedRows()).toHaveLength(audits);
    const unverified = h.logs.slice(logsBefore).map((l) => JSON.parse(l)).filter((l) => l.event === "rewrap_unverified" && l.secretId);
    expect(unverified.length).toBeGreaterThan(0);
    for (const line of unverified) {
      expect(line).toEqual({ event: "rewrap_unverified", secretId: expect.any(String), version: expect.any(Number), kekVersion: from, toVersion: from + 1 });
    }
    expect(await readAll(secrets)).toEqual(expected(secrets));

    // With an honest wrap the same rotation resumes and completes.
    const done = await rotate();
    expect(done.body.data).toEqual({ fromVersion: from, toVersion: from + 1, rewrapped: before.length, remaining: 0, completed: true });
    expect(await readAll(secrets)).toEqual(expected(secrets));
  });

  it("refuses in the database a re-wrap batch that cannot be one, storing none of it", async () => {
    await seed(2);
    const from = await activeVersion();
    expect((await rotate({ batchSize: 1, maxBatches: 1 })).body.data.completed).toBe(false);
    // A version the one batch left under the old key.
    const [row] = await h.db.query<{ secret_id: string; version: number; wrapped_dek: string }>(
      `select secret_id, version, encode(wrapped_dek, 'base64') as wrapped_dek from public.secret_versions
        where kek_version = $1 order by secret_id, version limit 1`, [from]);
    expect(row).toBeDefined();
    const { secret_id: id, version } = row;
    const fresh = Buffer.from(crypto.getRandomValues(new Uint8Array(60))).toString("base64");
    const payloads = {
      "the old blob again": [{ secret_id: id, version, from_version: from, wrapped_dek: row.wrapped_dek }],
      "a short blob": [{ secret_id: id, version, from_version: from, wrapped_dek: fresh.slice(0, 40) }],
      "no blob": [{ secret_id: id, version, from_version: from }],
      "a row not under that key": [{ secret_id: id, version, from_version: from + 1, wrapped_dek: fresh }],
      "a version that does not exist": [
        { secret_id: id, version, from_version: from, wrapped_dek: fresh },
        { secret_id: id, version: 999, from_version: from, wrapped_dek: fresh },
      ],
    };
    const snapshot = () => h.db.query(`select encode(wrapped_dek, 'hex') as w, kek_version from public.secret_versions where secret_id = $1::uuid order by version`, [id]);
    const wrapsOf = async () => (await keys()).find((k) => k.version === from + 1)!.wraps;
    const [before, wrapsBefore, valueBefore] = [await snapshot(), await wrapsOf(), await readValue(id, version)];
    expect(valueBefore.status).toBe(200);
    for (const [name, payload] of Object.entries(payloads)) {
      await expect(h.db.query(`select private.store_rewrapped($1::int, $2::text::jsonb)`, [from + 1, JSON.stringify(payload)]), name)
        .rejects.toThrow(/^rewrap_unverified$/);
    }
    expect(await snapshot()).toEqual(before);
    expect(await wrapsOf()).toBe(wrapsBefore);
    expect(await readValue(id, version)).toEqual(valueBefore);
    expect((await rotate()).body.data).toMatchObject({ remaining: 0, completed: true });
  });

  it("counts every stored wrap per KEK, not a refused write, keeps the count past a purge, and warns from 2^30", async () => {
    const from = await activeVersion();
    const key = async (v: number) => (await keys()).find((k) => k.version === v)!;
    const start = await key(from);

    // Three wraps: a new secret, a new version, a roll-back (which seals a fresh DEK).
    const s = await h.createSecret(owner);
    await putValue(s.id, `second-${crypto.randomUUID()}`);
    expect((await call("POST", `/${s.id}/versions/1/restore`, { token: owner.token, body: {} })).status).toBe(200);
    // A refused write stores no wrapping and counts none.
    const stale = await call("PUT", `/${s.id}/value`, { token: owner.token, body: { value: `stale-${crypto.randomUUID()}`, expectedVersion: 1 } });
    expect(stale.status).toBe(409);
    expect(await key(from)).toMatchObject({ wraps: start.wraps + 3, dekCount: start.dekCount + 3 });

    // The purge deletes the versions, not the count.
    await h.db.query(`delete from public.secrets where id = $1::uuid`, [s.id]);
    expect(await key(from)).toMatchObject({ wraps: start.wraps + 3, dekCount: start.dekCount });

    // One wrap short of 2^30: no warning. The wrap that reaches it: the flag and one log line per listing.
    await h.db.query(
      `insert into private.kek_wrap_counts as c (kek_version, shard, wraps) values ($1, 63, $2)
       on conflict (kek_version, shard) do update set wraps = c.wraps + excluded.wraps`,
      [from, 2 ** 30 - 1 - (start.wraps + 3)]);
    let logsBefore = h.logs.length;
    expect(await key(from)).toMatchObject({ wraps: 2 ** 30 - 1, nearWrapLimit: false });
    expect(h.logs.slice(logsBefore).filter((l) => l.includes("kek_wrap_limit_near"))).toEqual([]);
    await h.createSecret(owner);
    logsBefore = h.logs.length;
    expect(await key(from)).toMatchObject({ status: "active", wraps: 2 ** 30, nearWrapLimit: true });
    expect(h.logs.slice(logsBefore).map((l) => JSON.parse(l)).filter((l) => l.event === "kek_wrap_limit_near")).toEqual([
      { event: "kek_wrap_limit_near", kekVersion: from, status: "active", wraps: 2 ** 30, limit: 2 ** 32 },
    ]);

    // A rotation: the new key counts its re-wraps; the old keeps its count, and once retired is not logged.
    const rotated = await rotate();
    expect(rotated.body.data).toMatchObject({ completed: true });
    logsBefore = h.logs.length;
    const after = await keys();
    expect(after.find((k) => k.version === from)).toMatchObject({ status: "retired", wraps: 2 ** 30, nearWrapLimit: true });
    expect(after.find((k) => k.version === from + 1)).toMatchObject({ status: "active", wraps: rotated.body.data.rewrapped, nearWrapLimit: false });
    // Counted on the rotation's own row, which no writer of new wrappings locks: a batch that
    // holds it until its commit keeps no request waiting.
    expect(await h.db.query(`select shard, wraps::int as wraps from private.kek_wrap_counts where kek_version = $1`, [from + 1]))
      .toEqual([{ shard: 64, wraps: rotated.body.data.rewrapped }]);
    expect(h.logs.slice(logsBefore).filter((l) => l.includes("kek_wrap_limit_near"))).toEqual([]);
  });

  itOrSkip("counts wraps without queueing writers: one holding its transaction open does not hold up another", needsPostgres, async (ctx) => {
    const [a, b] = await seed(2);
    const kek = await activeVersion();
    const insertVersion = (tx: { query: Harness["db"]["query"] }, id: string) => tx.query(
      `insert into public.secret_versions (secret_id, version, iv, ciphertext, wrapped_dek, kek_version)
       values ($1::uuid, 50, extensions.gen_random_bytes(12), extensions.gen_random_bytes(33), extensions.gen_random_bytes(60), $2)`,
      [id, kek]);
    const shardOf = async (tx: { query: Harness["db"]["query"] }) =>
      Number((await tx.query<{ shard: number }>(`select pg_backend_pid() % 64 as shard`))[0].shard);
    const wrapsBefore = (await keys()).find((k) => k.version === kek)!.wraps;

    // The holder inserts a version (so adds to its counter row) and keeps its transaction open.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let holding!: (shard: number) => void;
    const held = new Promise<number>((r) => (holding = r));
    const holder = h.db.transaction(async (tx) => {
      await insertVersion(tx, a.id);
      holding(await shardOf(tx));
      await released;
      throw new Error("rollback");
    }).catch(() => {});
    const holderShard = await held;

    let outcome: string | null = null;
    try {
      // Another writer, on a backend whose counter row is not the holder's, is not held up.
      for (let attempt = 0; attempt < 8 && outcome === null; attempt++) {
        outcome = await h.db.transaction(async (tx) => {
          if (await shardOf(tx) === holderShard) return null;
          await tx.query(`set local lock_timeout = '5s'`);
          await insertVersion(tx, b.id);
          throw new Error("inserted");
        }).catch((e: Error) => e.message);
      }
    } finally {
      release();
      await holder;
    }
    if (outcome === null) skipNow(ctx, "every pooled backend shared the holder's counter row");
    expect(outcome).toBe("inserted");
    // Both rolled back: nothing counted.
    expect((await keys()).find((k) => k.version === kek)!.wraps).toBe(wrapsBefore);
  });

  it("answers a version left under a retired KEK (possible only by hand) with 500 decryption_failed, naming the KEK in the log only", async () => {
    const secrets = await seed(2);
    const from = await activeVersion();
    expect((await rotate({ batchSize: 1, maxBatches: 1 })).body.data.completed).toBe(false);
    const [left] = await h.db.query<{ secret_id: string; version: number }>(
      `select secret_id, version from public.secret_versions where kek_version = $1 and secret_id = any ($2::uuid[]) limit 1`,
      [from, secrets.map((x) => x.id)]);
    expect(left).toBeDefined();
    // Past retire_key's check, as only someone editing the table by hand could.
    await h.db.query(`update private.key_versions set status = 'retired', retired_at = now() where version = $1`, [from]);
    const lines: Record<string, unknown>[] = [];
    try {
      expect((await h.db.query<{ version: number }>(`select version from private.load_keyring()`)).map((r) => r.version)).toEqual([from + 1]);
      const log = (event: string, fields: Record<string, unknown>) => void lines.push({ event, ...fields });
      const fresh = await createRuntime({ config: loadConfig({}), db: h.db, clock: h.clock, log });
      expect(fresh.keyring.versions).toEqual([from + 1]);
      const res = await fresh.app.request(`/secrets/${left.secret_id}/value?version=${left.version}`, {
        headers: { authorization: `Bearer ${owner.token}` },
      });
      const body = await res.json();
      replies.push(JSON.stringify(body), ...lines.map((l) => JSON.stringify(l)));
      expect(res.status).toBe(500);
      expect(body).toEqual({
        success: false,
        error: { code: "decryption_failed", message: "The value could not be decrypted.", requestId: expect.any(String) },
      });
      expect(lines).toContainEqual({
        event: "decryption_failed", secretId: left.secret_id, version: left.version, kekVersion: from, reason: "kek_not_loaded",
      });
    } finally {
      await h.db.query(`update private.key_versions set status = 'retiring', retired_at = null where version = $1`, [from]);
    }
    expect((await rotate()).body.data).toMatchObject({ remaining: 0, completed: true });
    expect(await readAll(secrets)).toEqual(expected(secrets));
  });

  it("reads through the new wrapping right after a rotation, though the old one's DEK is cached", async () => {
    const [s] = await seed(1);
    // Read twice: the DEK unwrapped from the current wrapping is in the instance's cache.
    for (let i = 0; i < 2; i++) expect(await readValue(s.id)).toEqual({ status: 200, value: s.values[0] });
    const from = await activeVersion();
    expect((await rotate()).body.data).toMatchObject({ fromVersion: from, toVersion: from + 1, completed: true });
    const [row] = await envelopes([s.id]);
    expect(row.kek_version).toBe(from + 1);
    expect(await readValue(s.id)).toEqual({ status: 200, value: s.values[0] });
    // Break the new wrapping: if the cached DEK of the old one were used, the read would still succeed.
    await h.db.transaction(async (tx) => {
      await tx.query(`set local session_replication_role = replica`);
      await tx.query(`update public.secret_versions set wrapped_dek = set_byte(wrapped_dek, 20, get_byte(wrapped_dek, 20) # 1) where secret_id = $1::uuid`, [s.id]);
    });
    try {
      expect((await readValue(s.id)).status).toBe(500);
    } finally {
      await h.db.transaction(async (tx) => {
        await tx.query(`set local session_replication_role = replica`);
        await tx.query(`update public.secret_versions set wrapped_dek = set_byte(wrapped_dek, 20, get_byte(wrapped_dek, 20) # 1) where secret_id = $1::uuid`, [s.id]);
      });
    }
    expect(await readValue(s.id)).toEqual({ status: 200, value: s.values[0] });
  });

  it("never returns, logs or stores outside Vault the KEK material or its Vault row", async () => {
    // Every route once more, so the scan covers them all.
    await call("GET", "/health");
    await keys();
    await rotate({ batchSize: 5000 });
    // Every KEK ever made, retired ones included (load_keyring gives only those in use).
    const materials = await h.db.query<{ version: number; material: string }>(
      `select k.version, s.decrypted_secret as material
         from private.key_versions k join vault.decrypted_secrets s on s.id = k.vault_secret_id`);
    expect(materials.length).toBeGreaterThanOrEqual(5);
    const vaultIds = (await h.db.query<{ id: string }>(`select vault_secret_id::text as id from private.key_versions`)).map((r) => r.id);
    const needles = materials.flatMap(({ material }) => {
      const raw = Buffer.from(material, "base64");
      return [material, raw.toString("hex"), raw.toString("base64url"), raw.toString("latin1")];
    }).concat(vaultIds);
    const haystacks = [...replies, ...h.logs];
    expect(haystacks.length).toBeGreaterThan(100);
    for (const needle of needles) {
      expect(haystacks.filter((text) => text.includes(needle))).toEqual([]);
    }
    // The key list carries exactly the documented fields.
    for (const key of await keys()) {
      expect(Object.keys(key).sort()).toEqual(["createdAt", "dekCount", "nearWrapLimit", "retiredAt", "status", "version", "wraps"]);
    }
    // close() also scans every table outside Vault for these.
    for (const { material } of materials) h.remember(material);
  });
});
