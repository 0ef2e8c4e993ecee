import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** `{ success: true, data }`, the envelope of every successful response. */
export function ok<T>(c: Context, data: T, status: ContentfulStatusCode = 200) {
  return c.json({ success: true as const, data }, status);
}
