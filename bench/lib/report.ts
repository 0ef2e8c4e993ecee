/**
 * The benchmark's report: one row per scenario, the ratios the issue asks for, the targets
 * (a miss is a finding, never a failure), a console table, a Markdown table for the README,
 * and the JSON written to bench/results/latest.json.
 */

export interface ScenarioRow {
  key: string;
  label: string;
  connections: number | null;
  /** Successful requests per second (DEKs per second for the rotation row). */
  rps: number | null;
  p50: number | null;
  p99: number | null;
  errors: number | null;
  requests: number | null;
  unit?: string;
  note?: string;
}

export interface Target {
  name: string;
  goal: string;
  value: string;
  met: boolean;
}

const fmt = (n: number | null | undefined, digits = 2) =>
  n === null || n === undefined || Number.isNaN(n) ? "–" : n >= 1000 ? Math.round(n).toLocaleString("en-US") : n.toFixed(digits);

/** Requests per second, or the row's own unit (DEK/s, batches/s). */
const rate = (r: ScenarioRow) => (r.unit ? `${fmt(r.rps, r.rps !== null && r.rps < 100 ? 1 : 0)} ${r.unit}` : fmt(r.rps, 1));

export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  return a === null || a === undefined || b === null || b === undefined || b === 0 ? null : a / b;
}

export function consoleTable(rows: ScenarioRow[]): string {
  const head = ["scenario", "conns", "req/s", "p50 ms", "p99 ms", "errors"];
  const body = rows.map((r) => [
    r.label,
    r.connections === null ? "–" : String(r.connections),
    rate(r),
    fmt(r.p50),
    fmt(r.p99),
    r.errors === null ? "–" : String(r.errors),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

export function markdownTable(rows: ScenarioRow[]): string {
  const out = ["| scenario | conns | req/s | p50 ms | p99 ms | errors |", "|---|--:|--:|--:|--:|--:|"];
  for (const r of rows) {
    out.push(`| ${r.label} | ${r.connections ?? "–"} | ${rate(r)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${r.errors ?? "–"} |`);
  }
  return out.join("\n");
}

export function markdownTargets(ratios: Record<string, number | null>, targets: Target[]): string {
  const out = ["| ratio | value |", "|---|--:|"];
  for (const [k, v] of Object.entries(ratios)) out.push(`| ${k} | ${v === null ? "–" : v.toFixed(3)} |`);
  out.push("", "| target | goal | measured | |", "|---|---|---|---|");
  for (const t of targets) out.push(`| ${t.name} | ${t.goal} | ${t.value} | ${t.met ? "met" : "**missed**"} |`);
  return out.join("\n");
}

const START = "<!-- bench:results:start -->";
const END = "<!-- bench:results:end -->";

/** Replaces the generated part of README.md's Benchmarks section (between the markers). */
export async function updateReadme(path: string, generated: string): Promise<boolean> {
  const text = await Deno.readTextFile(path);
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b < a) return false;
  await Deno.writeTextFile(path, `${text.slice(0, a + START.length)}\n${generated}\n${text.slice(b)}`);
  return true;
}
