import postgres from "postgres";
import { ConfigError } from "../config.ts";
import { type Database, type Queryable, redactUrl, type Row, timeoutsFor } from "./database.ts";

export interface PostgresOptions {
  /** Pool size. */
  max?: number;
  /**
   * Prepared statements; turn off behind a transaction-mode pooler (Supavisor :6543,
   * PgBouncer), which hands each transaction a different server connection. Always off for a
   * Supabase transaction pooler URL.
   */
  prepare?: boolean;
  /** Each request's budget (`SIGYL_REQUEST_TIMEOUT_MS`; see `DatabaseTimeouts`); none: no deadline. */
  requestTimeoutMs?: number;
}

/** What postgres.js is told to do about TLS (`false`: plaintext). */
export type TlsMode = false | "allow" | "prefer" | "require" | "verify-full";

const SSL_MODES = new Set(["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]);

/**
 * The hosts and ports of a connection URL as postgres.js reads them: `user:pass@h1:5432,h2/db`,
 * an IPv6 address in brackets, or a percent-encoded unix socket directory.
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

/** Loopback or a unix socket: traffic that never leaves the machine. An empty host is postgres.js's localhost. */
export function isLocalHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === "" || h === "localhost" || h === "::1" || h.startsWith("/") || /^127(\.\d{1,3}){3}$/.test(h);
}

/**
 * The TLS a connection URL gets. Local hosts get what the URL's `sslmode` asks (plaintext
 * when it asks nothing). Any other host gets at least `require`: no sslmode, `allow` or
 * `prefer` (which would fall back to plaintext) become `require`; `verify-ca`/`verify-full`
 * are kept (postgres.js checks the host name for both, so `verify-ca` is `verify-full`);
 * `sslmode=disable` is refused, since credentials and sealed values would cross the
 * network in clear. `sslrootcert=system` means `verify-full`, as in libpq and postgres.js;
 * postgres.js's `ssl=true|false` is read like `sslmode=verify-full|disable`.
 */
export function databaseTls(url: string): TlsMode {
  const params = urlParams(url);
  const hosts = urlHosts(url).map((h) => h.host);
  const local = hosts.every(isLocalHost);
  let asked = params.get("sslmode") ?? params.get("ssl") ?? undefined;
  // postgres.js's own `ssl=true` verifies the certificate; keep that.
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

/**
 * A Database over postgres.js: real PostgreSQL locally and in CI, hosted Supabase in
 * production. Throws a ConfigError for a URL that would send credentials in clear over the
 * network (see `databaseTls`). Connects lazily: nothing is sent before the first query.
 */
export function createPostgresDatabase(url: string, options: PostgresOptions = {}): Database {
  const sql = postgres(url, {
    max: options.max ?? 10,
    prepare: (options.prepare ?? true) && !isTransactionPoolerUrl(url),
    ssl: databaseTls(url),
    connect_timeout: 5,
    idle_timeout: 60,
    onnotice: () => {},
  });
  // deno-lint-ignore no-explicit-any
  const wrap = (q: any): Queryable => ({
    async query<T = Row>(text: string, params: readonly unknown[] = []) {
      return Array.from(await q.unsafe(text, params as unknown[])) as T[];
    },
    async exec(text: string) {
      await q.unsafe(text);
    },
  });
  const root = wrap(sql);
  return {
    kind: "postgres",
    location: redactUrl(url),
    query: root.query,
    exec: root.exec,
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) => sql.begin((tx) => fn(wrap(tx))) as Promise<T>,
    close: () => sql.end({ timeout: 5 }),
    timeouts: options.requestTimeoutMs === undefined ? undefined : timeoutsFor(options.requestTimeoutMs),
  };
}
