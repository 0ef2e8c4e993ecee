/**
 * The soak's arithmetic, apart from its processes so tests can check it: the options, one
 * interval's row from the calls that ended in it, the table, and the verdict (errors, audited
 * reads against successful reads, server memory growth).
 */

export interface SoakOptions {
  minutes: number;
  connections: number;
}

/** The longest soak accepted: a day. */
export const MAX_MINUTES = 24 * 60;

/** `--minutes N` (fractional allowed; default 10) and `--connections N` (default 32), or why not. */
export function parseSoakArgs(args: string[]): SoakOptions | { error: string } {
  const options: SoakOptions = { minutes: 10, connections: 32 };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split("=", 2);
    const value = inline ?? args[++i];
    if (flag !== "--minutes" && flag !== "--connections") return { error: `unknown option ${args[i]} (use --minutes N, --connections N)` };
    if (value === undefined || !/^\d+(\.\d+)?$/.test(value)) return { error: `${flag} needs a positive number` };
    const n = Number(value);
    if (flag === "--minutes") {
      if (n <= 0 || n > MAX_MINUTES) return { error: `--minutes must be above 0 and at most ${MAX_MINUTES}` };
      options.minutes = n;
    } else {
      if (!Number.isInteger(n) || n < 1 || n > 256) return { error: "--connections must be an integer from 1 to 256" };
      options.connections = n;
    }
  }
  return options;
}

/** One interval per minute; a run shorter than three minutes is cut in three. */
export function intervalMs(minutes: number): number {
  return Math.min(60_000, (minutes * 60_000) / 3);
}

/** What one call left behind: enough to count it, time it and find its audit rows. */
export interface SoakCall {
  op: string;
  ok: boolean;
  ms: number;
  /** Values this call read when it succeeded (a value read: 1; an env read: one per binding); else 0. */
  valuesRead: number;
  requestId: string | null;
}

export interface IntervalRow {
  index: number;
  /** Seconds since the start, at the interval's end. */
  endS: number;
  requests: number;
  errors: number;
  p50: number | null;
  p99: number | null;
  rssMb: number | null;
  /** Values read by successful reads in the interval, and the `accessed` rows found for those requests. */
  readsOk: number;
  audited: number;
  /** Error counts by operation and status, for the report of a failure. */
  errorKinds: Record<string, number>;
}

export function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** The row of an interval, given its calls, the server's RSS and the audit rows found for its reads. */
export function intervalRow(
  index: number, endS: number, calls: (SoakCall & { status?: number })[], rssMb: number | null, audited: number,
): IntervalRow {
  const sorted = calls.map((c) => c.ms).sort((a, b) => a - b);
  const errorKinds: Record<string, number> = {};
  for (const c of calls) {
    if (c.ok) continue;
    const kind = `${c.op} ${c.status ?? "no answer"}`;
    errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
  }
  return {
    index, endS, requests: calls.length, errors: calls.filter((c) => !c.ok).length,
    p50: percentile(sorted, 50), p99: percentile(sorted, 99), rssMb,
    readsOk: calls.reduce((n, c) => n + (c.ok ? c.valuesRead : 0), 0), audited, errorKinds,
  };
}

const ms = (v: number | null) => v === null ? "–" : v < 10 ? v.toFixed(2) : v.toFixed(1);

/** The report's table, one row per interval, in Markdown. */
export function formatTable(rows: IntervalRow[]): string {
  const lines = [
    "| interval | ends at | requests | errors | p50 ms | p99 ms | server RSS MB | values read (200) | audited `accessed` |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.index} | ${r.endS.toFixed(0)} s | ${r.requests} | ${r.errors} | ${ms(r.p50)} | ${ms(r.p99)} | ${r.rssMb === null ? "–" : r.rssMb.toFixed(1)} | ${r.readsOk} | ${r.audited} |`,
    );
  }
  return lines.join("\n");
}

/**
 * How much the server's RSS may grow from the end of the first interval to the end of the
 * last: 64 MB plus a quarter of the first reading. Pools, JIT and caches fill during the first
 * interval; a leak proportional to traffic (a few kB per request) passes this within minutes.
 */
export function rssBoundMb(firstMb: number): number {
  return 64 + firstMb / 4;
}

export interface SoakTotals {
  /** Values read by every successful read of the run, and every `accessed` row in its database. */
  readsOk: number;
  auditedAll: number;
}

/** Why the run failed, one line each; empty when it passed. */
export function verdict(rows: IntervalRow[], totals: SoakTotals): string[] {
  const problems: string[] = [];
  if (rows.length < 2) problems.push(`only ${rows.length} interval(s): too short to judge memory`);
  const errors = rows.reduce((n, r) => n + r.errors, 0);
  if (errors > 0) {
    const kinds: Record<string, number> = {};
    for (const r of rows) for (const [k, n] of Object.entries(r.errorKinds)) kinds[k] = (kinds[k] ?? 0) + n;
    problems.push(`${errors} error(s): ${Object.entries(kinds).map(([k, n]) => `${k} ×${n}`).join(", ")}`);
  }
  if (rows.some((r) => r.requests === 0)) problems.push("an interval served no request");
  for (const r of rows) {
    if (r.audited !== r.readsOk) problems.push(`interval ${r.index}: ${r.readsOk} values read but ${r.audited} audited`);
  }
  if (totals.auditedAll !== totals.readsOk) {
    problems.push(`the run read ${totals.readsOk} values but its database holds ${totals.auditedAll} accessed rows`);
  }
  const first = rows[0]?.rssMb;
  const last = rows[rows.length - 1]?.rssMb;
  if (first == null || last == null) problems.push("the server's RSS could not be read");
  else if (rows.length >= 2 && last - first > rssBoundMb(first)) {
    problems.push(`server RSS grew from ${first.toFixed(1)} MB to ${last.toFixed(1)} MB (bound: +${rssBoundMb(first).toFixed(1)} MB)`);
  }
  return problems;
}
