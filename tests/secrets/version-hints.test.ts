/**
 * A new version sealed before its transaction, from the version the caller expects or the one
 * this instance last saw: one statement when the version is right, the same outcome as the
 * locking path when it is not (another instance wrote meanwhile), and never a version skipped,
 * doubled or left without its audit row.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../shared/config.ts";
import type { Database, Queryable } from "../../shared/db/database.ts";
import { createRuntime } from "../../shared/runtime.ts";
import { auditOf, createHarness, type Harness, type TestUser } from "../helpers/harness.ts";

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h?.close();
});

/** The function's database, recording the statements each transaction sends. */
function recording(db: Database) {
  const transactions: string[][] = [];
  const wrap = (tx: Queryable, log: string[]): Queryable => ({
    ...tx,
    query: (text, params) => {
      log.push(text.replace(/\s+/g, " ").trim());
      return tx.query(text, params);
    },
    exec: (sql) => tx.exec(sql),
    savepoint: tx.savepoint && ((fn) => tx.savepoint!((inner) => fn(wrap(inner, log)))),
  });
  const recorded: Database = {
    ...db,
    query: (text, params) => db.query(text, params),
    exec: (sql) => db.exec(sql),
    close: () => db.close(),
    transaction: (fn) =>
      db.transaction((tx) => {
        const log: string[] = [];
        transactions.push(log);
        return fn(wrap(tx, log));
      }),
  };
  return { db: recorded, transactions };
}

/** A second instance of the function on the same database, as another hosted instance would be. */
async function otherInstance() {
  const runtime = await createRuntime({ config: loadConfig({}), db: h.apiDb, clock: h.clock, log: () => {} });
  return (method: string, path: string, token: string, body?: unknown) =>
    runtime.app.request(`/secrets${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
}

const versionsOf = (id: string) =>
  h.db.query<{ version: number }>(`select version from public.secret_versions where secret_id = $1::uuid order by version`, [id]);
/** A value found nowhere else (the plaintext scan searches every table for it). */
const unique = (label: string) => `${label} ${crypto.randomUUID()}`;
const rotatedRows = async (id: string) => (await auditOf(h.db, id)).filter((a) => a.action === "rotated");

async function putValue(owner: TestUser, id: string, value: string, body: Record<string, unknown> = {}) {
  h.remember(value);
  return await h.request("PUT", `/${id}/value`, { token: owner.token, body: { value, ...body } });
}

describe("new versions sealed before the transaction", () => {
  it("stores a version the instance already knows the number of in one statement", async () => {
    const { db, transactions } = recording(h.apiDb);
    const runtime = await createRuntime({ config: loadConfig({}), db, clock: h.clock, log: () => {} });
    const owner = await h.user("owner");
    const call = (method: string, path: string, body?: unknown) =>
      runtime.app.request(`/secrets${path}`, {
        method,
        headers: { authorization: `Bearer ${owner.token}`, "content-type": "application/json" },
        body: body ? JSON.stringify(body) : undefined,
      });
    const [first, second] = [unique("first"), unique("second")];
    h.remember(first);
    h.remember(second);
    const created = await (await call("POST", "", { name: `HINTED_${crypto.randomUUID().slice(0, 8)}`, value: first })).json();
    transactions.length = 0;
    const put = await call("PUT", `/${created.data.id}/value`, { value: second });
    expect(put.status).toBe(200);
    expect((await put.json()).data.currentVersion).toBe(2);
    // One transaction, whose only statement (after the caller's context) writes the version.
    expect(transactions).toHaveLength(1);
    const statements = transactions[0].filter((t) => !t.startsWith("select set_config("));
    expect(statements).toHaveLength(1);
    expect(statements[0]).toContain("private.put_value(");
  });

  it("adds the next version after another instance's write it never saw, with one audit row each", async () => {
    const owner = await h.user("owner");
    const s = await h.createSecret(owner); // this instance now believes version 1 is current
    const other = await otherInstance();
    const [there, here] = [unique("written elsewhere"), unique("written here after")];
    h.remember(there);
    const elsewhere = await other("PUT", `/${s.id}/value`, owner.token, { value: there });
    expect(elsewhere.status).toBe(200);

    const res = await putValue(owner, s.id, here);
    expect(res.status).toBe(200);
    expect(res.body.data.currentVersion).toBe(3);
    expect((await versionsOf(s.id)).map((v) => v.version)).toEqual([1, 2, 3]);
    expect((await rotatedRows(s.id)).map((a) => a.version)).toEqual([2, 3]);
    // Each version opens to its own value: nothing was sealed for the wrong version.
    for (const [v, value] of [[1, s.value], [2, there], [3, here]] as const) {
      const read = await h.request("GET", `/${s.id}/value?version=${v}`, { token: owner.token });
      expect(read.body.data.value).toBe(value);
    }
  });

  it("answers a stale expectedVersion 409 and writes nothing, whatever the instance believed", async () => {
    const owner = await h.user("owner");
    const s = await h.createSecret(owner);
    expect((await putValue(owner, s.id, unique("second"))).status).toBe(200);
    const before = { versions: await versionsOf(s.id), rotated: (await rotatedRows(s.id)).length };

    for (const expectedVersion of [0, 1, 3]) {
      const res = await putValue(owner, s.id, unique("never stored"), { expectedVersion });
      expect(res.status, `expectedVersion ${expectedVersion}`).toBe(409);
      expect(res.body.error.code).toBe("version_conflict");
    }
    expect(await versionsOf(s.id)).toEqual(before.versions);
    expect((await rotatedRows(s.id)).length).toBe(before.rotated);
    expect((await putValue(owner, s.id, unique("third"), { expectedVersion: 2 })).body.data.currentVersion).toBe(3);
  });

  it("keeps every version once when writers on two instances race on one secret", async () => {
    const owner = await h.user("owner");
    const s = await h.createSecret(owner);
    const other = await otherInstance();
    const values = Array.from({ length: 12 }, (_, i) => unique(`racing value ${i}`));
    values.forEach((v) => h.remember(v));
    const answers = await Promise.all(values.map((value, i) =>
      i % 2 ? other("PUT", `/${s.id}/value`, owner.token, { value }).then((r) => r.status) : putValue(owner, s.id, value).then((r) => r.status)
    ));
    expect(answers.every((status) => status === 200)).toBe(true);
    expect((await versionsOf(s.id)).map((v) => v.version)).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
    expect((await rotatedRows(s.id)).map((a) => a.version).sort((a, b) => a! - b!)).toEqual(Array.from({ length: 12 }, (_, i) => i + 2));
  });

  it("refuses a writer the secret's grants do not allow, with or without a version known", async () => {
    const owner = await h.user("owner");
    const reader = await h.user("reader");
    const s = await h.createSecret(owner);
    await h.grant(owner, s.id, reader, "read");
    // The reader learns the current version (a hint for this instance), then tries to write.
    expect((await h.request("GET", `/${s.id}`, { token: reader.token })).status).toBe(200);
    for (const body of [{}, { expectedVersion: 1 }]) {
      const res = await h.request("PUT", `/${s.id}/value`, { token: reader.token, body: { value: unique("not allowed"), ...body } });
      expect(res.status).toBe(403);
    }
    expect((await versionsOf(s.id)).map((v) => v.version)).toEqual([1]);
  });
});
