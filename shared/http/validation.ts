/**
 * Request validation: the zod primitives every feature shares, and the one way a failed parse
 * becomes a 400 `invalid_request` whose details name the offending fields (and, for a choice,
 * the allowed values) and never echo a value.
 */
import { zValidator } from "@hono/zod-validator";
import type { ValidationTargets } from "hono";
import { z } from "zod";
import { AppError } from "../errors.ts";

/** Shaped like a UUID, any version (user ids from tokens, ids inside cursors). */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A UUID in its canonical lower-case form (ids are part of the AAD, so spelling matters). */
export const uuid = z.uuid().transform((s) => s.toLowerCase());

/** ISO 8601 with an offset, normalised to UTC (PostgreSQL refuses offsets beyond ±15:59). */
export const isoDate = z.iso.datetime({ offset: true }).transform((v) => new Date(v).toISOString());

/** A positive int4, as a version number or any other counter the database keeps. */
export const int4 = z.number().int().min(1).max(2_147_483_647);

/**
 * An integer from a path or query string, written as plain decimal: no sign, no leading zero,
 * no spaces, exponent, fraction or `0x` (z.coerce would take all of those).
 */
export const decimalInt = (min: number, max: number) =>
  z.string().regex(/^(?:0|[1-9][0-9]*)$/, "a decimal integer").transform(Number).pipe(z.number().int().min(min).max(max));

/** The `:id` path parameter of the routes that take only one. */
export const idParam = z.strictObject({ id: uuid });

type Issue = z.core.$ZodIssue;

/** What a field got wrong, in words that never repeat the value sent. */
function describe(issue: Issue): string {
  if (issue.code === "unrecognized_keys") return `unknown field(s): ${issue.keys.join(", ")}`;
  if (issue.code === "invalid_value") return `must be one of: ${issue.values.map(String).join(", ")}`;
  return issue.message;
}

export class InvalidRequest extends AppError {
  constructor(readonly issues: { path: string; message: string }[]) {
    super("invalid_request", `Invalid request: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`);
  }
}

/** The JSON-body validators `validate` has made: the routes holding one are the routes that take a body. */
const jsonBodyValidators = new WeakSet<object>();

/** Whether a route handler is a JSON-body validator, so its route takes a body. */
export const isJsonBodyValidator = (handler: object) => jsonBodyValidators.has(handler);

/**
 * zod validation of a request part; a failure throws `InvalidRequest`. `validate("json", …)`
 * is also how a route declares that it takes a body (see `strictBody`).
 */
export function validate<T extends z.ZodType, Target extends keyof ValidationTargets>(target: Target, schema: T) {
  const middleware = zValidator(target, schema, (result) => {
    if (!result.success) {
      throw new InvalidRequest(result.error.issues.map((i) => ({
        path: i.path.map(String).join(".") || target,
        message: describe(i),
      })));
    }
  });
  if (target === "json") jsonBodyValidators.add(middleware);
  return middleware;
}
