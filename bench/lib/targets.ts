/**
 * The ratios the benchmark reports and the targets it holds them to. A missed target is a
 * finding printed in the report, never a failed run.
 */
import type { DeploymentEnv } from "../scenarios/deployment-env.ts";
import type { FloorsAndRead } from "../scenarios/floors-and-read.ts";
import type { Rotation } from "../scenarios/rotation.ts";
import type { ScaleResult } from "../scenarios/scale.ts";
import { ratio, type Target } from "./report.ts";

/** The figures the ratios and targets are made of, as the scenarios returned them. */
export interface Measured extends FloorsAndRead, DeploymentEnv {
  rotation: Pick<Rotation, "dekRate" | "reads">;
  /** The scale steps, smallest first. */
  scale: Pick<ScaleResult, "label" | "list" | "read" | "seqScans">[];
}

export function computeRatios(m: Measured): Record<string, number | null> {
  const small = m.scale[0];
  const large = m.scale[m.scale.length - 1];
  return {
    "R/F1 (req/s)": ratio(m.r.rps, m.f1.rps),
    "R/F2 (req/s)": ratio(m.r.rps, m.f2.rps),
    "R/S (req/s)": ratio(m.r.rps, m.s.rps),
    "env(100)/read (p50)": ratio(m.env100.latency.p50, m.read1.latency.p50),
    "100 reads/env(100) (p50)": ratio(m.reads100.groups?.p50, m.env100.latency.p50),
    [`list p50, ${large.label}/1,000`]: ratio(large.list.p50, small.list.p50),
    [`read p50, ${large.label}/1,000`]: ratio(large.read.p50, small.read.p50),
  };
}

// Three decimals: a ratio of 0.699 must not print as the 0.70 it misses.
const x = (v: number | null) => (v === null ? "–" : `${v.toFixed(3)}×`);
const atLeast = (name: string, goal: string, v: number | null, min: number): Target => ({ name, goal, value: x(v), met: (v ?? 0) >= min });
const atMost = (name: string, goal: string, v: number | null, max: number): Target => ({ name, goal, value: x(v), met: (v ?? Infinity) <= max });

export function evaluateTargets(m: Measured, ratios: Record<string, number | null>): Target[] {
  const large = m.scale[m.scale.length - 1].label;
  // The plans target concerns the large step: on the small one the planner may rightly read a
  // table of about a thousand rows whole.
  const seqScans = m.scale[m.scale.length - 1].seqScans;
  const { dekRate, reads } = m.rotation;
  return [
    atLeast("R vs F2", "R ≥ 0.7 × F2", ratios["R/F2 (req/s)"], 0.7),
    atLeast("R vs S", "R ≥ 50 × S", ratios["R/S (req/s)"], 50),
    atMost("env(100) vs read", "p50 ≤ 3 × single read", ratios["env(100)/read (p50)"], 3),
    atMost("scale: list", `p50 at ${large} ≤ 1.5 × at 1,000`, ratios[`list p50, ${large}/1,000`], 1.5),
    atMost("scale: value read", `p50 at ${large} ≤ 1.5 × at 1,000`, ratios[`read p50, ${large}/1,000`], 1.5),
    {
      name: "scale: plans", goal: `no sequential scan at ${large}`, value: seqScans.length ? [...new Set(seqScans)].join("; ") : "none",
      met: seqScans.length === 0,
    },
    { name: "rotation rate", goal: "≥ 5,000 DEK/s", value: `${Math.round(dekRate).toLocaleString("en-US")} DEK/s`, met: dekRate >= 5000 },
    { name: "rotation reads", goal: "0 errors", value: `${reads.errors} of ${reads.requests}`, met: reads.errors === 0 && reads.requests > 0 },
  ];
}
