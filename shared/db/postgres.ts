import pg from "pg";
import type { PoolClient, QueryConfig } from "pg";
import { ConfigError } from "../config.ts";
import { type Database, type Queryable, redactUrl, type Row, timeoutsFor } from "./database.ts";

export interface PostgresOptions {
  /** Pool size. */
  max?: number;
  /**
   * Named (server-side prepared) statements for parameterised queries, parsed once per
   * connection; turn off behind a transaction-mode pooler (Supavisor :6543, PgBouncer), which
   * hands each transaction a different server connection. Always off for a Supabase
   * transaction pooler URL. Off: unnamed statements (what postgres.js's `unsafe` always sent).
   */
  prepare?: boolean;
  /** Each request's budget (`SIGYL_REQUEST_TIMEOUT_MS`; see `DatabaseTimeouts`); none: no deadline. */
  requestTimeoutMs?: number;
  /**
   * A transaction's statements are written to the connection as they are issued, without
   * waiting for the answer to the one before (node-postgres's pipeline mode): `BEGIN`, the
   * caller's context and the first statement leave together, one round trip instead of three.
   * Only inside a transaction (every answer but the one to `COMMIT` or `ROLLBACK` says "in a
   * transaction", so a transaction-mode pooler keeps the connection assigned; PgBouncer does,
   * as CI shows). Default: on, except for a Supabase transaction pooler URL, where Supavisor has
   * had bugs with pipelined clients that no test here can rule out (set it true to opt in).
   */
  pipeline?: boolean;
}

/** The TLS a connection gets (`false`: plaintext); see `databaseTls`. */
export type TlsMode = false | "allow" | "prefer" | "require" | "verify-full";

