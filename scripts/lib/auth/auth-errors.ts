/**
 * The local sign-in stand-in's one error type and how it is answered: as Supabase Auth
 * (GoTrue) answers, so supabase-js turns each into the same `AuthApiError` (status, `code`)
 * it would get hosted. The body's shape depends on the `X-Supabase-Api-Version` request
 * header, which supabase-js always sends (2024-01-01): from that version on
 * `{ code: <error code>, message }` with the version echoed back (supabase-js reads the code
 * only when the answer carries the header); before it, or without the header,
 * `{ code: <status>, error_code, msg }`. Both carry the code in `x-sb-error-code` too.
 */

/** GoTrue's error codes that this stand-in answers with (its apierrors/errorcode.go). */
export type AuthErrorCode =
  | "validation_failed"
  | "bad_json"
  | "request_entity_too_large"
  | "weak_password"
  | "email_address_invalid"
  | "user_already_exists"
  | "invalid_credentials"
  | "email_provider_disabled"
  | "phone_provider_disabled"
  | "anonymous_provider_disabled"
  | "no_authorization"
  | "bad_jwt"
  | "user_not_found"
  | "session_not_found"
  | "refresh_token_not_found"
  | "refresh_token_already_used"
  | "unexpected_failure";

/** An answer of Supabase Auth's: HTTP status, its error code and message. */
export class AuthError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 413 | 422 | 500,
    readonly code: AuthErrorCode,
    message: string,
    /** For `weak_password`: which rules the password broke (`length`, …). */
    readonly reasons?: string[],
  ) {
    super(message);
  }
}

/** The first API version whose error bodies name the code (`code`, `message`). */
export const API_VERSION_2024 = "2024-01-01";
export const API_VERSION_HEADER = "X-Supabase-Api-Version";

/**
 * The API version a request asks for: 2024-01-01 for any valid date from then on, null for
 * none, an earlier date or one that does not parse (GoTrue falls back to its first version).
 */
export function requestedApiVersion(header: string | null | undefined): typeof API_VERSION_2024 | null {
  if (!header || !/^\d{4}-\d{2}-\d{2}$/.test(header)) return null;
  const date = Date.parse(`${header}T00:00:00Z`);
  if (Number.isNaN(date) || new Date(date).toISOString().slice(0, 10) !== header) return null;
  return date >= Date.parse(`${API_VERSION_2024}T00:00:00Z`) ? API_VERSION_2024 : null;
}

/** What a client sees of any failure: an `AuthError` as is, anything else as GoTrue's 500. */
export function authErrorResponse(err: unknown, apiVersionHeader: string | null | undefined): Response {
  const e = err instanceof AuthError
    ? err
    : new AuthError(500, "unexpected_failure", "Unexpected failure, please check server logs for more information");
  const version = requestedApiVersion(apiVersionHeader);
  const headers: Record<string, string> = { "x-sb-error-code": e.code };
  const weak = e.reasons ? { weak_password: { reasons: e.reasons } } : {};
  if (version) {
    headers[API_VERSION_HEADER] = version;
    return Response.json({ code: e.code, message: e.message, ...weak }, { status: e.status, headers });
  }
  return Response.json({ code: e.status, error_code: e.code, msg: e.message, ...weak }, { status: e.status, headers });
}
