/**
 * Audit routes: the caller's view (`GET /audit`), one secret's trail (`GET /:id/audit`), and,
 * for the service role, verification of the trail's hash chains and its export for a SIEM
 * (`/admin/audit/verify`, `/admin/audit/export`).
 */
import { Hono } from "hono";
import type { AppEnv } from "../http/app-env.ts";
import { ok } from "../http/envelope.ts";
import { callerKinds, noStore } from "../http/middleware.ts";
import { idParam, validate } from "../http/validation.ts";
import { AUDIT_ADMIN_ONLY, auditQuery, exportQuery, verifyBody, verifyQuery } from "./audit-schemas.ts";
import type { AuditService } from "./audit-service.ts";

/** `GET /audit` (the caller's view). */
export function auditRoutes(service: AuditService) {
  const app = new Hono<AppEnv>();
  app.get("/", validate("query", auditQuery), async (c) => ok(c, await service.list(c.get("ctx"), c.req.valid("query"))));
  return app;
}

/** `GET /:id/audit` (one secret's trail, admins). */
export function secretAuditRoutes(service: AuditService) {
  const app = new Hono<AppEnv>();
  app.get("/:id/audit", validate("param", idParam), validate("query", auditQuery), async (c) =>
    ok(c, await service.listForSecret(c.get("ctx"), c.req.valid("param").id, c.req.valid("query"))));
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
  const app = new Hono<AppEnv>();
  app.use("*", callerKinds(["service"], AUDIT_ADMIN_ONLY), noStore);
  app.get("/verify", validate("query", verifyQuery), async (c) => ok(c, await service.verify(c.get("ctx"), c.req.valid("query"))));
  app.post("/verify", validate("json", verifyBody), async (c) => ok(c, await service.verify(c.get("ctx"), c.req.valid("json"))));
  app.get("/export", validate("query", exportQuery), async (c) => {
    const { rows, nextCursor } = await service.exportPage(c.get("ctx"), c.req.valid("query"));
    const body = rows.map((r) => JSON.stringify(r) + "\n").join("");
    return c.body(body, 200, { "Content-Type": "application/x-ndjson; charset=utf-8", "X-Next-Cursor": nextCursor });
  });
  return app;
}
