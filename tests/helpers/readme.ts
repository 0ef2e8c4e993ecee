/** The README, read as data: its sections and the body rows of its Markdown tables. */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ROOT } from "../../scripts/lib/local.ts";

export const readme = () => readFile(join(ROOT, "README.md"), "utf8");

/** The text under a heading (`## Layout`) up to the next heading of its level or higher. */
export function section(markdown: string, heading: string): string {
  const level = heading.match(/^#+/)![0].length;
  const lines = markdown.split("\n");
  const start = lines.findIndex((l) => l.trim() === heading);
  if (start < 0) throw new Error(`README has no section "${heading}"`);
  const end = lines.findIndex((l, i) => i > start && /^#+ /.test(l) && l.match(/^#+/)![0].length <= level);
  return lines.slice(start + 1, end < 0 ? undefined : end).join("\n");
}

/**
 * The body rows of every table in `text` (header and separator rows left out), as trimmed
 * cells; `\|` inside a cell is a literal bar.
 */
export function tableRows(text: string): string[][] {
  const rows: string[][] = [];
  let lineInTable = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith("|")) {
      lineInTable = 0;
      continue;
    }
    if (lineInTable++ < 2) continue;
    rows.push(line.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, "|")));
  }
  return rows;
}

/**
 * The routes the README's route tables list (the API and Deployments sections), as
 * `METHOD /secrets/path` with `:param`s and no trailing slash, in table order.
 */
export async function documentedRoutes(): Promise<string[]> {
  const text = await readme();
  return [section(text, "## API"), section(text, "## Deployments: from binding to a running container")]
    .flatMap((s) => tableRows(s))
    .map(([cell]) => cell.match(/^`(GET|POST|PUT|PATCH|DELETE) (\/secrets[^`[]*)/))
    .filter((m): m is RegExpMatchArray => m !== null)
    .map((m) => `${m[1]} ${m[2].replace(/\/$/, "") || "/secrets"}`);
}
