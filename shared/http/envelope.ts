import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppError } from "../errors.ts";

/** `{ success: true, data }`, the envelope of every successful response. */
export function ok<T>(c: Context, data: T, status: ContentfulStatusCode = 200) {
  return c.json({ success: true as const, data }, status);
}

/** `{ success: false, error: { code, message, ... } }` with the error's status. */
export function fail(c: Context, error: AppError, extra: Record<string, unknown> = {}) {
  return c.json({ success: false as const, error: { code: error.code, message: error.message, ...extra } }, error.status);
}
