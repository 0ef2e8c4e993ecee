/**
 * The database seen by the services: a parameterised query, a transaction, a multi-statement
 * exec for migrations. Two adapters implement it: node-postgres (real PostgreSQL, hosted
 * Supabase) and PGlite (embedded). Values cross it as text, numbers, booleans, JSON and
 * arrays only; bytea travels as base64 (`decode`/`encode` in SQL), so both drivers agree.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { appError } from "../errors.ts";

export type Row = Record<string, unknown>;

export interface Queryable {
  query<T = Row>(text: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
  /**
   * Runs `fn` in a savepoint of this transaction: released when `fn` resolves, rolled back to
   * when it throws, the transaction going on. For a driver that fails the whole transaction on
   * any failed statement, even one the caller caught. Absent (node-postgres, PGlite): plain
   * `savepoint` statements are issued.
   */
  savepoint?<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
}

export interface Database extends Queryable {
  readonly kind: "pglite" | "postgres";
  /** Where the data lives, for humans: a path, or the URL without its password. */
  readonly location: string;
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /** The budget of `asCaller`/`asOwner` transactions; none (PGlite, in process) means no deadline. */
  readonly timeouts?: DatabaseTimeouts;
}

/**
 * How long one request's transaction may take (node-postgres). A caller's transaction gets
 * `requestMs` overall, connection wait, `begin` and `commit` included; past it the request
 * answers 503 `database_unavailable` and the transaction rolls back. The same budget is set on
 * the transaction as `statement_timeout` and `idle_in_transaction_session_timeout`, with half of
 * it as `lock_timeout` (a statement waiting on a row lock gives up, server side, while the request
 * can still answer cleanly), so the server frees the connection and its locks by itself too.
 * Owner transactions (KEK management; a rotation batch re-wraps up to 5000 DEKs in one
 * transaction) get `ownerMs`.
 */
export interface DatabaseTimeouts {
  requestMs: number;
  ownerMs: number;
}

/** What an owner transaction gets at least: a rotation batch of the largest size, with room to spare. */
export const OWNER_TIMEOUT_MS = 30_000;

/** The timeouts for a request budget (`SIGYL_REQUEST_TIMEOUT_MS`). */
export function timeoutsFor(requestMs: number): DatabaseTimeouts {
  return { requestMs, ownerMs: Math.max(requestMs, OWNER_TIMEOUT_MS) };
}

/** Who the transaction acts as, the way PostgREST sets it up. */
export interface CallerContext {
  role: "authenticated" | "service_role";
  claims: Record<string, unknown>;
  /** Lower-case request headers that triggers may record (ip, user agent, request id). */
  headers: Record<string, string>;
}

/**
 * Runs `fn` in one transaction as the caller: role, JWT claims and request headers are set
 * transaction-locally (as PostgREST does), so RLS and the audit triggers see the caller.
 */
export function asCaller<T>(db: Database, caller: CallerContext, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  const settings: [string, string][] = [["role", caller.role], ...requestSettings(caller)];
  const scope = requestScope.getStore();
  if (scope?.db === db) return joined(scope, settings, fn);
  return withContext(db, settings, fn, db.timeouts?.requestMs);
}

/**
 * Runs `fn` in one transaction as the connection owner (for the owner-only helpers of KEK
 * management), with the caller's claims and headers set so the audit names it. A null caller
 * is the operator's in-process script: the audit records the system.
 */
export function asOwner<T>(db: Database, caller: CallerContext | null, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  const scope = requestScope.getStore();
  // Joined, the transaction may have been another role and caller a moment ago: reset both
  // (role `none` is the login itself, as in a transaction of its own; '' is an unset claim).
  if (scope?.db === db) return joined(scope, [["role", "none"], ...(caller ? requestSettings(caller) : NO_CALLER)], fn);
  return withContext(db, caller ? requestSettings(caller) : [], fn, db.timeouts?.ownerMs);
}

const NO_CALLER: [string, string][] = [["request.jwt.claims", ""], ["request.headers", ""]];

const requestSettings = (caller: CallerContext): [string, string][] => [
  ["request.jwt.claims", JSON.stringify(caller.claims)],
  ["request.headers", JSON.stringify(caller.headers)],
];

const timeoutSettings = (ms: number): [string, string][] => [
  ["statement_timeout", `${ms}`],
  ["lock_timeout", `${Math.ceil(ms / 2)}`],
  ["idle_in_transaction_session_timeout", `${ms}`],
];

/**
 * One request's transaction, which the `asCaller`/`asOwner` calls made inside
 * `inRequestTransaction` join instead of opening their own (an idempotent write: its claim,
 * its work and its stored answer commit together or not at all; shared/http/idempotency.ts).
 * The scope travels with the async context (AsyncLocalStorage, in Deno and Node alike), so
 * the services need not know; it holds for this `db` only, and nothing of it lives in the
 * database session (everything is transaction-local), so a transaction-mode pooler sees an
 * ordinary transaction.
 */
interface RequestScope {
  db: Database;
  tx: Queryable;
  /** Joined calls run one after the other: each sets the role and claims its statements see. */
  queue: Promise<unknown>;
  savepoints: number;
}

const requestScope = new AsyncLocalStorage<RequestScope>();
/**
 * The transaction handle of the joined call running now: a call nested in it (none today)
 * runs at once, in a savepoint of that one, instead of queueing behind itself; its settings
 * then hold for the rest of the outer call.
 */
const insideJoined = new AsyncLocalStorage<Queryable>();

