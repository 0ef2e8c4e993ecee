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
import type { Keyring } from "./crypto/keyring.ts";
import type { Database } from "./db/database.ts";
import { AppError, appError, fromDatabaseError } from "./errors.ts";
import type { AppEnv } from "./http/app-env.ts";
import { authenticate } from "./http/middleware.ts";
import { auditRoutes, secretAuditRoutes } from "./audit/audit-routes.ts";
import { createAuditService } from "./audit/audit-service.ts";
import { healthRoutes } from "./health/health-routes.ts";
import { secretRoutes } from "./secrets/secret-routes.ts";
import { createSecretService } from "./secrets/secret-service.ts";
import { keyRoutes } from "./keys/key-routes.ts";
import { createKeyService } from "./keys/key-service.ts";
import { deploymentRoutes } from "./deployments/deployment-routes.ts";
import { createDeploymentService } from "./deployments/deployment-service.ts";
import { InvalidRequest } from "./http/validation.ts";

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
}

/** JSON lines on stderr; callers pass ids and codes, never values or tokens. */
export const stderrLogger: Logger = (event, fields) => {
  console.error(JSON.stringify({ level: "error", event, ...fields, at: new Date().toISOString() }));
};

/**
 * What every request passes through before authentication, in order: request id, security
 * headers, CORS, the body limit. Exported so the benchmark's floor routes run the same stack.
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
      allowHeaders: ["authorization", "apikey", "content-type", "if-match", "x-client-info", "x-request-id"],
      allowMethods: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
      exposeHeaders: ["ETag", "X-Request-Id", "Location"],
      maxAge: 600,
    }),
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw appError(413, "payload_too_large", `The request body exceeds ${MAX_BODY_BYTES} bytes.`);
      },
    }),
  ];
}

export function createApp(deps: AppDeps) {
  const log = deps.log ?? stderrLogger;
  const secrets = createSecretService({ db: deps.db, keyring: deps.keyring, clock: deps.clock, newId: deps.newId, log });
  const audit = createAuditService({ db: deps.db });
  const keys = createKeyService({ db: deps.db, keyring: deps.keyring, clock: deps.clock, log });
  const deployments = createDeploymentService({ db: deps.db, keyring: deps.keyring, clock: deps.clock, log });
  const origins = deps.corsOrigins ?? ["*"];

  const app = new Hono<AppEnv>().basePath("/secrets");
  for (const middleware of requestMiddleware(origins)) app.use("*", middleware);

  app.route("/health", healthRoutes({ db: deps.db, keyring: deps.keyring }));

  // Everything but health needs a caller, unknown routes included (no probing without a token).
  const authed = authenticate(deps.authenticator, deps.trustedProxyHops ?? 1);
  app.use("*", (c, next) => (c.req.path === "/secrets/health" ? next() : authed(c, next)));
  app.route("/audit", auditRoutes(audit));
  app.route("/admin/keys", keyRoutes(keys));
  app.route("/deployments", deploymentRoutes(deployments));
  app.route("/", secretAuditRoutes(audit));
  app.route("/", secretRoutes(secrets));

  app.notFound((c) => c.json({ success: false, error: { code: "not_found", message: "No such route." } }, 404));

  app.onError(errorHandler(log));

  return app;
}

/** The one error handler: AppError and known database errors to their status, the rest to 500. */
export function errorHandler(log: Logger): ErrorHandler<AppEnv> {
  return (err, c) => {
    const requestId = c.get("requestId");
    const known = err instanceof AppError ? err : fromDatabaseError(err);
    if (known) {
      const body: Record<string, unknown> = { code: known.code, message: known.message };
      if (known instanceof InvalidRequest) body.details = known.issues;
      if (known.status >= 500) {
        body.requestId = requestId;
        log(known.code, { requestId });
      }
      return c.json({ success: false, error: body }, known.status);
    }
    if (err instanceof HTTPException) {
      const status = err.status;
      const code = status === 400 ? "invalid_json" : status === 401 ? "unauthenticated" : "http_error";
      const message = status === 400 ? "The body is not valid JSON." : err.message || "Request failed.";
      return c.json({ success: false, error: { code, message } }, status);
    }
    // Unknown: the caller gets the request id, the server log gets the error's kind and code.
    log("internal_error", {
      requestId,
      error: (err as Error)?.name,
      code: (err as { code?: string })?.code,
      message: (err as Error)?.message?.slice(0, 300),
    });
    return c.json({ success: false, error: { code: "internal_error", message: "Internal error.", requestId } }, 500);
  };
}
