/**
 * The app factory: middleware, routes and the one error handler. Everything it needs comes
 * in as arguments, so tests build it around PGlite or PostgreSQL and call `app.request()`.
 */
import { type ErrorHandler, Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import { requestId } from "hono/request-id";
import { secureHeaders } from "hono/secure-headers";
import type { Authenticator } from "./auth/authenticate.ts";
import type { Clock } from "./clock.ts";
import { createDekCache, type DekCache } from "./crypto/dek-cache.ts";
import type { Keyring } from "./crypto/keyring.ts";
import type { Database } from "./db/database.ts";
import { AppError, appError, fromDatabaseError } from "./errors.ts";
import type { AppEnv } from "./http/app-env.ts";
import { allowedMethods } from "./http/allowed-methods.ts";
import { fail } from "./http/envelope.ts";
import { strictBody } from "./http/request-body.ts";
import { authenticate } from "./http/middleware.ts";
import { idempotency, REPLAYED_HEADER } from "./http/idempotency.ts";
import { auditAdminRoutes, auditRoutes, secretAuditRoutes } from "./audit/audit-routes.ts";
import { createAuditService } from "./audit/audit-service.ts";
import { healthRoutes } from "./health/health-routes.ts";
import { secretRoutes } from "./secrets/secret-routes.ts";
import { createSecretService } from "./secrets/secret-service.ts";
import { keyRoutes } from "./keys/key-routes.ts";
import { createKeyService } from "./keys/key-service.ts";
import { deploymentEnvRoutes, deploymentRoutes } from "./deployments/deployment-routes.ts";
import { createDeploymentService } from "./deployments/deployment-service.ts";
import { InvalidRequest } from "./http/validation.ts";
import { apiDocumentRoute } from "./http/openapi-route.ts";

export const MAX_BODY_BYTES = 128 * 1024;

export type Logger = (event: string, fields: Record<string, unknown>) => void;

export interface AppDeps {
  db: Database;
  keyring: Keyring;
  authenticator: Authenticator;
  clock: Clock;
  corsOrigins?: string[];
  /** Proxies in front that append to x-forwarded-for (hosted: the Supabase gateway; local: serve.ts). */
  trustedProxyHops?: number;
  log?: Logger;
  newId?: () => string;
  /** This process runs the scheduled jobs on a timer where pg_cron is missing (health reports it). */
  localJobTimer?: boolean;
  /** Unwrapped DEKs (shared/crypto/dek-cache.ts); default: a cache of the default size. */
  deks?: DekCache;
}

/** JSON lines on stderr; callers pass ids and codes, never values or tokens. */
export const stderrLogger: Logger = (event, fields) => {
  console.error(JSON.stringify({ level: "error", event, ...fields, at: new Date().toISOString() }));
};

/**
 * What every request passes through before authentication, in order: request id, security
 * headers, CORS, the body limit, the body's type and encoding. Exported so the benchmark's
 * floor routes run the same stack.
 */
export function requestMiddleware(corsOrigins: string[] = ["*"]): MiddlewareHandler[] {
  return [
    // Always our own id: the audit records it, so a client must not choose it (hono's
    // requestId would adopt an incoming X-Request-Id; with no header name it reads none).
    requestId({ headerName: "" }),
    async (c, next) => {
      c.header("X-Request-Id", c.get("requestId"));
      await next();
    },
    secureHeaders({ crossOriginResourcePolicy: "same-site", strictTransportSecurity: "max-age=63072000; includeSubDomains" }),
    cors({
      origin: corsOrigins.includes("*") ? "*" : corsOrigins,
      allowHeaders: ["authorization", "apikey", "content-type", "if-match", "if-none-match", "idempotency-key", "x-client-info", "x-request-id"],
      allowMethods: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
      exposeHeaders: ["ETag", "X-Request-Id", "Location", REPLAYED_HEADER],
      maxAge: 600,
    }),
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw appError("payload_too_large", `The request body exceeds ${MAX_BODY_BYTES} bytes.`);
      },
    }),
    strictBody,
  ];
}

