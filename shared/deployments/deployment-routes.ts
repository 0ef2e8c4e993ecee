/**
 * Routes under /deployments/:id: bindings, validation, tokens (deployment owner or service
 * role), and the env the container builder fetches (a deployment token or the service role).
 */
import { Hono, type MiddlewareHandler } from "hono";
import type { AppEnv } from "../http/app-env.ts";
import { ok } from "../http/envelope.ts";
import { callerKinds, noStore, refuseHead } from "../http/middleware.ts";
import { validate } from "../http/validation.ts";
import type { DeploymentService } from "./deployment-service.ts";
import { bindingsBody, deploymentParam, envQuery, tokenBody, tokenParams } from "./deployment-schemas.ts";

export function deploymentRoutes(service: DeploymentService) {
  const app = new Hono<AppEnv>();

  app.put("/:id/secrets", validate("param", deploymentParam), validate("json", bindingsBody), async (c) =>
    ok(c, await service.replaceBindings(c.get("ctx"), c.req.valid("param").id, c.req.valid("json"))));

  app.get("/:id/secrets", validate("param", deploymentParam), async (c) =>
    ok(c, await service.listBindings(c.get("ctx"), c.req.valid("param").id)));

  app.post("/:id/validate", validate("param", deploymentParam), async (c) =>
    ok(c, await service.validate(c.get("ctx"), c.req.valid("param").id)));

  app.post("/:id/tokens", noStore, validate("param", deploymentParam), validate("json", tokenBody), async (c) =>
    ok(c, await service.createToken(c.get("ctx"), c.req.valid("param").id, c.req.valid("json").ttlSeconds), 201));

  app.get("/:id/tokens", validate("param", deploymentParam), async (c) =>
    ok(c, await service.listTokens(c.get("ctx"), c.req.valid("param").id)));

  app.delete("/:id/tokens/:tokenId", validate("param", tokenParams), async (c) => {
    const { id, tokenId } = c.req.valid("param");
    await service.revokeToken(c.get("ctx"), id, tokenId);
    return ok(c, { revoked: true, id: tokenId });
  });

  return app;
}

/**
 * `GET /deployments/:id/env`, the one route that takes deployment tokens: `authenticate` is
 * the authentication that accepts them (the app's general one answers them 401). Users get
 * 403; whether a token opens this deployment is the database's check.
 */
export function deploymentEnvRoutes(service: DeploymentService, authenticate: MiddlewareHandler<AppEnv>) {
  const app = new Hono<AppEnv>();
  const builders = callerKinds(["deployment", "service"], "Env resolution needs a deployment token or the service role.");
  app.get("/:id/env", authenticate, refuseHead, builders, noStore, validate("param", deploymentParam), validate("query", envQuery),
    async (c) => {
      const caller = c.get("caller");
      const env = await service.resolveEnv(c.get("ctx"), c.req.valid("param").id, {
        tokenHash: caller.kind === "deployment" ? caller.tokenHash : null,
        format: c.req.valid("query").format,
      });
      if (env.format === "dotenv") return c.body(env.text, 200, { "Content-Type": "text/plain; charset=utf-8" });
      return ok(c, env.values);
    });
  return app;
}