const SSL_MODES = new Set(["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]);

/**
 * The hosts and ports of a connection URL: `user:pass@h1:5432,h2/db`, an IPv6 address in
 * brackets, or a percent-encoded unix socket directory. (The driver connects to one host:
 * `createPostgresDatabase` refuses a URL that names several.)
 */
export function urlHosts(url: string): { host: string; port: string }[] {
  const afterScheme = url.slice(url.indexOf("://") + 3);
  const authority = afterScheme.split(/[?/#]/)[0];
  let hostPart: string;
  try {
    hostPart = decodeURIComponent(authority.slice(authority.lastIndexOf("@") + 1));
  } catch {
    throw new ConfigError("the database URL's host is not valid percent-encoding");
  }
  return hostPart.split(",").map((h) => {
    if (h.startsWith("/")) return { host: h, port: "" };
    const close = h.startsWith("[") ? h.indexOf("]") : -1;
    const host = close > 0 ? h.slice(1, close) : h.split(":")[0];
    const rest = close > 0 ? h.slice(close + 1) : h.slice(host.length);
    return { host, port: rest.startsWith(":") ? rest.slice(1) : "" };
  });
}

/** The query parameters of a connection URL. */
function urlParams(url: string): URLSearchParams {
  const at = url.indexOf("?");
  return new URLSearchParams(at < 0 ? "" : url.slice(at + 1).split("#")[0]);
}

/** Loopback or a unix socket: traffic that never leaves the machine. An empty host is the driver's localhost. */
export function isLocalHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === "" || h === "localhost" || h === "::1" || h.startsWith("/") || /^127(\.\d{1,3}){3}$/.test(h);
}

/**
 * The TLS a connection URL gets. Local hosts get what the URL's `sslmode` asks (plaintext
 * when it asks nothing). Any other host gets at least `require`: no sslmode, `allow` or
 * `prefer` (which would fall back to plaintext) become `require`; `verify-ca`/`verify-full`
 * are kept (the host name is checked for both, so `verify-ca` is `verify-full`);
 * `sslmode=disable` is refused, since credentials and sealed values would cross the
 * network in clear. `sslrootcert=system` means `verify-full`, as in libpq;
 * `ssl=true|false` (postgres.js's spelling) is read like `sslmode=verify-full|disable`.
 */
export function databaseTls(url: string): TlsMode {
  const params = urlParams(url);
  const hosts = urlHosts(url).map((h) => h.host);
  const local = hosts.every(isLocalHost);
  let asked = params.get("sslmode") ?? params.get("ssl") ?? undefined;
  // `ssl=true` (postgres.js's spelling) verified the certificate; keep that.
  if (asked === "true") asked = "verify-full";
  if (asked === "false") asked = "disable";
  if (params.get("sslrootcert") === "system") asked = "verify-full";
  if (asked !== undefined && !SSL_MODES.has(asked)) {
    throw new ConfigError(`the database URL has sslmode=${asked}; use one of ${[...SSL_MODES].join(", ")}`);
  }
  if (asked === "verify-ca") asked = "verify-full";
  if (local) return asked === undefined || asked === "disable" ? false : asked as TlsMode;
  if (asked === "disable") {
    const remote = hosts.filter((h) => !isLocalHost(h)).join(", ");
    throw new ConfigError(
      `the database URL says sslmode=disable for ${remote}, which is not a local host: TLS is required ` +
        `outside loopback. Remove sslmode (TLS is then required) or use sslmode=require or verify-full.`,
    );
  }
  return asked === "verify-full" ? asked : "require";
}

/**
 * A Supabase transaction pooler URL (Supavisor, `*.pooler.supabase.com:6543`), where
 * prepared statements cannot work: each transaction may land on another server connection.
 */
export function isTransactionPoolerUrl(url: string): boolean {
  return urlHosts(url).some(({ host, port }) => host.toLowerCase().endsWith(".pooler.supabase.com") && port === "6543");
}

/** How long `close()` waits for the connections in use before it cuts them. */
const CLOSE_TIMEOUT_MS = 5_000;
/** How long a `rollback` may take before the connection is cut instead (the server then rolls back). */
const ROLLBACK_TIMEOUT_MS = 5_000;
/**
 * How long a failed transaction waits for its statements still on the wire before it gives up on
 * the connection: one that answers this soon is healthy and rolls back; one that does not (a
 * stalled network, a statement abandoned by the request deadline) is cut, not queued behind.
 */
const SETTLE_GRACE_MS = 250;
/** Named prepared statements kept per pool: the application's SQL is static, this is a guard. */
const MAX_NAMED_STATEMENTS = 500;

/**
 * A statement's name, from its text: the same text gets the same name in every pool and
 * process, so that even with prepared statements wrongly left on behind a transaction pooler a
 * name never stands for another statement (that fails with an error, not a wrong answer).
 * Two 32-bit FNV-1a hashes and the length.
 */
function statementName(text: string): string {
  let a = 0x811c9dc5, b = 0x01000193 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x0100019d) ^ (b >>> 15);
  }
  return `sigyl_${(a >>> 0).toString(16).padStart(8, "0")}${(b >>> 0).toString(16).padStart(8, "0")}_${text.length}`;
}

/** SQLSTATE: five characters, digits and capitals. Anything else is the driver's or the socket's. */
const SQLSTATE = /^[0-9A-Z]{5}$/;

/**
 * node-postgres reports a lost or refused connection as an Error with no SQLSTATE (its message
 * only) or with a socket errno. Such errors get `code` CONNECTION_CLOSED or CONNECT_TIMEOUT (see
 * `UNAVAILABLE_CODES`, shared/errors.ts: 503 `database_unavailable`); a server error keeps its
 * SQLSTATE `code`, `message`, `detail`, `hint` and `constraint`.
 */
function normalised(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const e = err as Error & { code?: unknown };
  if (typeof e.code === "string" && (SQLSTATE.test(e.code) || e.code.startsWith("E"))) return err;
  const m = e.message;
  if (/timeout exceeded when trying to connect|due to connection timeout|timeout expired/i.test(m)) {
    e.code = "CONNECT_TIMEOUT";
  } else if (
    /Connection terminated|not queryable|Connection closed|Client was closed|after calling end on the pool|socket hang up|error establishing an SSL connection/i
      .test(m)
  ) {
    e.code = "CONNECTION_CLOSED";
  }
  return err;
}

/**
 * The values as postgres.js gave them, where node-postgres's defaults differ: `date` as
 * `new Date(text)` (UTC midnight, not local), `interval` as its text. Everything else is the
 * same: int8 and numeric as strings, json parsed, arrays as arrays, timestamptz as a Date.
 */
const types = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if (oid === 1082) return (text: string) => new Date(text);
    if (oid === 1186) return (text: string) => text;
    // deno-lint-ignore no-explicit-any
    return (pg.types.getTypeParser as any)(oid, format);
  },
};

