/**
 * Audit routes: the caller's view (`GET /audit`), one secret's trail (`GET /:id/audit`), and,
 * for the service role, verification of the trail's hash chains and its export for a SIEM
 * (`/admin/audit/verify`, `/admin/audit/export`). Each route declares its OpenAPI operation
 * (shared/http/openapi.ts).
 */
import type { AppEnv } from "../http/app-env.ts";
import { ok } from "../http/envelope.ts";
import { callerKinds, noStore } from "../http/middleware.ts";
import { defineRoute, featureApp } from "../http/openapi.ts";
import { idParam } from "../http/validation.ts";
import {
  AUDIT_ADMIN_ONLY, auditPage, auditQuery, exportBody, exportQuery, verifyBody, verifyQuery, verifyResultDto,
} from "./audit-schemas.ts";
import type { AuditService } from "./audit-service.ts";

const tag = "audit";
const callers = ["user", "service"] as const;

/** `GET /audit` (the caller's view). */
export function auditRoutes(service: AuditService) {
  const app = featureApp<AppEnv>();
  defineRoute(app, {
    method: "get", path: "/", tag, callers,
    summary: "The caller's audit view: its own actions and events on secrets it owns or administers.",
    query: auditQuery, data: auditPage, errors: [],
  }, async (c) => ok(c, await service.list(c.get("ctx"), c.req.valid("query"))));
  return app;
}

/** `GET /:id/audit` (one secret's trail, admins). */
export function secretAuditRoutes(service: AuditService) {
  const app = featureApp<AppEnv>();
  defineRoute(app, {
    method: "get", path: "/:id/audit", tag, callers, summary: "One secret's audit trail (admin).",
    params: idParam, query: auditQuery, data: auditPage, errors: ["secret_not_found", "forbidden"],
  }, async (c) => ok(c, await service.listForSecret(c.get("ctx"), c.req.valid("param").id, c.req.valid("query"))));
  return app;
}

/**
 * `GET /admin/audit/verify?cursor=` (`POST` with `{checkpoint, cursor}`: also compares an
 * earlier run's heads; it changes nothing, so an Idempotency-Key is ignored there, see
 * shared/http/idempotency.ts): one bounded part of the verification, and `nextCursor` until
 * `finished`. And `GET /admin/audit/export?since=&limit=` (NDJSON, one row per line; the next cursor in
 * `X-Next-Cursor`). Service role only: a user gets 403, no token or a deployment token 401.
 */
export function auditAdminRoutes(service: AuditService) {
  const app = featureApp<AppEnv>();
  app.use("*", callerKinds(["service"], AUDIT_ADMIN_ONLY), noStore);
  const admin = { tag, callers: ["service"] as const, headers: ["Cache-Control"] as const };
  defineRoute(app, {
    ...admin, method: "get", path: "/verify", summary: "Recompute the audit trail's hash chains, one bounded part a call.",
    query: verifyQuery, data: verifyResultDto, errors: ["forbidden"],
  }, async (c) => ok(c, await service.verify(c.get("ctx"), c.req.valid("query"))));
  defineRoute(app, {
    ...admin, method: "post", path: "/verify", noIdempotency: true,
    summary: "The same, and compare the heads of an earlier run (`checkpoint`); changes nothing.",
    body: verifyBody, data: verifyResultDto, errors: ["forbidden"],
  }, async (c) => ok(c, await service.verify(c.get("ctx"), c.req.valid("json"))));
  defineRoute(app, {
    ...admin, method: "get", path: "/export", headers: ["Cache-Control", "X-Next-Cursor"],
    summary: "The trail as NDJSON after `since`; the next cursor in X-Next-Cursor.",
    query: exportQuery, content: { "application/x-ndjson": exportBody }, errors: ["forbidden"],
  }, async (c) => {
    const { rows, nextCursor } = await service.exportPage(c.get("ctx"), c.req.valid("query"));
    const body = rows.map((r) => JSON.stringify(r) + "\n").join("");
    return c.body(body, 200, { "Content-Type": "application/x-ndjson; charset=utf-8", "X-Next-Cursor": nextCursor });
  });
  return app;
}
