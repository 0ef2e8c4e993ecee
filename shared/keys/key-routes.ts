/**
 * KEK management routes (mounted at `/admin/keys` under the base path `/secrets`): the key
 * list, rotation and retirement. Service role only: a signed-in user gets 403, no token 401
 * (the app's authentication runs first). No route ever returns key material. Each route
 * declares its OpenAPI operation (shared/http/openapi.ts).
 */
import { z } from "zod";
import type { AppEnv } from "../http/app-env.ts";
import { ok } from "../http/envelope.ts";
import { callerKinds, noStore } from "../http/middleware.ts";
import { defineRoute, featureApp } from "../http/openapi.ts";
import type { KeyService } from "./key-service.ts";
import { keyDto, keyVersionParam, rotateBody, rotationDto, SERVICE_ROLE_ONLY } from "./key-schemas.ts";

const serviceRoleOnly = callerKinds(["service"], SERVICE_ROLE_ONLY);
const common = { tag: "keys", callers: ["service"] as const, headers: ["Cache-Control"] as const };

export function keyRoutes(service: KeyService) {
  const app = featureApp<AppEnv>();
  app.use("*", serviceRoleOnly, noStore);

  defineRoute(app, {
    ...common, method: "get", path: "/", summary: "The KEK versions, never key material.",
    data: z.array(keyDto), errors: ["forbidden"],
  }, async (c) => ok(c, await service.list(c.get("ctx"))));

  defineRoute(app, {
    ...common, method: "post", path: "/rotate", summary: "Start or resume a KEK rotation; at most once per Idempotency-Key.",
    body: rotateBody, bodyOptional: true, data: rotationDto,
    errors: ["forbidden", "kek_not_active", "idempotency_key_in_flight", "rewrap_unverified"],
  }, async (c) => ok(c, await service.rotate(c.get("ctx"), c.req.valid("json") ?? {})));

  defineRoute(app, {
    ...common, method: "post", path: "/:version/retire", summary: "Retire a KEK that wraps no DEK.",
    params: keyVersionParam, data: keyDto, errors: ["forbidden", "key_not_found", "key_active", "key_in_use"],
  }, async (c) => ok(c, await service.retire(c.get("ctx"), c.req.valid("param").version)));

  return app;
}
