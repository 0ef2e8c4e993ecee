/**
 * Routes under /deployments: the caller's deployments; under /deployments/:id, bindings,
 * validation and tokens (deployment owner or service role), and the env the container builder
 * fetches (a deployment token or the service role).
 * Each route declares its OpenAPI operation (shared/http/openapi.ts).
 */
import type { MiddlewareHandler } from "hono";
import { z } from "zod";
import type { AppEnv } from "../http/app-env.ts";
import { etagOf, fingerprintOf, holds, ifNoneMatch, notModified } from "../http/conditional.ts";
import { ok } from "../http/envelope.ts";
import { callerKinds, noStore, refuseHead } from "../http/middleware.ts";
import { defineRoute, featureApp, successEnvelope } from "../http/openapi.ts";
import type { DeploymentService } from "./deployment-service.ts";
import {
  bindingsBody, createdTokenDto, deploymentBindingsDto, deploymentListQuery, deploymentPage, deploymentParam, envQuery,
  envValues, revokedToken, tokenBody, tokenDto, tokenParams, validationDto,
} from "./deployment-schemas.ts";

const tag = "deployments";
const callers = ["user", "service"] as const;

export function deploymentRoutes(service: DeploymentService) {
  const app = featureApp<AppEnv>();

  defineRoute(app, {
    method: "get", path: "/", tag, callers,
    summary: "The caller's deployments by name, a page at a time, each with its bound and unbound env vars.",
    description: "A user sees the deployments it owns; the service role sees every one, or one owner's with `ownerId`.",
    query: deploymentListQuery, data: deploymentPage, errors: ["invalid_cursor"],
  }, async (c) => ok(c, await service.list(c.get("ctx"), c.req.valid("query"))));

  defineRoute(app, {
    method: "put", path: "/:id/secrets", tag, callers, summary: "Replace the deployment's bindings of env vars to secrets.",
    params: deploymentParam, body: bindingsBody, data: deploymentBindingsDto,
    errors: ["deployment_not_found", "secret_not_found", "forbidden", "pin_requires_read", "version_not_found", "deployment_in_progress"],
  }, async (c) => ok(c, await service.replaceBindings(c.get("ctx"), c.req.valid("param").id, c.req.valid("json"))));

  defineRoute(app, {
    method: "get", path: "/:id/secrets", tag, callers,
    summary: "The bindings, each with a status and whether a newer version exists (`outdated`), the problems, and whether it is valid.",
    description: "The `ETag` fingerprints the whole answer: poll with `If-None-Match` and get 304 until a binding, a " +
      "problem or a bound secret's current version changes.",
    params: deploymentParam, data: deploymentBindingsDto, headers: ["ETag"], requestHeaders: ["If-None-Match"],
    errors: ["deployment_not_found"],
  }, async (c) => {
    const data = await service.listBindings(c.get("ctx"), c.req.valid("param").id);
    const fingerprint = await fingerprintOf(data);
    if (holds(ifNoneMatch(c.req.header("If-None-Match")), fingerprint)) return notModified(c, fingerprint);
    c.header("ETag", etagOf(fingerprint));
    return ok(c, data);
  });

  defineRoute(app, {
    method: "post", path: "/:id/validate", tag, callers, summary: "What would stop this deployment, changing nothing.",
    params: deploymentParam, data: validationDto, errors: ["deployment_not_found"],
  }, async (c) => ok(c, await service.validate(c.get("ctx"), c.req.valid("param").id)));

  defineRoute(app, {
    method: "post", path: "/:id/tokens", tag, callers, middleware: [noStore],
    summary: "A short-lived token scoped to this deployment, shown once.",
    params: deploymentParam, body: tokenBody, bodyOptional: true, status: 201, data: createdTokenDto,
    headers: ["Cache-Control"], errors: ["deployment_not_found"],
  }, async (c) =>
    ok(c, await service.createToken(c.get("ctx"), c.req.valid("param").id, c.req.valid("json").ttlSeconds), 201));

  defineRoute(app, {
    method: "get", path: "/:id/tokens", tag, callers, summary: "The deployment's tokens, without their values.",
    params: deploymentParam, data: z.array(tokenDto), errors: ["deployment_not_found"],
  }, async (c) => ok(c, await service.listTokens(c.get("ctx"), c.req.valid("param").id)));

  defineRoute(app, {
    method: "delete", path: "/:id/tokens/:tokenId", tag, callers, summary: "Revoke a token at once.",
    params: tokenParams, data: revokedToken, errors: ["deployment_not_found", "token_not_found"],
  }, async (c) => {
    const { id, tokenId } = c.req.valid("param");
    await service.revokeToken(c.get("ctx"), id, tokenId);
    return ok(c, { revoked: true as const, id: tokenId });
  });

  return app;
}

/**
 * `GET /deployments/:id/env`, the one route that takes deployment tokens: `authenticate` is
 * the authentication that accepts them (the app's general one answers them 401). Users get
 * 403; whether a token opens this deployment is the database's check.
 */
export function deploymentEnvRoutes(service: DeploymentService, authenticate: MiddlewareHandler<AppEnv>) {
  const app = featureApp<AppEnv>();
  const builders = callerKinds(["deployment", "service"], "Env resolution needs a deployment token or the service role.");
  defineRoute(app, {
    method: "get", path: "/:id/env", tag, callers: ["deployment", "service"],
    middleware: [authenticate, refuseHead, builders, noStore],
    summary: "The resolved env for the container builder: JSON (the envelope) or dotenv (text/plain); audited.",
    description: "The `ETag` fingerprints each binding's env name, secret and served version: send it back in " +
      "`If-None-Match` and, while the env is unchanged, the answer is 304 with no body, no value is read and nothing " +
      "is audited. The env changes when the deployment's bindings do or when it deploys again (a redeploy takes " +
      "new versions of unpinned secrets).",
    params: deploymentParam, query: envQuery, headers: ["Cache-Control", "ETag"], requestHeaders: ["If-None-Match"],
    content: {
      "application/json": successEnvelope(envValues),
      "text/plain": z.string().meta({ description: "dotenv: one NAME=value line per binding." }),
    },
    errors: [
      "forbidden", "deployment_not_found", "deployment_invalid", "deployment_not_ready", "not_representable_as_dotenv",
      "decryption_failed",
    ],
  }, async (c) => {
    const caller = c.get("caller");
    const env = await service.resolveEnv(c.get("ctx"), c.req.valid("param").id, {
      tokenHash: caller.kind === "deployment" ? caller.tokenHash : null,
      format: c.req.valid("query").format,
      ifNoneMatch: ifNoneMatch(c.req.header("If-None-Match")),
    });
    if ("notModified" in env) return notModified(c, env.fingerprint);
    c.header("ETag", etagOf(env.fingerprint));
    if (env.format === "dotenv") return c.body(env.text, 200, { "Content-Type": "text/plain; charset=utf-8" });
    return ok(c, env.values);
  });
  return app;
}
