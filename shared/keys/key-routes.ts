/**
 * KEK management routes (mounted at `/admin/keys` under the base path `/secrets`): the key
 * list, rotation and retirement. Service role only: a signed-in user gets 403, no token 401
 * (the app's authentication runs first). No route ever returns key material.
 */
import { Hono } from "hono";
import type { AppEnv } from "../http/app-env.ts";
import { ok } from "../http/envelope.ts";
import { callerKinds, noStore } from "../http/middleware.ts";
import { validate } from "../http/validation.ts";
import type { KeyService } from "./key-service.ts";
import { keyVersionParam, rotateBody, SERVICE_ROLE_ONLY } from "./key-schemas.ts";

const serviceRoleOnly = callerKinds(["service"], SERVICE_ROLE_ONLY);

export function keyRoutes(service: KeyService) {
  const app = new Hono<AppEnv>();
  app.use("*", serviceRoleOnly, noStore);

  app.get("/", async (c) => ok(c, await service.list(c.get("ctx"))));

  app.post("/rotate", validate("json", rotateBody), async (c) =>
    ok(c, await service.rotate(c.get("ctx"), c.req.valid("json") ?? {})));

  app.post("/:version/retire", validate("param", keyVersionParam), async (c) =>
    ok(c, await service.retire(c.get("ctx"), c.req.valid("param").version)));

  return app;
}
