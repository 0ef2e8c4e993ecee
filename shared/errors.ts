/**
 * The one error type of the service and its one catalogue. Every failure a caller may see is
 * an `AppError` whose stable `code` is a key of `ERRORS`, which gives its status, its usual
 * message and when it happens (the README's error table is checked against this catalogue).
 * `app.onError` maps it to the envelope in one place; anything else becomes a 500 carrying
 * only the request id. The database raises the same codes (SQLSTATE class S0, message =
 * code, optionally followed by ": " and a detail) and they map through the same catalogue.
 */
export type ErrorStatus = 400 | 401 | 403 | 404 | 405 | 409 | 410 | 413 | 415 | 422 | 429 | 500 | 503;

interface CatalogueEntry {
  status: ErrorStatus;
  /** The message a caller gets unless a more precise one is given. */
  message: string;
  /** When it happens, for the README's error table. */
  when: string;
}

export const ERRORS = {
  invalid_request: {
    status: 400, message: "The request breaks a rule.",
    when: "the body, query or path breaks a rule (`details` name the fields and, for a choice, the allowed values)",
  },
  invalid_json: { status: 400, message: "The body is not valid JSON.", when: "the body is not JSON" },
  invalid_cursor: {
    status: 400, message: "The cursor is not one this API returned.", when: "a cursor this API did not return",
  },
  idempotency_key_invalid: {
    status: 400, message: "Idempotency-Key must be 1 to 255 visible ASCII characters.",
    when: "an `Idempotency-Key` header that is empty, longer than 255 characters or not visible ASCII",
  },
  cannot_grant_owner: {
    status: 400, message: "The owner already holds every permission.", when: "granting a permission to the owner",
  },
  owner_required: {
    status: 400, message: "The service role must name the owner (ownerId).",
    when: "the service role creating a secret without `ownerId`",
  },
  unauthenticated: {
    status: 401, message: "A valid access token is required.",
    when: "missing, invalid, expired, wrong-audience or unsigned token, or a deployment token on another route (always the same message)",
  },
  forbidden: {
    status: 403, message: "Your permission on this secret does not allow this action.",
    when: "visible, but your level (or kind of caller) does not allow it",
  },
  pin_requires_read: {
    status: 403, message: "Pinning a version needs read on the secret; with use, a binding follows the current version.",
    when: "binding a secret at a pinned `version` for a deployment whose owner holds only `use` on it",
  },
  not_found: { status: 404, message: "No such route.", when: "unknown route" },
  secret_not_found: {
    status: 404, message: "No secret with this id is visible to you.", when: "absent, or not visible to you",
  },
  version_not_found: { status: 404, message: "The secret has no such version.", when: "no such version" },
  user_not_found: { status: 404, message: "No such user.", when: "sharing with an unknown user id or email" },
  grant_not_found: {
    status: 404, message: "The user holds no grant on this secret.", when: "revoking a grant that does not exist",
  },
  deployment_not_found: {
    status: 404, message: "No deployment with this id is visible to you.",
    when: "not your deployment, or not the one this token opens",
  },
  token_not_found: { status: 404, message: "No such token for this deployment.", when: "revoking an unknown token" },
  key_not_found: { status: 404, message: "No KEK with this version.", when: "retiring an unknown KEK" },
  method_not_allowed: {
    status: 405, message: "This route does not take this method.",
    when: "a known path with another method (`Allow` lists the methods it takes)",
  },
  name_taken: {
    status: 409, message: "A live secret with this name already exists.", when: "the name is used by another live secret",
  },
  version_conflict: {
    status: 409, message: "The secret's current version is not the expected version.",
    when: "stale `expectedVersion` or `If-Match`",
  },
  secret_not_deleted: { status: 409, message: "The secret is not deleted.", when: "restoring a live secret" },
  key_active: {
    status: 409, message: "The active KEK cannot be retired; rotate first.", when: "retiring the active KEK",
  },
  key_in_use: {
    status: 409, message: "The KEK still wraps DEKs; finish the rotation first.",
    when: "retiring a KEK that still wraps DEKs",
  },
  kek_not_active: {
    status: 409, message: "Another rotation made a newer KEK active; call rotate again.",
    when: "two KEK rotations raced and this one's key is no longer the active one",
  },
  kek_retired: {
    status: 409, message: "The KEK this write was sealed under was retired meanwhile; retry.",
    when: "a write sealed under a KEK that a rotation retired while it ran (retried once by the function first)",
  },
  deployment_invalid: {
    status: 409, message: "The deployment has problems.",
    when: "the env of a deployment with problems, or moving it to `deploying`; the message names every one",
  },
  deployment_not_ready: {
    status: 409, message: "The deployment is not deploying or running.",
    when: "a deployment token asks for the env of a deployment that is neither deploying nor running",
  },
  deployment_in_progress: {
    status: 409, message: "Bindings cannot change while the deployment is deploying.",
    when: "changing the bindings of a deployment that is deploying",
  },
  conflict: {
    status: 409, message: "The request conflicts with the current state.",
    when: "a concurrent change removed or took what the request refers to; retry",
  },
  idempotency_answer_unavailable: {
    status: 409, message: "The write sent with this Idempotency-Key was done, but its answer can no longer be shown. Read the resource for its state.",
    when: "a retry whose first write committed, with its answer sealed under a KEK that a rotation has retired since (nothing is done again)",
  },
  idempotency_key_in_flight: {
    status: 409, message: "A request with this Idempotency-Key is still running, or its outcome is unknown.",
    when: "the key of a KEK rotation (`POST /admin/keys/rotate`) whose first call has not stored its answer: still running, or it stopped without one (see `GET /admin/keys`; call again with a new key)",
  },
  secret_deleted: { status: 410, message: "The secret is deleted.", when: "the value or a change of a deleted secret" },
  secret_expired: { status: 410, message: "The secret has expired.", when: "the value of an expired secret" },
  secret_inactive: { status: 410, message: "The secret is inactive.", when: "the value of a switched-off secret" },
  recovery_window_passed: {
    status: 410, message: "The recovery window of this deleted secret has passed; it will be purged.",
    when: "restoring a deleted secret after its recovery window (it awaits the purge)",
  },
  payload_too_large: { status: 413, message: "The request body is too large.", when: "body over 128 KiB" },
  unsupported_media_type: {
    status: 415, message: "The body must be JSON, sent with Content-Type: application/json.",
    when: "a body on a route that takes JSON, not declared as JSON in UTF-8 (`Content-Type: application/json`)",
  },
  not_representable_as_dotenv: {
    status: 422, message: "A value cannot be written as dotenv verbatim; use format=json.",
    when: "`format=dotenv` for a value dotenv cannot hold verbatim (use JSON)",
  },
  idempotency_key_reused: {
    status: 422, message: "This Idempotency-Key was used with another request.",
    when: "an `Idempotency-Key` you sent in the last 24 hours with another method, path, query, body or `If-Match` (nothing is done)",
  },
  decryption_failed: {
    status: 500, message: "The value could not be decrypted.",
    when: "a stored value does not decrypt (never with detail; `requestId` finds the server log line)",
  },
  rewrap_unverified: {
    status: 500, message: "A re-wrapped DEK did not unwrap to the same key; the rotation stopped and stored nothing of that batch.",
    when: "a KEK rotation's new wrapping of a DEK failed its check (never stored; the server log names the version); every value still reads",
  },
  api_role_required: {
    status: 500, message: "The service's database login may not call the API; see the deployment guide.",
    when: "the function's database login is neither `sigyl_api` nor a member of it, so the database refuses every API helper (see Deploy)",
  },
  internal_error: {
    status: 500, message: "Internal error.", when: "anything unexpected (never with detail; `requestId` finds the server log line)",
  },
  database_unavailable: {
    status: 503, message: "The database is unavailable. Retry shortly.", when: "the database does not answer; on a write the outcome is unknown: retry with the same `Idempotency-Key`",
  },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERRORS;

const isErrorCode = (code: string): code is ErrorCode => Object.hasOwn(ERRORS, code);

export class AppError extends Error {
  readonly status: ErrorStatus;
  constructor(readonly code: ErrorCode, message?: string) {
    super(message ?? ERRORS[code].message);
    this.name = "AppError";
    this.status = ERRORS[code].status;
  }
}

/** The error for a catalogued code, with its usual message unless a more precise one is given. */
export function appError(code: ErrorCode, message?: string): AppError {
  return new AppError(code, message);
}

/**
 * "<code>" or "<code>: <detail>", as the database words its refusals (raised with SQLSTATE
 * class S0, or returned as an outcome), to the catalogued error; null for an unknown code.
 */
export function fromCodedMessage(text: string): AppError | null {
  const at = text.indexOf(": ");
  const code = at < 0 ? text : text.slice(0, at);
  if (!isErrorCode(code)) return null;
  return appError(code, at < 0 ? undefined : text.slice(at + 2));
}

/** A database error reduced to what both drivers (node-postgres, PGlite) report. */
export interface DbErrorLike {
  code?: string;
  message?: string;
  constraint?: string;
  constraint_name?: string;
}

const UNAVAILABLE_CODES = new Set([
  // Socket errnos; CONNECTION_CLOSED, CONNECT_TIMEOUT and CONNECTION_ENDED are what
  // shared/db/postgres.ts names node-postgres's lost, timed-out and ended connections.
  "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "EPIPE", "CONNECTION_CLOSED",
  "CONNECTION_ENDED", "CONNECTION_DESTROYED", "CONNECT_TIMEOUT", "57P01", "57P02", "57P03",
  "53300", "08000", "08001", "08003", "08004", "08006",
  // The request's budget (shared/db/database.ts): statement_timeout, lock_timeout,
  // idle_in_transaction_session_timeout. The transaction rolled back; a retry may well succeed.
  "57014", "55P03", "25P03",
]);

/** Maps a database error to an AppError where it has a meaning for the caller, or null. */
export function fromDatabaseError(err: unknown): AppError | null {
  if (!err || typeof err !== "object") return null;
  const e = err as DbErrorLike;
  if (e.code?.startsWith("S0") && e.message) return fromCodedMessage(e.message);
  if (e.code === "23503") return appError("conflict", "The request refers to something that no longer exists.");
  if (e.code === "23505") {
    const constraint = e.constraint ?? e.constraint_name ?? "";
    return constraint.includes("name") ? appError("name_taken") : appError("conflict");
  }
  // Class 22 (data exception): a value the database cannot take. Validation should have
  // caught it; answer as bad input rather than as a server fault.
  if (e.code?.startsWith("22")) return appError("invalid_request", "A value in the request cannot be stored.");
  if (e.code && UNAVAILABLE_CODES.has(e.code)) return appError("database_unavailable");
  return null;
}
