/**
 * The database seen by the services: a parameterised query, a transaction, a multi-statement
 * exec for migrations. Two adapters implement it: postgres.js (real PostgreSQL, hosted
 * Supabase) and PGlite (embedded). Values cross it as text, numbers, booleans, JSON and
 * arrays only; bytea travels as base64 (`decode`/`encode` in SQL), so both drivers agree.
 */
import { appError } from "../errors.ts";

export type Row = Record<string, unknown>;

export interface Queryable {
  query<T = Row>(text: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
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
 * How long one request's transaction may take (postgres.js). A caller's transaction gets
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
  return withContext(db, [["role", caller.role], ...requestSettings(caller)], fn, db.timeouts?.requestMs);
}

/**
 * Runs `fn` in one transaction as the connection owner (for the owner-only helpers of KEK
 * management), with the caller's claims and headers set so the audit names it. A null caller
 * is the operator's in-process script: the audit records the system.
 */
export function asOwner<T>(db: Database, caller: CallerContext | null, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  return withContext(db, caller ? requestSettings(caller) : [], fn, db.timeouts?.ownerMs);
}

const requestSettings = (caller: CallerContext): [string, string][] => [
  ["request.jwt.claims", JSON.stringify(caller.claims)],
  ["request.headers", JSON.stringify(caller.headers)],
];

const timeoutSettings = (ms: number): [string, string][] => [
  ["statement_timeout", `${ms}`],
  ["lock_timeout", `${Math.ceil(ms / 2)}`],
  ["idle_in_transaction_session_timeout", `${ms}`],
];

function withContext<T>(db: Database, settings: [string, string][], fn: (tx: Queryable) => Promise<T>, budgetMs?: number): Promise<T> {
  if (budgetMs === undefined) return inContext(db, settings, fn);
  return withDeadline(budgetMs, (expired) =>
    inContext(db, [...settings, ...timeoutSettings(budgetMs)], (tx) => fn(guarded(tx, expired)), expired));
}

function inContext<T>(
  db: Database, settings: [string, string][], fn: (tx: Queryable) => Promise<T>, expired?: Promise<never>,
): Promise<T> {
  if (settings.length === 0) return db.transaction(fn);
  const sql = `select ${settings.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, true)`).join(", ")}`;
  return db.transaction(async (tx) => {
    // Not awaited before `fn` starts: both drivers run a transaction's statements in the order
    // they were issued on its one connection, so `fn`'s first statement still runs in this
    // context, and postgres.js sends the two in one write, saving a round trip per request.
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
  return {
    query: (text, params) => reason ? Promise.reject(reason) : tx.query(text, params),
    exec: (text) => reason ? Promise.reject(reason) : tx.exec(text),
  };
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
