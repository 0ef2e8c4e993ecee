/**
 * One user's list and value read (50 secrets: 45 own, 5 shared) as the other tenants grow
 * through `mode.scale`, with the query plans of each step (custom and generic, EXPLAIN
 * ANALYZE as that user) and the sequential scans in them.
 */
import type { Database } from "../../shared/db/database.ts";
import { FIND_SECRET_SQL, LIST_SECRETS_SQL } from "../../shared/secrets/secret-dal.ts";
import type { Summary } from "../lib/children.ts";
import { auth, type BenchContext } from "../lib/context.ts";
import { growPopulation, mapLimit, randomValue } from "../lib/fixtures.ts";
import { FN, type ScaleStep } from "../lib/options.ts";

interface Plan {
  custom: string;
  generic: string;
}

export interface ScaleResult extends ScaleStep {
  counts: Record<string, number>;
  loadSeconds: number;
  list: Summary;
  read: Summary;
  plans: Record<string, Plan>;
  /** "query: table" for each sequential scan in its plans. */
  seqScans: string[];
}

/** The scale user's own view: its claims, one of its secrets, the paths of all 50 values. */
interface Viewer {
  claims: string;
  ownSecret: string;
  readPaths: string[];
}

/** Measures each step of `mode.scale`, after deleting the secrets of `clearOwners` (bulk fixtures of earlier scenarios). */
export async function measureScale(ctx: BenchContext, clearOwners: string[]): Promise<ScaleResult[]> {
  await clearSecretsOf(ctx, clearOwners);
  const viewer = await createViewer(ctx);
  const [{ active: kekActive }] = await ctx.db.query<{ active: number }>(
    `select version as active from private.key_versions where status = 'active'`,
  );
  const steps: ScaleResult[] = [];
  let have = { users: 0, secrets: 0, grants: 0 };
  for (const step of ctx.mode.scale) {
    const grown = await grow(ctx, have, step, kekActive);
    have = { users: step.users, secrets: step.secrets, grants: step.grants };
    steps.push(await measureStep(ctx, step, grown, viewer));
  }
  return steps;
}

async function clearSecretsOf(ctx: BenchContext, owners: string[]) {
  ctx.log("scale: clearing the rotation's and the writes' secrets");
  await ctx.db.transaction(async (tx) => {
    await tx.query(`set local session_replication_role = replica`);
    await tx.query(`delete from public.secret_versions v using public.secrets s where s.id = v.secret_id and s.user_id = any($1::uuid[])`, [owners]);
    await tx.query(`delete from public.secrets where user_id = any($1::uuid[])`, [owners]);
  });
  await ctx.db.exec(`vacuum analyze public.secrets, public.secret_versions`);
}

async function createViewer(ctx: BenchContext): Promise<Viewer> {
  const { api, log, users: { scale: viewer, sharer } } = ctx;
  log("scale fixtures: a user with 50 secrets (45 own, 5 shared)");
  const own = await mapLimit(Array.from({ length: 45 }, (_, i) => `SCALE_${String(i).padStart(2, "0")}`), 8, (name) =>
    api.createSecret(viewer.token, name, randomValue()));
  const shared = await mapLimit(Array.from({ length: 5 }, (_, i) => `SHARED_${i}`), 5, (name) =>
    api.createSecret(sharer.token, name, randomValue()));
  for (const x of shared) await api.call("PUT", `/${x.id}/permissions`, sharer.token, { userId: viewer.id, permission: "read" });
  const listed = await api.call<{ items: unknown[] }>("GET", "?limit=100", viewer.token);
  if (listed.items.length !== 50) throw new Error(`the scale user sees ${listed.items.length} secrets, not 50`);
  return {
    claims: JSON.stringify({ sub: viewer.id, role: "authenticated", aud: "authenticated", email: viewer.email }),
    ownSecret: own[0].id,
    readPaths: [...own, ...shared].map((x) => `${FN}/${x.id}/value`),
  };
}

