/**
 * HTTP routes of secrets, values, versions and grants (mounted under the function's base
 * path `/secrets`). Authorisation is the database's: the routes only validate, call the
 * service and shape the envelope.
 */
import { Hono } from "hono";
import type { AppEnv } from "../http/app-env.ts";
import { ok } from "../http/envelope.ts";
import { noStore, refuseHead } from "../http/middleware.ts";
import { idParam, validate } from "../http/validation.ts";
import { appError } from "../errors.ts";
import type { SecretService } from "./secret-service.ts";
import {
  createSecretBody, grantBody, grantParams, listQuery, putValueBody, rollbackBody, updateSecretBody, valueQuery,
  versionParams,
} from "./secret-schemas.ts";

/** `If-Match: "3"` (or W/"3") → 3; absent → undefined; anything else → 400. */
function ifMatchVersion(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const m = header.trim().match(/^(?:W\/)?"(\d{1,10})"$/);
  if (!m) throw appError("invalid_request", 'If-Match must be an ETag this API returned, like "3".');
  return Number(m[1]);
}

/** The version a check-and-set expects, from the body or `If-Match`; both, disagreeing → 400. */
function expectedVersionOf(fromBody: number | undefined, ifMatch: string | undefined): number | undefined {
  const fromHeader = ifMatchVersion(ifMatch);
  if (fromHeader !== undefined && fromBody !== undefined && fromHeader !== fromBody) {
    throw appError("invalid_request", "If-Match and expectedVersion disagree.");
  }
  return fromBody ?? fromHeader;
}

export function secretRoutes(service: SecretService) {
  const app = new Hono<AppEnv>();

  app.post("/", validate("json", createSecretBody), async (c) => {
    const secret = await service.create(c.get("ctx"), c.req.valid("json"));
    c.header("ETag", `"${secret.currentVersion}"`);
    c.header("Location", `${c.req.path.replace(/\/$/, "")}/${secret.id}`);
    return ok(c, secret, 201);
  });

  app.get("/", validate("query", listQuery), async (c) => ok(c, await service.list(c.get("ctx"), c.req.valid("query"))));

  app.get("/:id", validate("param", idParam), async (c) => {
    const secret = await service.get(c.get("ctx"), c.req.valid("param").id);
    c.header("ETag", `"${secret.currentVersion}"`);
    return ok(c, secret);
  });

  app.patch("/:id", validate("param", idParam), validate("json", updateSecretBody), async (c) =>
    ok(c, await service.update(c.get("ctx"), c.req.valid("param").id, c.req.valid("json"))));

  app.delete("/:id", validate("param", idParam), async (c) =>
    ok(c, await service.remove(c.get("ctx"), c.req.valid("param").id)));

  app.post("/:id/restore", validate("param", idParam), async (c) =>
    ok(c, await service.restore(c.get("ctx"), c.req.valid("param").id)));

  app.get("/:id/value", refuseHead, noStore, validate("param", idParam), validate("query", valueQuery), async (c) => {
    const value = await service.readValue(c.get("ctx"), c.req.valid("param").id, c.req.valid("query").version);
    return ok(c, value);
  });

  app.put("/:id/value", validate("param", idParam), validate("json", putValueBody), async (c) => {
    const body = c.req.valid("json");
    const secret = await service.putValue(c.get("ctx"), c.req.valid("param").id, {
      value: body.value,
      expectedVersion: expectedVersionOf(body.expectedVersion, c.req.header("if-match")),
    });
    c.header("ETag", `"${secret.currentVersion}"`);
    return ok(c, secret);
  });

  app.get("/:id/versions", validate("param", idParam), async (c) =>
    ok(c, await service.listVersions(c.get("ctx"), c.req.valid("param").id)));

  app.post("/:id/versions/:n/restore", validate("param", versionParams), validate("json", rollbackBody), async (c) => {
    const { id, n } = c.req.valid("param");
    const expected = expectedVersionOf(c.req.valid("json")?.expectedVersion, c.req.header("if-match"));
    const secret = await service.rollback(c.get("ctx"), id, n, expected);
    c.header("ETag", `"${secret.currentVersion}"`);
    return ok(c, secret);
  });

  app.get("/:id/permissions", validate("param", idParam), async (c) =>
    ok(c, await service.listGrants(c.get("ctx"), c.req.valid("param").id)));

  app.put("/:id/permissions", validate("param", idParam), validate("json", grantBody), async (c) =>
    ok(c, await service.grant(c.get("ctx"), c.req.valid("param").id, c.req.valid("json"))));

  app.delete("/:id/permissions/:userId", validate("param", grantParams), async (c) => {
    const { id, userId } = c.req.valid("param");
    await service.revoke(c.get("ctx"), id, userId);
    return ok(c, { revoked: true, userId });
  });

  return app;
}
