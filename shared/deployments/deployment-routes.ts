/**
 * Routes under /deployments/:id: bindings, validation, tokens (deployment owner or service
 * role), and the env the container builder fetches (a deployment token or the service role).
 */
import { Hono } from "hono";
import type { AppEnv } from "../http/app-env.ts";
import { ok } from "../http/envelope.ts";
import { noStore } from "../http/middleware.ts";
import { validate } from "../http/validation.ts";
import { appError } from "../errors.ts";
import { formatDotenv, NotRepresentableError } from "./dotenv.ts";
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

  app.get("/:id/env", noStore, validate("param", deploymentParam), validate("query", envQuery), async (c) => {
    const { id } = c.req.valid("param");
    const caller = c.get("caller");
    if (caller.kind === "user") throw appError(403, "forbidden", "Env resolution needs a deployment token or the service role.");
    if (caller.kind === "deployment" && caller.deploymentId !== id) throw appError(404, "deployment_not_found");
    const tokenHash = caller.kind === "deployment" ? caller.tokenHash : null;
    if (c.req.valid("query").format === "dotenv") {
      const text = await service.resolveEnvAs(c.get("ctx"), id, tokenHash, (entries) => {
        try {
          return formatDotenv(entries);
        } catch (err) {
          if (err instanceof NotRepresentableError) {
            throw appError(422, "not_representable_as_dotenv",
              `dotenv cannot hold the value of ${err.names.join(", ")} verbatim; use format=json.`);
          }
          throw err;
        }
      });
      return c.body(text, 200, { "Content-Type": "text/plain; charset=utf-8" });
    }
    const entries = await service.resolveEnv(c.get("ctx"), id, tokenHash);
    return ok(c, Object.fromEntries(entries.map((e) => [e.name, e.value])));
  });

  return app;
}
