/**
 * What the scenarios record: one table row per scenario (in the order they ran) and the raw
 * result behind it, under the same key, for bench/results/latest.json. `createMeasure` runs a
 * load through the load generator with the mode's durations and records it.
 */
import type { LoadResult, LoadSpec, Loader } from "./children.ts";
import type { Mode } from "./options.ts";
import type { ScenarioRow } from "./report.ts";

export interface Results {
  readonly rows: ScenarioRow[];
  readonly raw: Record<string, unknown>;
  /** Adds a row whose figures are not a plain load result's (a rate of DEKs, of batches). */
  add(row: ScenarioRow): void;
  /** Adds `result` as row `key` and keeps it in `raw`; logs its errors, if any. */
  record(key: string, label: string, result: LoadResult): LoadResult;
}

export function createResults(log: (msg: string) => void): Results {
  const rows: ScenarioRow[] = [];
  const raw: Record<string, unknown> = {};
  return {
    rows,
    raw,
    add: (row) => void rows.push(row),
    record(key, label, result) {
      raw[key] = result;
      rows.push({
        key, label, connections: result.connections, rps: result.rps, p50: result.latency.p50, p99: result.latency.p99,
        errors: result.errors, requests: result.requests,
      });
      if (result.errors) log(`  ${label}: ${result.errors} errors: ${JSON.stringify(result.statusCodes)}`);
      return result;
    },
  };
}

/** A load as a scenario states it: on the service unless `url` names another server (the floor). */
export type Load = Omit<LoadSpec, "url"> & { url?: string };

export interface Measure {
  /** One load for the mode's duration, after its warmup. */
  once(key: string, label: string, spec: Load): Promise<LoadResult>;
  /** Scenarios compared by a ratio run interleaved, `mode.rounds` times, so drift hits them alike. */
  together(items: { key: string; label: string; spec: Load }[]): Promise<LoadResult[]>;
}

export function createMeasure(
  deps: { loader: Loader; origin: string; mode: Mode; results: Results; log: (msg: string) => void },
): Measure {
  const { loader, origin, mode, results, log } = deps;
  return {
    async once(key, label, spec) {
      log(`${label}`);
      return results.record(key, label, await loader.run({ url: origin, duration: mode.duration, warmup: mode.warmup, ...spec }));
    },
    async together(items) {
      log(`${items.map((i) => i.label).join(" | ")} (${mode.rounds} round${mode.rounds > 1 ? "s" : ""} of ${mode.roundDuration} s each)`);
      const measured = await loader.rounds(
        items.map((i) => ({ url: origin, duration: mode.roundDuration, warmup: mode.warmup, ...i.spec })),
        mode.rounds,
      );
      return items.map((i, k) => results.record(i.key, i.label, measured[k]));
    },
  };
}
