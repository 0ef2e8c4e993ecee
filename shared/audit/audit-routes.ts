import { Hono } from "hono";
import type { AppEnv } from "../http/app-env.ts";
import { ok } from "../http/envelope.ts";
import { idParam, validate } from "../http/validation.ts";
import { auditQuery } from "./audit-schemas.ts";
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
