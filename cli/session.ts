/**
 * The API and the credential a command uses: the URL and token from a flag, the environment
 * or the config file, a stored session refreshed shortly before it expires, and the one typed
 * client built on them.
 */
import { createSigylClient, type SigylClient } from "../shared/client/client.ts";
import { configPath, DEFAULT_URL, normaliseUrl, projectUrlOf, readStoredConfig, type StoredConfig, writeStoredConfig } from "./config.ts";
import { CliError, EXIT } from "./errors.ts";

export interface GlobalOptions {
  url?: string;
  token?: string;
}

/** Where the token came from, for `whoami` and for error messages. */
export type TokenOrigin = "--token" | "SIGYL_TOKEN" | "SIGYL_DEPLOYMENT_TOKEN" | "config";

export interface Session {
  url: string;
  configPath: string;
  stored: StoredConfig;
  /** The user's (or service role's) credential; throws exit 3 when there is none. */
  credential(): Promise<{ token: string; origin: TokenOrigin }>;
  /** The typed client with that credential. */
  client(): SigylClient;
  /** The typed client with SIGYL_DEPLOYMENT_TOKEN, else the credential (the service role may read any env). */
  deploymentClient(): SigylClient;
}

/** Refresh a stored session this many seconds before its access token expires. */
const REFRESH_MARGIN_SECONDS = 60;

export async function openSession(options: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Promise<Session> {
  const path = configPath(env);
  const stored = await readStoredConfig(path);
  const url = normaliseUrl(options.url ?? env.SIGYL_URL ?? stored.url ?? DEFAULT_URL);
  // A stored credential is only ever sent to the server it was stored for.
  const storedApplies = stored.token !== undefined && normaliseUrl(stored.url ?? DEFAULT_URL) === url;

  let cached: { token: string; origin: TokenOrigin } | undefined;
  const credential = async () => {
    if (cached) return cached;
    if (options.token) return cached = { token: options.token, origin: "--token" as const };
    if (env.SIGYL_TOKEN) return cached = { token: env.SIGYL_TOKEN, origin: "SIGYL_TOKEN" as const };
    if (storedApplies) {
      const token = await freshStoredToken(path, stored);
      return cached = { token, origin: "config" as const };
    }
    throw new CliError(
      stored.token ? `the stored sign-in is for ${stored.url ?? DEFAULT_URL}, not ${url}; run sigyl login --url ${url}`
        : "not signed in: run sigyl login, or set SIGYL_TOKEN",
      "unauthenticated", EXIT.auth,
    );
  };
  const apikey = storedApplies && !options.token && !env.SIGYL_TOKEN ? stored.apikey : undefined;
  const headers = { "x-client-info": "sigyl-cli" };
  return {
    url,
    configPath: path,
    stored,
    credential,
    client: () => createSigylClient({ url, token: async () => (await credential()).token, apikey, headers }),
    deploymentClient: () =>
      createSigylClient({
        url, headers,
        token: async () => env.SIGYL_DEPLOYMENT_TOKEN || (await credential()).token,
      }),
  };
}

/** The stored token, after refreshing a session about to expire (and storing the new one). */
async function freshStoredToken(path: string, stored: StoredConfig): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  if (!stored.refreshToken || stored.expiresAt === undefined || stored.expiresAt - REFRESH_MARGIN_SECONDS > now) {
    return stored.token!;
  }
  const session = await refreshSession(stored);
  Object.assign(stored, session);
  await writeStoredConfig(path, stored);
  return stored.token!;
}

/** Realtime is never used; Node 20 has no WebSocket for supabase-js to find by itself. */
class NoRealtime {
  constructor() {
    throw new Error("realtime is not used by the sigyl CLI");
  }
}

/**
 * supabase-js warns on stderr, when loaded on Node 20, that a future release will need Node 22:
 * true, but not this CLI's user's concern on every sign-in (package.json pins the release,
 * and Node 20 is supported here), and an error must stay one line.
 */
async function quietly<T>(load: () => Promise<T>): Promise<T> {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === "string" && args[0].includes("Node.js 20 and below are deprecated")) return;
    warn(...args);
  };
  try {
    return await load();
  } finally {
    console.warn = warn;
  }
}

/** Supabase Auth's client for the project that serves `functionsUrl`, holding no session itself. */
export async function authClient(functionsUrl: string, apikey: string) {
  const { createClient } = await quietly(() => import("@supabase/supabase-js"));
  return createClient(projectUrlOf(functionsUrl), apikey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { transport: NoRealtime as never },
  });
}

/** What a session stores: its access token, refresh token and expiry. */
export interface StoredSession {
  token: string;
  refreshToken: string;
  expiresAt: number;
}

export function sessionFields(session: { access_token: string; refresh_token: string; expires_at?: number; expires_in: number }): StoredSession {
  return {
    token: session.access_token,
    refreshToken: session.refresh_token,
    expiresAt: session.expires_at ?? Math.floor(Date.now() / 1000) + session.expires_in,
  };
}

/** Supabase Auth's error as the CLI reports it: a refused sign-in or refresh is an auth failure. */
export function authFailure(error: { message: string; status?: number; code?: string }): CliError {
  const status = error.status ?? 0;
  if (status === 0 || status >= 500) return new CliError(error.message, error.code ?? "auth_unavailable", EXIT.server);
  return new CliError(error.message, error.code ?? "auth_refused", EXIT.auth);
}

async function refreshSession(stored: StoredConfig): Promise<StoredSession> {
  if (!stored.apikey) throw new CliError("the stored session has no API key to refresh with; run sigyl login again", "unauthenticated", EXIT.auth);
  const auth = await authClient(normaliseUrl(stored.url ?? DEFAULT_URL), stored.apikey);
  const { data, error } = await auth.auth.refreshSession({ refresh_token: stored.refreshToken! });
  if (error || !data.session) {
    const failure = error ? authFailure(error) : new CliError("no session", "unauthenticated", EXIT.auth);
    throw new CliError(`the stored session could not be refreshed (${failure.message}); run sigyl login again`, failure.code, failure.exitCode);
  }
  return sessionFields(data.session);
}

/** The claims of a JWT, unverified (the server verifies; this only says whose it claims to be). */
export function claimsOf(token: string): Record<string, unknown> | null {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    return JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
  } catch {
    return null;
  }
}
