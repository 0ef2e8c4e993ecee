import { zValidator } from "@hono/zod-validator";
import type { ValidationTargets } from "hono";
import type { z } from "zod";
import { AppError } from "../errors.ts";

/**
 * zod validation for a request part; failures become one 400 `invalid_request` whose details
 * name the offending fields and never echo a value.
 */
export function validate<T extends z.ZodType, Target extends keyof ValidationTargets>(target: Target, schema: T) {
  return zValidator(target, schema, (result) => {
    if (!result.success) {
      const issues = result.error.issues.map((i) => ({
        path: i.path.map(String).join(".") || target,
        message: i.code === "unrecognized_keys" ? `unknown field(s): ${(i as { keys: string[] }).keys.join(", ")}` : i.message,
      }));
      throw new InvalidRequest(issues);
    }
  });
}

export class InvalidRequest extends AppError {
  constructor(readonly issues: { path: string; message: string }[]) {
    super(400, "invalid_request", `Invalid request: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`);
  }
}
