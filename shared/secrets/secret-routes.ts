/**
 * HTTP routes of secrets, values, versions and grants (mounted under the function's base
 * path `/secrets`). Authorisation is the database's: the routes only validate, call the
 * service and shape the envelope. Each route declares its OpenAPI operation (shared/http/openapi.ts).
 */
import type { AppEnv } from "../http/app-env.ts";
import { ok } from "../http/envelope.ts";
import { noStore, refuseHead } from "../http/middleware.ts";
import { defineRoute, featureApp } from "../http/openapi.ts";
import { idParam } from "../http/validation.ts";
import { appError } from "../errors.ts";
import type { SecretService } from "./secret-service.ts";
import {
  createSecretBody, grantBody, grantDto, grantParams, listQuery, putValueBody, revokedGrant, rollbackBody, secretDto,
  secretPage, updateSecretBody, valueDto, valueQuery, versionDto, versionParams,
} from "./secret-schemas.ts";
import { z } from "zod";

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

const tag = "secrets";
const callers = ["user", "service"] as const;
/** A secret the caller cannot see answers as one that does not exist. */
const visible = ["secret_not_found", "forbidden"] as const;

export function secretRoutes(service: SecretService) {
  const app = featureApp<AppEnv>();

  defineRoute(app, {
    method: "post", path: "/", tag, callers, summary: "Create a secret (service role: name the owner with ownerId).",
    body: createSecretBody, status: 201, data: secretDto, headers: ["ETag", "Location"],
    errors: ["owner_required", "forbidden", "name_taken", "kek_retired", "user_not_found"],
  }, async (c) => {
    const secret = await service.create(c.get("ctx"), c.req.valid("json"));
    c.header("ETag", `"${secret.currentVersion}"`);
    c.header("Location", `${c.req.path.replace(/\/$/, "")}/${secret.id}`);
    return ok(c, secret, 201);
  });

  defineRoute(app, {
    method: "get", path: "/", tag, callers, summary: "List the secrets visible to the caller, by name, a page at a time.",
    query: listQuery, data: secretPage, errors: ["invalid_cursor", "forbidden"],
  }, async (c) => ok(c, await service.list(c.get("ctx"), c.req.valid("query"))));

  defineRoute(app, {
    method: "get", path: "/:id", tag, callers, summary: "A secret's metadata, the caller's permission and current version.",
    params: idParam, data: secretDto, headers: ["ETag"], errors: visible,
  }, async (c) => {
    const secret = await service.get(c.get("ctx"), c.req.valid("param").id);
    c.header("ETag", `"${secret.currentVersion}"`);
    return ok(c, secret);
  });

  defineRoute(app, {
    method: "patch", path: "/:id", tag, callers, summary: "Edit a secret's metadata (write).",
    params: idParam, body: updateSecretBody, data: secretDto, errors: [...visible, "name_taken", "secret_deleted"],
  }, async (c) => ok(c, await service.update(c.get("ctx"), c.req.valid("param").id, c.req.valid("json"))));

  defineRoute(app, {
    method: "delete", path: "/:id", tag, callers, summary: "Soft-delete a secret, restorable for a window (admin).",
    params: idParam, data: secretDto, errors: [...visible, "secret_deleted"],
  }, async (c) => ok(c, await service.remove(c.get("ctx"), c.req.valid("param").id)));

  defineRoute(app, {
    method: "post", path: "/:id/restore", tag, callers, summary: "Undo a delete (admin).",
    params: idParam, data: secretDto, errors: [...visible, "secret_not_deleted", "name_taken", "recovery_window_passed"],
  }, async (c) => ok(c, await service.restore(c.get("ctx"), c.req.valid("param").id)));

  defineRoute(app, {
    method: "get", path: "/:id/value", tag, callers, middleware: [refuseHead, noStore],
    summary: "The decrypted value, current or of one version (read); audited. HEAD is refused (405).",
    params: idParam, query: valueQuery, data: valueDto, headers: ["Cache-Control"],
    errors: [...visible, "version_not_found", "secret_deleted", "secret_expired", "secret_inactive", "decryption_failed"],
  }, async (c) => {
    const value = await service.readValue(c.get("ctx"), c.req.valid("param").id, c.req.valid("query").version);
    return ok(c, value);
  });

  defineRoute(app, {
    method: "put", path: "/:id/value", tag, callers, summary: "Store a new version of the value (write); check-and-set with expectedVersion or If-Match.",
    params: idParam, body: putValueBody, requestHeaders: ["If-Match"], data: secretDto, headers: ["ETag"],
    errors: [...visible, "version_conflict", "secret_deleted", "kek_retired"],
  }, async (c) => {
    const body = c.req.valid("json");
    const secret = await service.putValue(c.get("ctx"), c.req.valid("param").id, {
      value: body.value,
      expectedVersion: expectedVersionOf(body.expectedVersion, c.req.header("if-match")),
    });
    c.header("ETag", `"${secret.currentVersion}"`);
    return ok(c, secret);
  });

  defineRoute(app, {
    method: "get", path: "/:id/versions", tag, callers, summary: "The versions, newest first, without values (read).",
    params: idParam, data: z.array(versionDto), errors: visible,
  }, async (c) => ok(c, await service.listVersions(c.get("ctx"), c.req.valid("param").id)));

  defineRoute(app, {
    method: "post", path: "/:id/versions/:n/restore", tag, callers,
    summary: "Roll back: a new version holding version n's value (write).",
    params: versionParams, body: rollbackBody, bodyOptional: true, requestHeaders: ["If-Match"], data: secretDto,
    headers: ["ETag"], errors: [...visible, "version_not_found", "version_conflict", "secret_deleted", "decryption_failed", "kek_retired"],
  }, async (c) => {
    const { id, n } = c.req.valid("param");
    const expected = expectedVersionOf(c.req.valid("json")?.expectedVersion, c.req.header("if-match"));
    const secret = await service.rollback(c.get("ctx"), id, n, expected);
    c.header("ETag", `"${secret.currentVersion}"`);
    return ok(c, secret);
  });

  defineRoute(app, {
    method: "get", path: "/:id/permissions", tag, callers, summary: "The grants on a secret, with emails (admin).",
    params: idParam, data: z.array(grantDto), errors: visible,
  }, async (c) => ok(c, await service.listGrants(c.get("ctx"), c.req.valid("param").id)));

  defineRoute(app, {
    method: "put", path: "/:id/permissions", tag, callers, summary: "Grant a level by user id or email; a re-grant changes it (admin).",
    params: idParam, body: grantBody, data: grantDto, errors: [...visible, "user_not_found", "cannot_grant_owner", "secret_deleted"],
  }, async (c) => ok(c, await service.grant(c.get("ctx"), c.req.valid("param").id, c.req.valid("json"))));

  defineRoute(app, {
    method: "delete", path: "/:id/permissions/:userId", tag, callers,
    summary: "Revoke a grant (admin; a grantee may always drop its own).",
    params: grantParams, data: revokedGrant, errors: [...visible, "grant_not_found"],
  }, async (c) => {
    const { id, userId } = c.req.valid("param");
    await service.revoke(c.get("ctx"), id, userId);
    return ok(c, { revoked: true as const, userId });
  });

  return app;
}
