/**
 * The benchmark's report: one row per scenario, the ratios and targets (bench/lib/targets.ts;
 * a miss is a finding, never a failure), a console table, a Markdown table for the README,
 * and the JSON written to bench/results/latest.json.
 */
import { join } from "node:path";

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

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  postgres: string;
  deno: string;
  node: string;
  autocannon: string;
  os: string;
}

/** The machine the run shared between server, load generator and PostgreSQL. */
export async function describeMachine(pgVersion: string, loader: { node: string; autocannon: string }): Promise<Machine> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const meminfo = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const kb = Number(meminfo.match(/MemTotal:\s+(\d+)/)?.[1] ?? 0);
  return {
    cpus: navigator.hardwareConcurrency,
    cpuModel: cpuinfo.match(/model name\s*:\s*(.+)/)?.[1]?.trim() ?? "unknown",
    memoryGiB: Math.round((kb / 1024 / 1024) * 10) / 10,
    postgres: pgVersion,
    deno: Deno.version.deno,
    node: loader.node,
    autocannon: loader.autocannon,
    os: `${Deno.build.os} ${Deno.build.arch}`,
  };
}

const machineLine = (m: Machine) =>
  `${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB RAM; ${m.postgres.split(" on ")[0]}; Deno ${m.deno}; Node ${m.node}; autocannon ${m.autocannon}`;

/** Everything a finished run reports. */
export interface Report {
  mode: string;
  command: string;
  machine: Machine;
  durationS: number;
  settings: Record<string, number>;
  rows: ScenarioRow[];
  ratios: Record<string, number | null>;
  targets: Target[];
  rotation: unknown;
  scale: unknown[];
  raw: Record<string, unknown>;
}

/** The Markdown of latest.md, and of README.md's generated part. */
export function renderMarkdown(r: Report): string {
  return [
    `Run: ${new Date().toISOString().slice(0, 10)}, ${r.mode} mode, ${r.durationS.toFixed(0)} s. Machine: ${machineLine(r.machine)}. Server, load generator and PostgreSQL share the machine.`,
    "",
    "```sh",
    r.command,
    "```",
    "",
    markdownTable(r.rows),
    "",
    markdownTargets(r.ratios, r.targets),
  ].join("\n");
}

/** Writes latest.json (every figure) and latest.md (`markdown`) into `dir`. */
export async function writeResults(dir: string, r: Report, markdown: string): Promise<void> {
  const results = {
    generatedAt: new Date().toISOString(), mode: r.mode, command: r.command, machine: r.machine, durationS: r.durationS,
    settings: r.settings, scenarios: r.rows, ratios: r.ratios, targets: r.targets, rotation: r.rotation, scale: r.scale, raw: r.raw,
  };
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, "latest.json"), JSON.stringify(results, null, 2) + "\n");
  await Deno.writeTextFile(join(dir, "latest.md"), markdown + "\n");
}

/** The report on stdout: the table, the ratios, each target met or missed. */
export function printReport(r: Report): void {
  console.log(`\nSigyl Secrets benchmark, ${r.mode} mode — ${machineLine(r.machine)}\n`);
  console.log(consoleTable(r.rows));
  console.log("");
  for (const [k, v] of Object.entries(r.ratios)) console.log(`${k.padEnd(30)} ${v === null ? "–" : v.toFixed(3)}`);
  console.log("");
  for (const t of r.targets) console.log(`${t.met ? "met   " : "MISSED"}  ${t.name}: ${t.goal}; measured ${t.value}`);
  console.log(`\nfigures: bench/results/latest.json; Markdown: bench/results/latest.md; ${r.durationS.toFixed(1)} s in all`);
}
