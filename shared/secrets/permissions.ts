/**
 * Permission levels, weakest first, and the one ranking of them in TypeScript (the database
 * ranks the same levels with its `secret_permission` enum, whose order is this one). The
 * owner, and the service role acting as owner, holds every level.
 */

/** Levels a grant can give. */
export const GRANT_LEVELS = ["use", "read", "write", "admin"] as const;
export type GrantLevel = typeof GRANT_LEVELS[number];

/** The caller's level on a secret as the API reports it. */
export type Permission = GrantLevel | "owner";

const RANK: readonly Permission[] = [...GRANT_LEVELS, "owner"];

/** Does `level` (null: the secret is not visible) allow what needs `min`? */
export function atLeast(level: string | null, min: Permission): boolean {
  const rank = RANK.indexOf(level as Permission);
  return rank >= 0 && rank >= RANK.indexOf(min);
}