/** Grows the other tenants to `step`, then settles the database so the measurement sees no backlog. */
async function grow(ctx: BenchContext, have: Omit<ScaleStep, "label">, step: ScaleStep, kekActive: number) {
  const { db, log } = ctx;
  const n = (v: number) => v.toLocaleString("en-US");
  log(`scale: growing to ${n(step.secrets)} other secrets, ${n(step.grants)} grants, ${n(step.users)} users`);
  const started = performance.now();
  await growPopulation(db, ctx.tag, have, step, kekActive, (what) => log(`  ${what}`));
  await db.exec(`vacuum analyze auth.users, public.secrets, public.secret_versions, public.secret_permissions, public.secret_access_logs`);
  // Flush the load's dirty pages now, so no checkpoint it triggered runs during the measurement.
  await db.exec(`checkpoint`);
  const loadSeconds = (performance.now() - started) / 1000;
  const [counts] = await db.query<Record<string, number>>(
    `select (select count(*) from public.secrets)::int as secrets, (select count(*) from public.secret_permissions)::int as grants,
            (select count(*) from auth.users)::int as users, (select count(*) from public.secret_access_logs)::int as audit_rows`,
  );
  return { counts, loadSeconds };
}

async function measureStep(
  ctx: BenchContext,
  step: ScaleStep,
  grown: { counts: Record<string, number>; loadSeconds: number },
  viewer: Viewer,
): Promise<ScaleResult> {
  const { db, measure } = ctx;
  const headers = auth(ctx.users.scale.token);
  const list = await measure.once(`list_${step.secrets}`, `list 50, ${step.label} others (1 conn)`, { connections: 1, headers, paths: [FN] });
  const read = await measure.once(`read_${step.secrets}`, `value read, ${step.label} others (1 conn)`, {
    connections: 1, headers, paths: viewer.readPaths,
  });
  const listParams = [null, null, null, false, false, null, null, null, 51, null];
  const plans = {
    list: await explain(db, viewer.claims, LIST_SECRETS_SQL, listParams),
    metadataById: await explain(db, viewer.claims, FIND_SECRET_SQL, [viewer.ownSecret]),
    versionsOfOne: await explain(db, viewer.claims,
      `select version, created_by, created_at, restored_from, kek_version from public.secret_versions where secret_id = $1::uuid order by version desc`,
      [viewer.ownSecret]),
  };
  return { ...step, ...grown, list: list.latency, read: read.latency, plans, seqScans: seqScansIn(plans) };
}

/** "query: table" for each sequential scan in the custom and generic plans. */
function seqScansIn(plans: Record<string, Plan>): string[] {
  return Object.entries(plans).flatMap(([name, p]) =>
    [...`${p.custom}\n${p.generic}`.matchAll(/Seq Scan on ([\w.]+)/g)].map((m) => `${name}: ${m[1]}`)
  );
}

/** EXPLAIN ANALYZE of `sql` as the user (role authenticated, its claims): the custom plan and the generic one. */
async function explain(db: Database, claims: string, sql: string, params: unknown[]): Promise<Plan> {
  const literal = (v: unknown) =>
    v === null ? "null" : typeof v === "number" || typeof v === "boolean" ? String(v) : `'${String(v).replace(/'/g, "''")}'`;
  return await db.transaction(async (tx) => {
    await tx.query(`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)`, [claims]);
    const text = (rows: Record<string, unknown>[]) => rows.map((r) => r["QUERY PLAN"]).join("\n");
    const custom = text(await tx.query(`explain (analyze, buffers) ${sql}`, params));
    await tx.query(`set local plan_cache_mode = force_generic_plan`);
    await tx.query(`prepare bench_plan as ${sql}`);
    const generic = text(await tx.query(`explain (analyze, buffers) execute bench_plan(${params.map(literal).join(", ")})`));
    await tx.query(`deallocate bench_plan`);
    return { custom, generic };
  });
}
