/**
 * The ratios the benchmark reports and the targets it holds them to. A missed target is a
 * finding printed in the report, never a failed run. Throughput targets compare figures
 * measured in the same interleaved rounds (B* are the bare floors of bench/floor-server.ts).
 */
import type { ColdStart } from "../scenarios/cold-start.ts";
import type { DeploymentEnv } from "../scenarios/deployment-env.ts";
import type { FloorsAndRead } from "../scenarios/floors-and-read.ts";
import type { Rotation } from "../scenarios/rotation.ts";
import type { ScaleResult } from "../scenarios/scale.ts";
import type { Writes } from "../scenarios/writes.ts";
import { ratio, type Target } from "./report.ts";

/** The figures the ratios and targets are made of, as the scenarios returned them. */
export interface Measured extends FloorsAndRead, DeploymentEnv, Writes {
  coldStart: ColdStart;
  rotation: Pick<Rotation, "dekRate" | "reads">;
  /** The scale steps, smallest first. */
  scale: Pick<ScaleResult, "label" | "list" | "read" | "seqScans">[];
}

/**
 * Hosted functions get 256 MB; this leaves room for bursts and larger bodies. Held against the
 * function measured on the hosted heap limit (bench/scenarios/cold-start.ts).
 */
export const RSS_LIMIT_MB = 150;

export function computeRatios(m: Measured): Record<string, number | null> {
  const small = m.scale[0];
  const large = m.scale[m.scale.length - 1];
  return {
    "R/B2j (req/s)": ratio(m.r.rps, m.b2j.rps),
    "F1/B1j (req/s)": ratio(m.f1.rps, m.b1j.rps),
    "B1j/B1 (req/s)": ratio(m.b1j.rps, m.b1.rps),
    "R/S (req/s)": ratio(m.r.rps, m.s.rps),
    "create/B2j (req/s)": ratio(m.create.rps, m.b2jWrites.rps),
    "new version/B2j (req/s)": ratio(m.putValue.rps, m.b2jWrites.rps),
    "env(100)/read (p50)": ratio(m.env100.latency.p50, m.read1.latency.p50),
    "100 reads/env(100) (p50)": ratio(m.reads100.groups?.p50, m.env100.latency.p50),
    "cold start, service/floor (median)": ratio(m.coldStart.serviceMedianMs, m.coldStart.floorMedianMs),
    "RSS peak under load, service/floor (hosted heap)": ratio(m.coldStart.rssUnderReadMb, m.coldStart.floorRssUnderLoadMb),
    "RSS peak under load, service/floor (Deno's default heap)": ratio(m.coldStart.rssDefaultHeapMb, m.coldStart.floorRssDefaultHeapMb),
    [`list p50, ${large.label}/1,000`]: ratio(large.list.p50, small.list.p50),
    [`read p50, ${large.label}/1,000`]: ratio(large.read.p50, small.read.p50),
  };
}

// Three decimals: a ratio of 0.799 must not print as the 0.80 it misses.
const x = (v: number | null) => (v === null ? "–" : `${v.toFixed(3)}×`);
const atLeast = (name: string, goal: string, v: number | null, min: number): Target => ({ name, goal, value: x(v), met: (v ?? 0) >= min });
const atMost = (name: string, goal: string, v: number | null, max: number): Target => ({ name, goal, value: x(v), met: (v ?? Infinity) <= max });

export function evaluateTargets(m: Measured, ratios: Record<string, number | null>): Target[] {
  const large = m.scale[m.scale.length - 1].label;
  // The plans target concerns the large step: on the small one the planner may rightly read a
  // table of about a thousand rows whole.
  const seqScans = m.scale[m.scale.length - 1].seqScans;
  const { dekRate, reads } = m.rotation;
  const rss = m.coldStart.rssUnderReadMb;
  return [
    atLeast("value read vs bare", "R ≥ 0.8 × B2j", ratios["R/B2j (req/s)"], 0.8),
    atLeast("framework floor vs bare", "F1 ≥ 0.85 × B1j", ratios["F1/B1j (req/s)"], 0.85),
    atMost("env(100) vs read", "p50 ≤ 2.5 × single read", ratios["env(100)/read (p50)"], 2.5),
    atLeast("create vs bare", "create ≥ 0.5 × B2j", ratios["create/B2j (req/s)"], 0.5),
    atLeast("new version vs bare", "new version ≥ 0.5 × B2j", ratios["new version/B2j (req/s)"], 0.5),
    atMost("cold start", "spawn → first value read ≤ 2 × floor's spawn → first select 1", ratios["cold start, service/floor (median)"], 2),
    { name: "memory under load", goal: `RSS ≤ ${RSS_LIMIT_MB} MB (hosted heap)`, value: rss === null ? "–" : `${rss.toFixed(0)} MB`, met: rss !== null && rss <= RSS_LIMIT_MB },
    atMost("scale: list", `p50 at ${large} ≤ 1.5 × at 1,000`, ratios[`list p50, ${large}/1,000`], 1.5),
    atMost("scale: value read", `p50 at ${large} ≤ 1.5 × at 1,000`, ratios[`read p50, ${large}/1,000`], 1.5),
    {
      name: "scale: plans", goal: `no sequential scan at ${large}`, value: seqScans.length ? [...new Set(seqScans)].join("; ") : "none",
      met: seqScans.length === 0,
    },
    { name: "rotation rate", goal: "≥ 10,000 DEK/s", value: `${Math.round(dekRate).toLocaleString("en-US")} DEK/s`, met: dekRate >= 10_000 },
    { name: "rotation reads", goal: "0 errors", value: `${reads.errors} of ${reads.requests}`, met: reads.errors === 0 && reads.requests > 0 },
  ];
}
