/**
 * What a benchmark run is asked to do: its flags, the server it runs on (DATABASE_URL) and the
 * sizes of its mode, plus the load settings every mode shares. Parsed once by bench/run.ts.
 */

export interface ScaleStep {
  label: string;
  users: number;
  secrets: number;
  grants: number;
}

export interface Mode {
  name: "quick" | "full";
  /** Seconds of a single measured run, and of its warmup. */
  duration: number;
  warmup: number;
  /** Interleaved scenarios: how many rounds, of how many seconds each. */
  rounds: number;
  roundDuration: number;
  /** Cold starts of each server (the function's entry, the bare floor). */
  coldStartRuns: number;
  /** Batches of 100 sequential single reads. */
  reads100Batches: number;
  rotationSecrets: number;
  versionsPerSecret: number;
  scale: ScaleStep[];
  /** The whole run's time limit, after which it cleans up and exits 1. */
  timeLimitS: number;
}

/** Sizes of each mode. Full mode is the benchmark proper; quick keeps every scenario, smaller. */
const MODES: Record<Mode["name"], Mode> = {
  quick: {
    name: "quick", duration: 1, warmup: 0.5, rounds: 1, roundDuration: 1, coldStartRuns: 1, reads100Batches: 5, rotationSecrets: 1_000, versionsPerSecret: 5,
    scale: [{ label: "1,000", users: 100, secrets: 1_000, grants: 200 }, { label: "10,000", users: 1_000, secrets: 10_000, grants: 2_000 }],
    timeLimitS: 300,
  },
  full: {
    name: "full", duration: 10, warmup: 2, rounds: 3, roundDuration: 4, coldStartRuns: 5, reads100Batches: 30, rotationSecrets: 20_000, versionsPerSecret: 5,
    scale: [
      { label: "1,000", users: 100, secrets: 1_000, grants: 200 },
      { label: "1,000,000", users: 100_000, secrets: 1_000_000, grants: 200_000 },
    ],
    timeLimitS: 3600,
  },
};

export const THROUGHPUT_CONNECTIONS = 16;
export const ROTATION_READ_CONNECTIONS = 4;
/** The steady read load during the rotation: busy, not saturating (R alone serves several times this). */
export const ROTATION_READ_RATE = 200;
/** The function's path on the bench server; load paths start with it. */
export const FN = "/functions/v1/secrets";

export interface BenchOptions {
  quick: boolean;
  updateReadme: boolean;
  databaseUrl: string;
  mode: Mode;
}

const FLAGS = new Set(["--quick", "--update-readme"]);

/** The run's options, or the one-line reason it cannot run (the driver exits 2 with it). */
export function parseOptions(args: string[], env: Record<string, string | undefined>): BenchOptions | { error: string } {
  const unknown = args.filter((a) => !FLAGS.has(a));
  if (unknown.length) return { error: `bench: unknown option ${unknown.join(" ")} (use --quick, --update-readme)` };
  const databaseUrl = env.DATABASE_URL;
  if (!databaseUrl) {
    return {
      error:
        "bench: needs a real PostgreSQL server (set DATABASE_URL); embedded PGlite serves one connection inside one process, so load figures on it would describe nothing that runs in production.",
    };
  }
  const quick = args.includes("--quick");
  return { quick, updateReadme: args.includes("--update-readme"), databaseUrl, mode: quick ? MODES.quick : MODES.full };
}

/** The command that reproduces a run of this mode, as the report prints it. */
export function reproduceCommand(options: BenchOptions): string {
  return `DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres npm run bench${options.quick ? " -- --quick" : ""}`;
}

/** The settings of a run, as latest.json records them. */
export function settingsOf(mode: Mode, serverPool: number) {
  return {
    durationS: mode.duration, warmupS: mode.warmup, rounds: mode.rounds, roundDurationS: mode.roundDuration,
    throughputConnections: THROUGHPUT_CONNECTIONS, rotationReadConnections: ROTATION_READ_CONNECTIONS,
    rotationReadRate: ROTATION_READ_RATE, serverPool,
  };
}
