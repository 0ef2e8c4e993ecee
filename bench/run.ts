/**
 * `npm run bench` — the service under load, on a real PostgreSQL (DATABASE_URL), driven over
 * HTTP by autocannon, every scenario in one run so the ratios hold on a noisy machine.
 *
 *   npm run bench                     full run (several minutes: 1,000,000-secret scale step)
 *   npm run bench -- --quick          every scenario scaled down, under a minute (CI)
 *   npm run bench -- --update-readme  also rewrites the generated table in README.md
 *
 * Each run creates its own database `sigyl_bench_<random>` on the DATABASE_URL server (so it
 * needs a role that may create databases and set session_replication_role, e.g. postgres),
 * applies the platform stand-in and the migrations, starts bench/server.ts (the real function
 * plus the floor routes) and bench/load.mjs (autocannon under Node; see that file for why
 * Node), and drops the database at the end, whatever happens. Every request goes to
 * 127.0.0.1; every load run has a duration or a request count, and the whole run a time limit.
 *
 * The driver is TypeScript under Deno because it reuses the project's own code: migrateLocal,
 * the Supabase-shaped tokens, the Vault keyring and the envelope sealing for the rotation's
 * 100,000 real versions. Figures go to stdout (a table) and bench/results/latest.json; a
 * missed target is reported, never an error. Exit status: 0 unless something crashed
 * (1; 2 for a bad option or no DATABASE_URL; 130 when interrupted).
 *
 * This file only wires a run: the scenarios are in bench/scenarios/, run in the order below;
 * options, lifecycle, recording and the report are in bench/lib/.
 */
import { join } from "node:path";
import { loadConfig, LOCAL_JWT_SECRET } from "../shared/config.ts";
import { ROOT } from "../scripts/lib/local.ts";
import { type BenchContext, createParticipants } from "./lib/context.ts";
import { createApi } from "./lib/fixtures.ts";
import { createBenchRun, guardRun } from "./lib/lifecycle.ts";
import { type BenchOptions, parseOptions, reproduceCommand, settingsOf } from "./lib/options.ts";
import { describeMachine, printReport, renderMarkdown, type Report, updateReadme, writeResults } from "./lib/report.ts";
import { createMeasure, createResults } from "./lib/results.ts";
import { computeRatios, evaluateTargets, type Measured } from "./lib/targets.ts";
import { measureColdStart } from "./scenarios/cold-start.ts";
import { measureDeploymentEnv } from "./scenarios/deployment-env.ts";
import { measureFloorsAndRead } from "./scenarios/floors-and-read.ts";
import { measureRotation } from "./scenarios/rotation.ts";
import { measureScale } from "./scenarios/scale.ts";
import { measureWrites } from "./scenarios/writes.ts";

const parsed = parseOptions(Deno.args, Deno.env.toObject());
if ("error" in parsed) {
  console.error(parsed.error);
  Deno.exit(2);
}
const options: BenchOptions = parsed;

const t0 = performance.now();
const elapsedS = () => (performance.now() - t0) / 1000;
const log = (msg: string) => console.error(`[${elapsedS().toFixed(1).padStart(6)}s] ${msg}`);

const config = loadConfig(Deno.env.toObject());
const run = createBenchRun(options.databaseUrl, log);
const disarm = guardRun(run, options.mode.timeLimitS);

/** Starts everything, runs the scenarios in order, reports. */
async function main() {
  const { db, pgVersion, url: databaseUrl } = await run.openDatabase();
  const { server, floor, loader, seedMaster, signer, jwks } = await run.startChildren();
  const origin = new URL(server.base).origin;
  const { users, serviceToken } = await createParticipants(db, run.tag, signer, config.auth.jwtSecret ?? LOCAL_JWT_SECRET);
  const results = createResults(log);
  const ctx: BenchContext = {
    origin, floorOrigin: floor.base, api: createApi(server.base), loader, db, databaseUrl, jwks, mode: options.mode, tag: run.tag, users, serviceToken, seedMaster, results,
    measure: createMeasure({ loader, origin, mode: options.mode, results, log }), log,
  };

  const floors = await measureFloorsAndRead(ctx);
  const coldStart = await measureColdStart(ctx, floors.readerSecret, options.mode.coldStartRuns);
  const env = await measureDeploymentEnv(ctx);
  // Before the writes and the scale step, so it re-wraps only the versions it sealed.
  const rotation = await measureRotation(ctx);
  const writes = await measureWrites(ctx, floors.readerSecret);
  const scale = await measureScale(ctx, [...rotation.owners, users.writer.id]);

  const measured: Measured = { ...floors, ...env, ...writes, coldStart, rotation, scale };
  const ratios = computeRatios(measured);
  await publish({
    mode: options.mode.name, command: reproduceCommand(options), machine: await describeMachine(pgVersion, loader),
    durationS: elapsedS(), settings: settingsOf(options.mode, config.db.max), rows: results.rows, ratios,
    targets: evaluateTargets(measured, ratios), rotation: results.raw.rotation, scale, raw: results.raw,
  });
}

/** latest.json and latest.md, the report on stdout, and README.md when asked. */
async function publish(report: Report) {
  const markdown = renderMarkdown(report);
  await writeResults(join(ROOT, "bench", "results"), report, markdown);
  printReport(report);
  if (options.updateReadme) {
    const done = await updateReadme(join(ROOT, "README.md"), markdown);
    console.log(done ? "README.md: benchmark table updated" : "README.md: no bench markers found, left alone");
  }
}

let failed = false;
try {
  await main();
} catch (err) {
  failed = true;
  // Once an interrupt or the time limit has begun the cleanup, a failure is only its echo.
  if (!run.closing()) {
    console.error(`bench: failed: ${(err as Error)?.stack ?? err}`);
    const output = run.serverOutput();
    if (output !== null) console.error(`bench server output (tail):\n${output.slice(-4000)}`);
  }
} finally {
  disarm();
  await run.cleanup();
}
Deno.exit(failed ? 1 : 0);
