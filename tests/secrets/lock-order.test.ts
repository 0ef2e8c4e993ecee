/**
 * Permission before lock: a caller who may not change a secret must never take, or queue for,
 * its row lock, or anyone with an id could make the owner's writes wait. Needs two
 * connections, so PostgreSQL only (PGlite has one).
 */
import { afterAll, beforeAll, expect } from "vitest";
import { createHarness, type Harness, type TestUser } from "../helpers/harness.ts";
import { describeOrSkip, itOrSkip, needsPostgres } from "../helpers/skip.ts";

/**
 * "At once" on a loaded machine: a call that queues for the lock never answers before the
 * holder lets go (after this), so a generous bound still tells the two apart.
 */
const AT_ONCE_MS = 8000;

let h: Harness;

/** Runs `fn` in a transaction acting as `user`, as the function does for its requests. */
function asUser<T>(user: TestUser, fn: (tx: { query: Harness["db"]["query"] }) => Promise<T>): Promise<T> {
  return h.db.transaction(async (tx) => {
    await tx.query(`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)`,
      [JSON.stringify({ sub: user.id, role: "authenticated" })]);
    return fn(tx);
  });
}

/** The error message of `private.lock_secret_for(id, level)` called as `user`, or null. */
function lockAs(user: TestUser, id: string, level: string): Promise<string | null> {
  return asUser(user, (tx) => tx.query(`select private.lock_secret_for($1::uuid, $2::text)`, [id, level]))
    .then(() => null, (e) => String(e.message));
}

/**
 * Runs `meanwhile` while `holder` keeps the secret locked for writing in an open transaction;
 * `meanwhile` gets no promise back that waits for the holder (that would deadlock the test).
 */
async function whileLockedBy<T>(holder: TestUser, id: string, meanwhile: () => Promise<T>): Promise<T> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const held = asUser(holder, async (tx) => {
    await tx.query(`select private.lock_secret_for($1::uuid, 'write')`, [id]);
    locked();
    await released;
    throw new Error("rollback");
  }).catch(() => {});
  await isLocked;
  try {
    return await meanwhile();
  } finally {
    release();
    await held;
  }
}

/** `p`, or "still waiting" once `ms` have passed. */
function within<T>(p: Promise<T>, ms: number): Promise<T | "still waiting"> {
  let timer: ReturnType<typeof setTimeout>;
  const timeout = new Promise<"still waiting">((resolve) => (timer = setTimeout(() => resolve("still waiting"), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

describeOrSkip("the lock on a secret is taken only after the permission check", needsPostgres, () => {
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  async function sharedSecret(level: string | null) {
    const owner = await h.user("owner");
    const other = await h.user(level ?? "stranger");
    const s = await h.createSecret(owner);
    if (level) await h.grant(owner, s.id, other, level);
    return { owner, other, id: s.id };
  }

  /**
   * `other` asks `lock_secret_for(id, 'write')` while `owner` holds the row; the answer as seen
   * within `ms` ("still waiting" if none), and the call itself, settled after the lock is gone.
   */
  async function askWhileLocked(owner: TestUser, other: TestUser, id: string, ms: number) {
    let call: Promise<string | null> | undefined;
    const answer = await whileLockedBy(owner, id, () => {
      call = lockAs(other, id, "write");
      return within(call, ms);
    });
    return { answer, settled: await call! };
  }

  itOrSkip("a stranger's call on a secret being written answers 404 at once, without queueing for its lock", needsPostgres, async () => {
    const { owner, other, id } = await sharedSecret(null);
    const { answer } = await askWhileLocked(owner, other, id, AT_ONCE_MS);
    expect(answer).toMatch(/secret_not_found/);
  });

  itOrSkip("a reader asking to write a secret being written is refused at once, without queueing", needsPostgres, async () => {
    const { owner, other, id } = await sharedSecret("read");
    const { answer } = await askWhileLocked(owner, other, id, AT_ONCE_MS);
    expect(answer).toMatch(/forbidden/);
  });

  itOrSkip("a writer's call still waits for the lock (the check does not replace it)", needsPostgres, async () => {
    const { owner, other, id } = await sharedSecret("write");
    const { answer, settled } = await askWhileLocked(owner, other, id, 500);
    expect(answer).toBe("still waiting");
    expect(settled).toBeNull();
  });

  itOrSkip("a stranger's transaction left open after the call does not make the owner's write wait", needsPostgres, async () => {
    const { owner, other, id } = await sharedSecret(null);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let called!: (error: string | null) => void;
    const calledBack = new Promise<string | null>((resolve) => (called = resolve));
    const held = asUser(other, async (tx) => {
      called(await tx.query(`select private.lock_secret_for($1::uuid, 'write')`, [id]).then(() => null, (e) => String(e.message)));
      await released;
    }).catch(() => {});
    expect(await calledBack).toMatch(/secret_not_found/);
    const value = `owner-write-${crypto.randomUUID()}`;
    h.remember(value);
    const write = h.request("PUT", `/${id}/value`, { token: owner.token, body: { value } });
    const status = await within(write.then((r) => r.status), AT_ONCE_MS);
    release();
    await Promise.all([held, write]);
    expect(status).toBe(200);
  });

  itOrSkip("a level revoked while the caller waited for the lock is refused once it has it", needsPostgres, async () => {
    const { owner, other: writer, id } = await sharedSecret("write");
    // The owner holds the lock and revokes the writer; the writer's call waits, then re-checks.
    const { late } = await asUser(owner, async (tx) => {
      await tx.query(`select private.lock_secret_for($1::uuid, 'admin')`, [id]);
      await tx.query(`select private.revoke_permission($1::uuid, $2::uuid)`, [id, writer.id]);
      const value = `late-write-${crypto.randomUUID()}`;
      h.remember(value);
      const late = h.request("PUT", `/${id}/value`, { token: writer.token, body: { value } });
      expect(await within(late, 500)).toBe("still waiting");
      return { late }; // not awaited here: it waits for this transaction to end
    });
    const res = await late;
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe("secret_not_found");
  });
});
