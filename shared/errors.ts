/**
 * The one error type of the service. Every failure a caller may see is an `AppError` with a
 * stable `code`; `app.onError` maps it to the envelope and status in one place. Anything
 * else becomes a 500 carrying only the request id.
 */
export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 410 | 413 | 415 | 422 | 429 | 500 | 503;

export class AppError extends Error {
  constructor(
    readonly status: ErrorStatus,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "AppError";
  }
}

/** Human text for the codes the database raises (SQLSTATE class S0, message = code). */
const MESSAGES: Record<string, string> = {
  secret_not_found: "No secret with this id is visible to you.",
  forbidden: "Your permission on this secret does not allow this action.",
  secret_deleted: "The secret is deleted.",
  secret_not_deleted: "The secret is not deleted.",
  secret_expired: "The secret has expired.",
  secret_inactive: "The secret is inactive.",
  version_conflict: "The secret's current version is not the expected version.",
  version_not_found: "The secret has no such version.",
  user_not_found: "No such user.",
  grant_not_found: "The user holds no grant on this secret.",
  cannot_grant_owner: "The owner already holds every permission.",
  owner_required: "The service role must name the owner (ownerId).",
  name_taken: "A live secret with this name already exists.",
  recovery_window_passed: "The recovery window of this deleted secret has passed; it will be purged.",
  deployment_not_found: "No deployment with this id is visible to you.",
  token_not_found: "No such token for this deployment.",
};

const STATUS_BY_SQLSTATE: Record<string, ErrorStatus> = {
  S0400: 400,
  S0403: 403,
  S0404: 404,
  S0409: 409,
  S0410: 410,
};

/** Builds the error for a stable code, with its usual message. */
export function appError(status: ErrorStatus, code: string, message?: string): AppError {
  return new AppError(status, code, message ?? MESSAGES[code] ?? code);
}

/** A database error reduced to what both drivers (postgres.js, PGlite) report. */
export interface DbErrorLike {
  code?: string;
  message?: string;
  constraint?: string;
  constraint_name?: string;
}

const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "EPIPE", "CONNECTION_CLOSED",
  "CONNECTION_ENDED", "CONNECTION_DESTROYED", "CONNECT_TIMEOUT", "57P01", "57P02", "57P03",
  "53300", "08000", "08001", "08003", "08004", "08006",
]);

/** Maps a database error to an AppError where it has a meaning for the caller, or null. */
export function fromDatabaseError(err: unknown): AppError | null {
  if (!err || typeof err !== "object") return null;
  const e = err as DbErrorLike;
  const status = e.code ? STATUS_BY_SQLSTATE[e.code] : undefined;
  // The message is the stable code, optionally followed by ": " and a human detail.
  if (status && e.message) {
    const at = e.message.indexOf(": ");
    return at < 0 ? appError(status, e.message) : appError(status, e.message.slice(0, at), e.message.slice(at + 2));
  }
  if (e.code === "23503") {
    return appError(409, "conflict", "The request refers to something that no longer exists.");
  }
  if (e.code === "23505") {
    const constraint = e.constraint ?? e.constraint_name ?? "";
    if (constraint.includes("name")) return appError(409, "name_taken");
    return appError(409, "conflict", "The request conflicts with the current state.");
  }
  // Class 22 (data exception): a value the database cannot take. Validation should have
  // caught it; answer as bad input rather than as a server fault.
  if (e.code?.startsWith("22")) {
    return appError(400, "invalid_request", "A value in the request cannot be stored.");
  }
  if (e.code && UNAVAILABLE_CODES.has(e.code)) {
    return appError(503, "database_unavailable", "The database is unavailable. Retry shortly.");
  }
  return null;
}
