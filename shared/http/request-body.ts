/**
 * The one place a request body is read and decoded, so no route sees a body other than the
 * one sent: a route takes a body only if it declares one (`validate("json", …)`), the body
 * must be declared JSON, and its bytes must be UTF-8. Without this, Hono's JSON validator
 * treats a body of another type as `{}` (options silently dropped) and decodes bad bytes as
 * U+FFFD (values silently altered).
 */
import { createMiddleware } from "hono/factory";
import { matchedRoutes } from "hono/route";
import { appError } from "../errors.ts";
import { InvalidRequest, isJsonBodyValidator } from "./validation.ts";

/** `application/json` or `application/…+json`, any case, as Hono's JSON validator reads them. */
const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;

/** A JSON media type whose charset, if named, is UTF-8 (the only encoding JSON has, RFC 8259). */
export function isJsonContentType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const [mediaType, ...params] = contentType.split(";").map((p) => p.trim());
  if (!JSON_MEDIA_TYPE.test(mediaType)) return false;
  return params.every((p) => {
    const [name, value = ""] = p.split("=").map((x) => x.trim());
    return name.toLowerCase() !== "charset" || /^"?utf-8"?$/i.test(value);
  });
}

/**
 * A non-empty body on a route that takes none: 400 `invalid_request`; on a route that takes
 * JSON, one not declared JSON: 415 `unsupported_media_type`; bytes that are not UTF-8: 400
 * `invalid_json`. A path no route answers is left to the 404/405 handler. Runs after the body
 * limit.
 */
export const strictBody = createMiddleware(async (c, next) => {
  if (!c.req.raw.body) return next();
  const routes = matchedRoutes(c).filter((r) => r.method !== "ALL");
  if (routes.length === 0) return next();
  const bytes = await c.req.arrayBuffer();
  if (bytes.byteLength === 0) return next();
  if (!routes.some((r) => isJsonBodyValidator(r.handler))) {
    throw new InvalidRequest([{ path: "body", message: "this route takes no body" }]);
  }
  if (!isJsonContentType(c.req.header("content-type"))) {
    throw appError("unsupported_media_type");
  }
  // The validator decodes the same cached bytes again (replacing bad ones with U+FFFD), so
  // they must decode here without a single replacement.
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw appError("invalid_json", "The body is not valid UTF-8.");
  }
  await next();
});
