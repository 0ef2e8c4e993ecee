/**
 * The CLI's exit codes and its one error line. Every failure ends as `sigyl: <message> (<code>)`
 * on stderr and one of the exit codes below, so scripts can branch on the kind of failure
 * without parsing text.
 */
import { SigylApiError } from "../shared/client/client.ts";

export const EXIT = {
  ok: 0,
  /** Reserved for the unexpected: a bug, or a failure nothing below describes. */
  unexpected: 1,
  usage: 2,
  /** 401 or 403: no credential, a bad or expired one, or not allowed. */
  auth: 3,
  notFound: 4,
  /** 409 or 412: a stale version, a name taken, a deployment not ready. */
  conflict: 5,
  /** Any other 4xx. */
  client: 6,
  /** 5xx, or the server could not be reached. */
  server: 7,
} as const;

/** A failure the CLI itself reports: its message, a stable code and the exit code. */
export class CliError extends Error {
  override readonly name = "CliError";
  constructor(message: string, readonly code: string, readonly exitCode: number) {
    super(message);
  }
}

export const usageError = (message: string) => new CliError(message, "usage", EXIT.usage);

/** The exit code of an API answer's status. */
export function exitCodeOf(status: number): number {
  if (status === 401 || status === 403) return EXIT.auth;
  if (status === 404) return EXIT.notFound;
  if (status === 409 || status === 412) return EXIT.conflict;
  if (status >= 400 && status < 500) return EXIT.client;
  return EXIT.server;
}

/** fetch's TypeError for a server that does not answer (refused, reset, unknown host). */
function unreachable(err: unknown): string | null {
  if (!(err instanceof TypeError)) return null;
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? err.message;
}

/** What to print and how to exit for anything thrown by a command. */
export function describeFailure(err: unknown, url: string): { line: string; exitCode: number } {
  if (err instanceof CliError) return { line: `sigyl: ${err.message} (${err.code})`, exitCode: err.exitCode };
  if (err instanceof SigylApiError) {
    const detail = err.details.length ? `: ${err.details.map((d) => `${d.path || "body"} ${d.message}`).join("; ")}` : "";
    const request = err.requestId && err.status >= 500 ? ` [request ${err.requestId}]` : "";
    return { line: `sigyl: ${err.message}${detail}${request} (${err.code})`, exitCode: exitCodeOf(err.status) };
  }
  const cause = unreachable(err);
  if (cause !== null) {
    return { line: `sigyl: cannot reach the API at ${url}: ${cause} (unreachable)`, exitCode: EXIT.server };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { line: `sigyl: ${message.split("\n")[0]} (unexpected)`, exitCode: EXIT.unexpected };
}
