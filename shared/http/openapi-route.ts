/**
 * `GET /openapi.json`: the API's OpenAPI 3.1 document, generated from the routes' own
 * declarations (shared/http/openapi.ts). Public, like `/health`: it describes the API and
 * holds nothing secret.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import type { AppEnv } from "./app-env.ts";
import { defineRoute, featureApp, openApiDocument } from "./openapi.ts";

/** An OpenAPI document, as far as a client needs to know before reading it. */
const openApiObject = z.looseObject({ openapi: z.string(), info: z.looseObject({}), paths: z.looseObject({}) });

/**
 * The route serving `root`'s document. It is built on the first request, once every feature
 * is mounted, and kept: the routes do not change after start.
 */
export function apiDocumentRoute(root: OpenAPIHono<AppEnv, any, any>) {
  const app = featureApp<AppEnv>();
  let document: unknown;
  defineRoute(app, {
    method: "get", path: "/", tag: "meta", callers: [], errors: [],
    summary: "This API's OpenAPI 3.1 document; no token needed.",
    content: { "application/json": openApiObject },
  }, (c) => c.json(document ??= openApiDocument(root) as unknown as Record<string, unknown>));
  return app;
}
