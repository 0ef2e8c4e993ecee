/** What every command shares: its session from the global options, and parsing of numbers. */
import type { Command } from "commander";
import { type components, type paths, SigylApiError, type SigylClient, unwrap } from "../../shared/client/client.ts";
import { CliError, EXIT, usageError } from "../errors.ts";
import { type GlobalOptions, openSession, type Session } from "../session.ts";

export type Secret = components["schemas"]["Secret"];

/** The session of the command being run, from `--url`/`--token` wherever they were given. */
export const sessionOf = (cmd: Command): Promise<Session> => openSession(cmd.optsWithGlobals<GlobalOptions>());

/** A positive whole number from an option or argument, or a usage error naming it. */
export function wholeNumber(name: string, min = 1) {
  return (text: string): number => {
    if (!/^\d+$/.test(text) || Number(text) < min || !Number.isSafeInteger(Number(text))) {
      throw usageError(`${name} must be a whole number from ${min}: ${text}`);
    }
    return Number(text);
  };
}

/** Seconds, fractions allowed (`--interval 0.5`). */
export function seconds(name: string) {
  return (text: string): number => {
    const n = Number(text);
    if (!/^\d+(\.\d+)?$/.test(text) || !(n > 0)) throw usageError(`${name} must be a number of seconds above 0: ${text}`);
    return n;
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (text: string) => UUID.test(text);

/** Every secret visible to the caller that the filter keeps, following the cursors. */
export type ListQuery = NonNullable<paths["/secrets"]["get"]["parameters"]["query"]>;

export function listAll(api: SigylClient, query: ListQuery): Promise<Secret[]> {
  return allPages((cursor) => unwrap(api.GET("/secrets", { params: { query: { ...query, limit: query.limit ?? "100", cursor } } })));
}

/** Every item of a cursor-paged list: `page(cursor)` until its `nextCursor` is null. */
export async function allPages<T>(page: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor: string | null }>): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const next = await page(cursor);
    items.push(...next.items);
    cursor = next.nextCursor ?? undefined;
  } while (cursor);
  return items;
}

/**
 * The id of a secret named by id or by name. A name must match exactly one secret visible to
 * the caller (names are unique per owner, so a teammate's shared secret may share one).
 */
export async function resolveSecret(api: SigylClient, ref: string, options: { deleted?: boolean } = {}): Promise<string> {
  if (isUuid(ref)) return ref;
  const found = (await listAll(api, {
    prefix: ref, deleted: options.deleted ? "true" : undefined, includeInactive: "true",
  })).filter((s) => s.name === ref);
  if (found.length === 1) return found[0].id;
  if (found.length === 0) {
    throw new CliError(`no ${options.deleted ? "deleted " : ""}secret named ${ref} is visible to you`, "secret_not_found", EXIT.notFound);
  }
  throw usageError(`${found.length} secrets named ${ref} are visible to you; name one by id: ${found.map((s) => s.id).join(", ")}`);
}

/** True when the API answered 404 for the secret itself. */
export const isSecretNotFound = (err: unknown) => err instanceof SigylApiError && err.code === "secret_not_found";
