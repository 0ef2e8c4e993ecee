/**
 * Writes env files that the `dotenv` package parses back to exactly the same values.
 *
 * dotenv's grammar has no general escape: inside double quotes only `\n` and `\r` are
 * expanded, a quote preceded by a backslash never closes a value, and CR LF becomes LF
 * everywhere. So each value gets the first form that holds it verbatim: bare, `backticks`,
 * 'single' or "double" quotes (CR written as \r). A value no form can hold (it contains `,
 * ' and ", say, with a trailing backslash) is refused rather than silently altered; JSON
 * output carries any value. Hand-written because dotenv only parses; tests run every
 * generated value through dotenv.parse.
 */
export class NotRepresentableError extends Error {
  constructor(readonly names: string[]) {
    super(`not representable in dotenv: ${names.join(", ")}`);
  }
}

const BARE = /^[^\s'"`#\\][^#\r\n]*$/;

/** One value in a form dotenv reads back verbatim, or null. */
export function quoteDotenvValue(value: string): string | null {
  if (value === "") return "''";
  if (BARE.test(value) && !/\s$/.test(value)) return value;
  const endsWithBackslash = value.endsWith("\\");
  if (!value.includes("\r") && !endsWithBackslash) {
    if (!value.includes("`")) return `\`${value}\``;
    if (!value.includes("'")) return `'${value}'`;
  }
  // Double quotes: \n and \r are expanded, so no literal backslash-n/r may be present.
  if (!value.includes('"') && !/\\[nr]/.test(value) && !endsWithBackslash) {
    return `"${value.replace(/\r/g, "\\r")}"`;
  }
  return null;
}

/** `NAME=value` lines, sorted as given; throws NotRepresentableError naming every bad entry. */
export function formatDotenv(entries: readonly { name: string; value: string }[]): string {
  const bad: string[] = [];
  const lines = entries.map(({ name, value }) => {
    const quoted = quoteDotenvValue(value);
    if (quoted === null) bad.push(name);
    return `${name}=${quoted}`;
  });
  if (bad.length) throw new NotRepresentableError(bad);
  return lines.join("\n") + (lines.length ? "\n" : "");
}
