/**
 * The database seen by the services: a parameterised query, a transaction, a multi-statement
 * exec for migrations. Two adapters implement it: postgres.js (real PostgreSQL, hosted
 * Supabase) and PGlite (embedded). Values cross it as text, numbers, booleans, JSON and
 * arrays only; bytea travels as base64 (`decode`/`encode` in SQL), so both drivers agree.
 */
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
  return withContext(db, [["role", caller.role], ...requestSettings(caller)], fn);
}

/**
 * Runs `fn` in one transaction as the connection owner (for the owner-only helpers of KEK
 * management), with the caller's claims and headers set so the audit names it. A null caller
 * is the operator's in-process script: the audit records the system.
 */
export function asOwner<T>(db: Database, caller: CallerContext | null, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  return withContext(db, caller ? requestSettings(caller) : [], fn);
}

const requestSettings = (caller: CallerContext): [string, string][] => [
  ["request.jwt.claims", JSON.stringify(caller.claims)],
  ["request.headers", JSON.stringify(caller.headers)],
];

function withContext<T>(db: Database, settings: [string, string][], fn: (tx: Queryable) => Promise<T>): Promise<T> {
  if (settings.length === 0) return db.transaction(fn);
  const sql = `select ${settings.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, true)`).join(", ")}`;
  return db.transaction(async (tx) => {
    // Not awaited before `fn` starts: both drivers run a transaction's statements in the order
    // they were issued on its one connection, so `fn`'s first statement still runs in this
    // context, and postgres.js sends the two in one write, saving a round trip per request.
    const context = tx.query(sql, settings.flat());
    const [set, result] = await Promise.allSettled([context, fn(tx)]);
    // If the context failed, `fn` ran in an aborted transaction: report the cause, not its echo.
    if (set.status === "rejected") throw set.reason;
    if (result.status === "rejected") throw result.reason;
    return result.value;
  });
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