/** The error for a statement on a transaction that has ended (or whose connection is gone). */
const endedError = () => Object.assign(new Error("The transaction's connection has ended."), { code: "CONNECTION_ENDED" });

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The pg connection settings of a URL: its one host, credentials, database and the TLS `databaseTls` chose. */
function connectionConfig(url: string): pg.PoolConfig {
  const hosts = urlHosts(url);
  if (hosts.length > 1) {
    throw new ConfigError("the database URL names several hosts; node-postgres connects to one: name one host (or a pooler)");
  }
  const tls = databaseTls(url);
  const afterScheme = url.slice(url.indexOf("://") + 3);
  const authority = afterScheme.split(/[?/#]/)[0];
  const at = authority.lastIndexOf("@");
  const userInfo = at < 0 ? "" : authority.slice(0, at);
  const path = afterScheme.slice(authority.length).split(/[?#]/)[0];
  const params = urlParams(url);
  const decode = (s: string, what: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new ConfigError(`the database URL's ${what} is not valid percent-encoding`);
    }
  };
  const colon = userInfo.indexOf(":");
  const user = decode(colon < 0 ? userInfo : userInfo.slice(0, colon), "user");
  const password = colon < 0 ? undefined : decode(userInfo.slice(colon + 1), "password");
  const database = decode(path.replace(/^\//, ""), "database name");
  const [{ host, port }] = hosts;
  return {
    host: host || params.get("host") || undefined,
    port: port ? Number(port) : params.get("port") ? Number(params.get("port")) : undefined,
    user: user || params.get("user") || undefined,
    password: password ?? params.get("password") ?? undefined,
    database: database || params.get("dbname") || undefined,
    application_name: params.get("application_name") ?? undefined,
    options: params.get("options") ?? undefined,
    // `require`: encrypted, certificate not checked (libpq's meaning); `verify-full`: the
    // certificate chains to a trusted CA and names the host (tls.connect's own check).
    ssl: tls === false ? false : tls === "verify-full" ? { rejectUnauthorized: true } : { rejectUnauthorized: false },
  };
}

/**
 * A Database over node-postgres (`pg`): real PostgreSQL locally and in CI, hosted Supabase in
 * production. Throws a ConfigError for a URL that would send credentials in clear over the
 * network (see `databaseTls`). Connects lazily: nothing is sent before the first query, and
 * after an outage the next query connects again at once.
 *
 * A lost connection is an error of the statements on it (503 `database_unavailable`), never a
 * crash: every client has an `error` listener, in the pool and while checked out. A connection
 * whose transaction did not end cleanly (lost, a statement still unanswered, a failed commit or
 * rollback) is closed, never handed to another request.
 */
export function createPostgresDatabase(url: string, options: PostgresOptions = {}): Database {
  const pipeline = options.pipeline ?? !isTransactionPoolerUrl(url);
  const pool = new pg.Pool({
    ...connectionConfig(url),
    // deno-lint-ignore no-explicit-any
    ...({ pipeline } as any),
    max: options.max ?? 10,
    // Both waits: for a free connection of the pool, and for a new connection's handshake.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 60_000,
    types,
    keepAlive: true,
    keepAliveInitialDelayMillis: 60_000,
  });
  // An idle connection that fails (the server restarted, a pooler cut it) is dropped by the pool;
  // the next query opens another. Logged without detail: the message and code only.
  pool.on("error", (err: Error & { code?: string }) => {
    console.error(JSON.stringify({
      level: "warn", event: "database_connection_lost", code: err.code ?? null, message: err.message, at: new Date().toISOString(),
    }));
  });
  // Every connection ever opened and not yet removed, to cut what `close()` could not end.
  // (Parameters typed explicitly: the hosted upload type-checks without @types/pg, pg then being `any`.)
  const clients = new Set<PoolClient>();
  pool.on("connect", (c: PoolClient) => void clients.add(c));
  pool.on("remove", (c: PoolClient) => void clients.delete(c));

  // Named (server-side prepared) statements: parsed once per connection. Not behind a
  // transaction-mode pooler, which hands each transaction another server connection.
  const prepare = (options.prepare ?? true) && !isTransactionPoolerUrl(url);
  const names = new Map<string, string>();
  const statement = (text: string, params: readonly unknown[]): QueryConfig | string => {
    // Without parameters, the simple query protocol, as postgres.js's `unsafe` did.
    if (params.length === 0) return text;
    const values = params as unknown[];
    if (!prepare) return { text, values, queryMode: "extended" } as QueryConfig;
    let name = names.get(text);
    if (name === undefined && names.size < MAX_NAMED_STATEMENTS) names.set(text, name = statementName(text));
    return name === undefined ? { text, values, queryMode: "extended" } as QueryConfig : { name, text, values };
  };

  /**
   * One checked-out connection: its statements one after the other, none once it failed or
   * was given back; `finish` gives it back, or closes it when it cannot be trusted.
   */
  async function checkout() {
    let client: PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      throw normalised(err);
    }
    let lost: unknown = null;
    let done = false;
    let tail: Promise<unknown> = Promise.resolve();
    const inflight = new Set<Promise<unknown>>();
    const onError = (err: unknown) => void (lost ??= normalised(err));
    client.on("error", onError);
    // The statements issued in one turn of the event loop leave in one write: a write is a
    // system call (about a tenth of a value read's CPU went to them, one per statement).
    // deno-lint-ignore no-explicit-any
    const stream = (client as any).connection?.stream as { cork?(): void; uncork?(): void } | undefined;
    let corked = false;
    const corkForThisTurn = () => {
      if (corked || !stream?.cork || !stream.uncork) return;
      corked = true;
      stream.cork();
      queueMicrotask(() => {
        corked = false;
        stream.uncork!();
      });
    };
    // Pipelined: written at once, in the order issued (the client's queue keeps it); else each
    // statement waits for the previous one's answer. Either way none once ended or lost.
    const run = (config: QueryConfig | string): Promise<pg.QueryResult> => {
      const submit = () => {
        if (done) throw endedError();
        if (lost) throw lost;
        if (pipeline) corkForThisTurn();
        return client.query(config as QueryConfig);
      };
      const p = (pipeline ? new Promise<pg.QueryResult>((resolve) => resolve(submit())) : tail.catch(() => {}).then(submit))
        .catch((err) => {
          throw normalised(err);
        });
      tail = p;
      inflight.add(p);
      p.then(() => inflight.delete(p), () => inflight.delete(p));
      return p;
    };
    const finish = (destroy: boolean) => {
      if (done) return;
      done = true;
      client.removeListener("error", onError);
      // pg-pool closes a client released with a truthy argument (and one that is not queryable);
      // pg's `end()` cuts the socket when a statement is still active on it.
      client.release(destroy || lost ? (lost instanceof Error ? lost : true) : undefined);
    };
    /** Waits a little for the statements still on the wire; true when none is left. */
    const settled = async () => {
      if (inflight.size === 0) return true;
      const all = Promise.allSettled([...inflight]).then(() => true);
      return await Promise.race([all, sleep(SETTLE_GRACE_MS).then(() => false)]);
    };
    return { run, finish, settled, isLost: () => lost !== null };
  }

  const queryable = (run: (config: QueryConfig | string) => Promise<pg.QueryResult>): Queryable => ({
    async query<T = Row>(text: string, params: readonly unknown[] = []) {
      const result: pg.QueryResult | pg.QueryResult[] = await run(statement(text, params));
      // Several statements (no parameters): the rows of the last one.
      return (Array.isArray(result) ? result[result.length - 1]?.rows ?? [] : result.rows) as T[];
    },
    async exec(text: string) {
      // The simple query protocol: several statements, no parameters.
      await run(text);
    },
    // No `savepoint`: a statement that failed aborts the transaction in PostgreSQL itself, and
    // `inSavepoint` (database.ts) issues plain SAVEPOINT statements, which pg passes through.
  });

  /** A statement outside a transaction, on a connection of its own for its duration. */
  const once = async (config: QueryConfig | string): Promise<pg.QueryResult> => {
    const c = await checkout();
    try {
      const result = await c.run(config);
      c.finish(false);
      return result;
    } catch (err) {
      // A server error leaves the connection usable; a lost one is closed by `finish`.
      c.finish(false);
      throw err;
    }
  };

  async function transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const c = await checkout();
    const begun = c.run("begin");
    if (!pipeline) {
      try {
        await begun;
      } catch (err) {
        c.finish(true);
        throw err;
      }
    }
    let result: T;
    try {
      // Pipelined, `fn`'s first statements leave behind BEGIN without waiting for its answer. A
      // BEGIN that failed fails the transaction; the statements behind it, had they run outside
      // one, ran as the login itself (role and claims are set transaction-locally, so they
      // lapse with their own statement), which may execute none of the API's helpers.
      [, result] = await Promise.all([begun, fn(queryable(c.run))]);
    } catch (err) {
      // Roll back only on a connection that answers; else close it (the server rolls back).
      if (!c.isLost() && await c.settled() && !c.isLost()) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const ok = await Promise.race([
          c.run("rollback").then(() => true, () => false),
          new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), ROLLBACK_TIMEOUT_MS)),
        ]);
        clearTimeout(timer);
        c.finish(!ok);
      } else {
        c.finish(true);
      }
      throw err;
    }
    try {
      await c.run("commit");
    } catch (err) {
      // A commit the server refused (a deferred constraint, a serialization failure) ended the
      // transaction on a healthy connection; anything else leaves it in an unknown state.
      const e = err as { code?: string };
      c.finish(!(typeof e.code === "string" && SQLSTATE.test(e.code) && !c.isLost()));
      throw err;
    }
    c.finish(false);
    return result;
  }

  const root = queryable(once);
  return {
    kind: "postgres",
    location: redactUrl(url),
    query: root.query,
    exec: root.exec,
    transaction,
    async close() {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const ended = await Promise.race([
        pool.end().then(() => true, () => true),
        new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), CLOSE_TIMEOUT_MS)),
      ]);
      clearTimeout(timer);
      if (!ended) {
        // Connections still checked out (a statement stalled on the network): cut them.
        // deno-lint-ignore no-explicit-any
        for (const c of clients) (c as any).connection?.stream?.destroy?.();
      }
    },
    timeouts: options.requestTimeoutMs === undefined ? undefined : timeoutsFor(options.requestTimeoutMs),
  };
}
