/**
 * `GET /openapi.json`: the API's OpenAPI 3.1 document, generated from the routes' own
 * declarations (shared/http/openapi.ts). Public, like `/health`: it describes the API and
 * holds nothing secret.
 */
import type { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "./app-env.ts";
import { defineRoute, featureApp, openApiDocument } from "./openapi.ts";

/** An OpenAPI document, as far as a client needs to know before reading it. */
const openApiObject = z.looseObject({ openapi: z.string(), info: z.looseObject({}), paths: z.looseObject({}) });

/**
 * The route serving `root`'s document. It is built on the first request, once every feature
 * is mounted, and kept: the routes do not change after start.
 */
// deno-lint-ignore no-explicit-any
export function apiDocumentRoute(root: Hono<AppEnv, any, any>) {
  const app = featureApp<AppEnv>();
  let document: Promise<Record<string, unknown>> | undefined;
  defineRoute(app, {
    method: "get", path: "/", tag: "meta", callers: [], errors: [],
    summary: "This API's OpenAPI 3.1 document; no token needed.",
    content: { "application/json": openApiObject },
  }, async (c) => {
    // A failed build is not kept: the next request tries again.
    document ??= openApiDocument(root).then((d) => d as unknown as Record<string, unknown>, (err) => {
      document = undefined;
      throw err;
    });
    return c.json(await document);
  });
  return app;
}