export function createApp(deps: AppDeps) {
  const log = deps.log ?? stderrLogger;
  const deks = deps.deks ?? createDekCache(deps.clock);
  const secrets = createSecretService({ db: deps.db, keyring: deps.keyring, clock: deps.clock, newId: deps.newId, log, deks });
  const audit = createAuditService({ db: deps.db });
  const keys = createKeyService({ db: deps.db, keyring: deps.keyring, clock: deps.clock, log });
  const deployments = createDeploymentService({ db: deps.db, keyring: deps.keyring, clock: deps.clock, log, deks });
  const origins = deps.corsOrigins ?? ["*"];

  // The whole API's document is built from this app's routing table (shared/http/openapi.ts).
  const app = new Hono<AppEnv>().basePath("/secrets");
  for (const middleware of requestMiddleware(origins)) app.use("*", middleware);

  // Routes answer in the order they are registered, and a route that answers ends the chain:
  // health and the API's own description, which need no token, and the env route, which authenticates with deployment
  // tokens accepted, come before the general authentication. That one runs for everything
  // else, unknown routes included (no probing without a token), and answers a deployment
  // token 401.
  const hops = deps.trustedProxyHops ?? 1;
  app.route("/health", healthRoutes({ db: deps.db, keyring: deps.keyring, localJobTimer: deps.localJobTimer }));
  app.route("/openapi.json", apiDocumentRoute(app));
  app.route("/deployments", deploymentEnvRoutes(deployments, authenticate(deps.authenticator, hops, { deploymentTokens: true })));
  app.use("*", authenticate(deps.authenticator, hops));
  // After authentication, so a key belongs to its caller. The KEK rotation runs in several
  // transactions: there a key means at most once (see shared/http/idempotency.ts).
  app.use("*", idempotency({ db: deps.db, keyring: deps.keyring, log, multiTransactionPaths: ["/secrets/admin/keys/rotate"] }));
  app.route("/audit", auditRoutes(audit));
  app.route("/admin/audit", auditAdminRoutes(audit));
  app.route("/admin/keys", keyRoutes(keys));
  app.route("/deployments", deploymentRoutes(deployments));
  app.route("/", secretAuditRoutes(audit));
  app.route("/", secretRoutes(secrets));

  // A known path with another method: 405 and the methods it takes (Hono itself answers 404).
  app.notFound((c) => {
    const allow = allowedMethods(app.routes, c.req.path);
    if (allow.length) c.header("Allow", allow.join(", "));
    return fail(c, appError(allow.length ? "method_not_allowed" : "not_found"));
  });

  app.onError(errorHandler(log));

  return app;
}

/** The one error handler: AppError and known database errors to their status, the rest to 500. */
export function errorHandler(log: Logger): ErrorHandler<AppEnv> {
  return (err, c) => {
    const requestId = c.get("requestId");
    const known = err instanceof AppError ? err : fromDatabaseError(err);
    if (known) {
      const extra: Record<string, unknown> = {};
      if (known instanceof InvalidRequest) extra.details = known.issues;
      if (known.status >= 500) {
        extra.requestId = requestId;
        log(known.code, { requestId });
      }
      return fail(c, known, extra);
    }
    // Hono's own: the JSON validator's parse failure (400) and an auth helper's 401.
    if (err instanceof HTTPException && (err.status === 400 || err.status === 401)) {
      return fail(c, appError(err.status === 400 ? "invalid_json" : "unauthenticated"));
    }
    // Unknown: the caller gets the request id, the server log gets the error's kind and code.
    log("internal_error", {
      requestId,
      error: (err as Error)?.name,
      code: (err as { code?: string })?.code,
      message: (err as Error)?.message?.slice(0, 300),
    });
    return fail(c, appError("internal_error"), { requestId });
  };
}
