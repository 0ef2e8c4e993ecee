/**
 * Serving before the database answers. Building the runtime reads the keyring from Vault
 * through the database, so an outage at cold start would otherwise kill the instance with
 * the edge runtime's generic error. `createLazyRuntime` serves at once and builds on the
 * first request; while it cannot, every request (health included) gets 503
 * `database_unavailable` in the envelope, through the same request middleware (request id,
 * security headers, CORS). Later requests try again, at most one attempt at a time and none
 * before the backoff has passed, so a flood during an outage does not hammer the database;
 * the first attempt that succeeds serves every request after it, with no restart.
 */
import { Hono } from "hono";
import { errorHandler, type Logger, requestMiddleware, stderrLogger } from "./app.ts";
import { appError } from "./errors.ts";
import type { AppEnv } from "./http/app-env.ts";
import { fail } from "./http/envelope.ts";

export interface Servable {
  // deno-lint-ignore no-explicit-any
  app: { fetch: (request: Request, ...rest: any[]) => Response | Promise<Response> };
}

export interface LazyRuntimeOptions<R extends Servable> {
  /** Builds the runtime; rejects while the database (or Vault) cannot be read. */
  build: () => Promise<R>;
  corsOrigins?: string[];
  log?: Logger;
  /** Milliseconds since some epoch; injected so tests control the backoff. */
  now?: () => number;
  /** Wait after the first failed attempt; doubles with each further failure up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** How long one request waits for an attempt under way before it answers 503 (the attempt goes on). */
  waitMs?: number;
}

export interface LazyRuntime<R extends Servable> {
  /** A `Deno.serve` handler; what follows the request (Deno's connection info) reaches the app as before. */
  fetch: (request: Request, ...rest: unknown[]) => Promise<Response>;
  /** The runtime once built, else null. */
  current: () => R | null;
}

export function createLazyRuntime<R extends Servable>(options: LazyRuntimeOptions<R>): LazyRuntime<R> {
  const log = options.log ?? stderrLogger;
  const now = options.now ?? (() => performance.now());
  const backoffMs = options.backoffMs ?? 500;
  const maxBackoffMs = options.maxBackoffMs ?? 5000;
  const waitMs = options.waitMs ?? 8000;

  let runtime: R | null = null;
  let attempt: Promise<R> | null = null;
  let failures = 0;
  let retryAt = 0;

  const unavailable = unavailableApp(options.corsOrigins, log, () => Math.max(1, Math.ceil((retryAt - now()) / 1000)));

  function start(): Promise<R> {
    attempt ??= options.build().then(
      (built) => {
        runtime = built;
        attempt = null;
        if (failures) log("boot_recovered", { failedAttempts: failures });
        failures = 0;
        return built;
      },
      (err) => {
        failures++;
        const delay = Math.min(backoffMs * 2 ** (failures - 1), maxBackoffMs);
        retryAt = now() + delay;
        attempt = null;
        // The kind and code of the failure only: a driver's message can name hosts, not secrets,
        // but it is cut short all the same.
        log("boot_failed", {
          attempt: failures,
          retryInMs: delay,
          error: (err as Error)?.name,
          code: (err as { code?: string })?.code,
          message: (err as Error)?.message?.slice(0, 200),
        });
        throw err;
      },
    );
    return attempt;
  }

  async function fetch(request: Request, ...rest: unknown[]): Promise<Response> {
    if (runtime) return runtime.app.fetch(request, ...rest);
    if (!attempt && now() < retryAt) return unavailable.fetch(request);
    let timer: ReturnType<typeof setTimeout> | undefined;
    let built: R;
    try {
      const waited = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("boot is taking too long")), waitMs);
      });
      built = await Promise.race([start(), waited]);
    } catch {
      return unavailable.fetch(request);
    } finally {
      clearTimeout(timer);
    }
    return built.app.fetch(request, ...rest);
  }

  return { fetch, current: () => runtime };
}

/** Every route: 503 `database_unavailable`, with a Retry-After, through the request middleware. */
function unavailableApp(corsOrigins: string[] | undefined, log: Logger, retryAfterSeconds: () => number) {
  const app = new Hono<AppEnv>();
  for (const middleware of requestMiddleware(corsOrigins)) app.use("*", middleware);
  // Not logged per request (a flood would flood the log); the failed attempts are.
  app.all("*", (c) => {
    c.header("Retry-After", String(retryAfterSeconds()));
    return fail(c, appError("database_unavailable"));
  });
  app.onError(errorHandler(log)); // the body limit's 413
  return app;
}
