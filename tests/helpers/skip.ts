/**
 * Suites and tests that cannot run everywhere (they need PostgreSQL, pg_cron, the Supabase
 * CLI) say why when they skip, in one line a run can be grepped for:
 * `[sigyl tests] skipped: <name>: <reason>`.
 */
import { describe, it, type TestContext } from "vitest";

/** Why a suite that needs PostgreSQL skips, or null when DATABASE_URL is set. */
export const needsPostgres = process.env.DATABASE_URL ? null : "needs DATABASE_URL (PostgreSQL)";

function saySkipped(name: string, reason: string | null): boolean {
  if (reason === null) return false;
  console.log(`[sigyl tests] skipped: ${name}: ${reason}`);
  return true;
}

/** `describe(name, fn)`; or, when `skipReason` is set, a skipped suite that prints it. */
export function describeOrSkip(name: string, skipReason: string | null, fn: () => void): void {
  describe.skipIf(saySkipped(name, skipReason))(name, fn);
}

/** `it(name, fn)`; or, when `skipReason` is set, a skipped test that prints it. */
export function itOrSkip(name: string, skipReason: string | null, fn: (ctx: TestContext) => Promise<void> | void): void {
  it.skipIf(saySkipped(name, skipReason))(name, fn);
}

/** Skips the running test from inside, once it finds out it cannot run, and prints why. */
export function skipNow(ctx: TestContext, reason: string): never {
  saySkipped(ctx.task.name, reason);
  return ctx.skip(reason);
}