/**
 * Runs `fn` in one transaction that every `asCaller`/`asOwner` on `db` inside it joins, under
 * the request's budget (`requestMs`, as for one `asCaller`: connection wait, every joined
 * call and the commit; past it 503 `database_unavailable` and the whole transaction rolls
 * back). `fn` returning commits; `fn` throwing rolls everything back.
 *
 * Each joined call runs in a savepoint with its own role, claims and headers set
 * transaction-locally, so it sees what its own transaction would have: a call that fails is
 * rolled back to its savepoint (as its own transaction would have been), and the request's
 * transaction goes on, e.g. to the retry of `withCurrentKeyring`. A joined call cannot see
 * what another connection has not committed, and nothing else sees the request's work before
 * its commit: a route whose steps must be visible to each other across connections (the KEK
 * rotation reloads the keyring between steps) must not run here. On PGlite (one connection)
 * a statement issued on `db` itself, outside `asCaller`/`asOwner`, waits for this transaction.
 */
export function inRequestTransaction<T>(db: Database, fn: () => Promise<T>): Promise<T> {
  const within = (tx: Queryable) => requestScope.run({ db, tx, queue: Promise.resolve(), savepoints: 0 }, fn);
  const budgetMs = db.timeouts?.requestMs;
  if (budgetMs === undefined) return db.transaction(within);
  return withDeadline(budgetMs, (expired) =>
    inContext(db, timeoutSettings(budgetMs), (tx) => within(guarded(tx, expired)), expired));
}

function joined<T>(scope: RequestScope, settings: [string, string][], fn: (tx: Queryable) => Promise<T>): Promise<T> {
  const running = insideJoined.getStore();
  if (running) return inSavepoint(scope, running, settings, fn);
  const turn = scope.queue.then(() => inSavepoint(scope, scope.tx, settings, fn));
  scope.queue = turn.catch(() => {});
  return turn;
}

function inSavepoint<T>(
  scope: RequestScope, tx: Queryable, settings: [string, string][], fn: (tx: Queryable) => Promise<T>,
): Promise<T> {
  const run = (inner: Queryable) =>
    insideJoined.run(inner, async () => {
      await inner.query(setConfigSql(settings), settings.flat());
      return await fn(inner);
    });
  if (tx.savepoint) return tx.savepoint(run);
  return (async () => {
    const name = `sigyl_call_${++scope.savepoints}`;
    await tx.query(`savepoint ${name}`);
    try {
      const result = await run(tx);
      await tx.query(`release savepoint ${name}`);
      return result;
    } catch (err) {
      // Past the deadline the guarded tx refuses this too; the driver rolls everything back.
      await tx.query(`rollback to savepoint ${name}`).catch(() => {});
      throw err;
    }
  })();
}

const setConfigSql = (settings: [string, string][]) =>
  `select ${settings.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, true)`).join(", ")}`;

function withContext<T>(db: Database, settings: [string, string][], fn: (tx: Queryable) => Promise<T>, budgetMs?: number): Promise<T> {
  if (budgetMs === undefined) return inContext(db, settings, fn);
  return withDeadline(budgetMs, (expired) =>
    inContext(db, [...settings, ...timeoutSettings(budgetMs)], (tx) => fn(guarded(tx, expired)), expired));
}

function inContext<T>(
  db: Database, settings: [string, string][], fn: (tx: Queryable) => Promise<T>, expired?: Promise<never>,
): Promise<T> {
  if (settings.length === 0) return db.transaction(fn);
  const sql = setConfigSql(settings);
  return db.transaction(async (tx) => {
    // Not awaited before `fn` starts: both drivers run a transaction's statements in the order
    // they were issued on its one connection, so `fn`'s first statement still runs in this
    // context (node-postgres sends the second once the first is answered; the order is what matters).
    const context = tx.query(sql, settings.flat());
    const work = Promise.allSettled([context, fn(tx)]);
    // Past the deadline the driver is told to roll back at once, whatever `fn` still awaits.
    const [set, result] = await (expired ? Promise.race([work, expired]) : work);
    // If the context failed, `fn` ran in an aborted transaction: report the cause, not its echo.
    if (set.status === "rejected") throw set.reason;
    if (result.status === "rejected") throw result.reason;
    return result.value;
  });
}

/**
 * Runs `work` against a deadline: past `ms` the promise `work` was handed rejects, and so does
 * the result, with 503 `database_unavailable`, whether `work` waits for a connection, a
 * statement or the commit (a deadline met while the commit is on its way leaves the outcome
 * unknown to the caller, as any timeout does; the retry meets the version check).
 */
async function withDeadline<T>(ms: number, work: (expired: Promise<never>) => Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(appError("database_unavailable", "The database did not answer in time. Retry shortly.")), ms);
  });
  expired.catch(() => {});
  const running = work(expired);
  // The transaction may settle after the answer (a rollback on a stalled connection): not an unhandled rejection.
  running.catch(() => {});
  try {
    return await Promise.race([running, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `tx` refusing every statement once the deadline has passed: `fn` keeps running after the
 * driver rolled back, and its next statement must not reach a connection that the pool may
 * have handed to another request by then.
 */
function guarded(tx: Queryable, expired: Promise<never>): Queryable {
  let reason: unknown = null;
  expired.catch((e) => reason = e);
  const guard: Queryable = {
    query: (text, params) => reason ? Promise.reject(reason) : tx.query(text, params),
    exec: (text) => reason ? Promise.reject(reason) : tx.exec(text),
  };
  const savepoint = tx.savepoint?.bind(tx);
  if (savepoint) guard.savepoint = (fn) => reason ? Promise.reject(reason) : savepoint((inner) => fn(guarded(inner, expired)));
  return guard;
}

/** Removes the password from a connection URL before it is printed. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    if (u.searchParams.has("password")) u.searchParams.set("password", "***");
    return u.toString();
  } catch {
    return "(unparseable DATABASE_URL)";
  }
}
