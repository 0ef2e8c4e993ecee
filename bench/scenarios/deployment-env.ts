/**
 * The deployment env route with 1, 10 and 100 bindings, interleaved with a single value read
 * (one connection each), then 100 single reads one after another: what a deployment would
 * pay without the env route.
 */
import type { LoadResult } from "../lib/children.ts";
import { auth, type BenchContext } from "../lib/context.ts";
import { mapLimit, randomValue } from "../lib/fixtures.ts";
import { FN } from "../lib/options.ts";

export interface DeploymentEnv {
  env100: LoadResult;
  read1: LoadResult;
  reads100: LoadResult;
}

const BINDINGS = [1, 10, 100];

export async function measureDeploymentEnv(ctx: BenchContext): Promise<DeploymentEnv> {
  const owner = ctx.users.env;
  ctx.log("env fixtures: 100 secrets, deployments with 1, 10 and 100 bindings");
  const envNames = Array.from({ length: 100 }, (_, i) => `ENV_VAR_${String(i).padStart(3, "0")}`);
  const envSecrets = await mapLimit(envNames, 8, (name) => ctx.api.createSecret(owner.token, name, randomValue()));
  const deployments: Record<number, { id: string; token: string }> = {};
  for (const n of BINDINGS) deployments[n] = await createDeployment(ctx, envNames.slice(0, n), envSecrets);

  const readPaths = envSecrets.map((x) => `${FN}/${x.id}/value`);
  const [, , env100, read1] = await ctx.measure.together([
    ...BINDINGS.map((n) => ({
      key: `env${n}`, label: `env, ${n} binding${n > 1 ? "s" : ""} (1 conn)`,
      spec: { connections: 1, headers: auth(deployments[n].token), paths: [`${FN}/deployments/${deployments[n].id}/env`] },
    })),
    { key: "read1", label: "single value read (1 conn)", spec: { connections: 1, headers: auth(owner.token), paths: readPaths } },
  ]);
  return { env100, read1, reads100: await measureSequentialReads(ctx, readPaths) };
}

/** A deploying deployment requiring `envNames`, each bound to its secret, and a token for it. */
async function createDeployment(ctx: BenchContext, envNames: string[], secrets: { id: string }[]) {
  const owner = ctx.users.env;
  const [{ id }] = await ctx.db.query<{ id: string }>(
    `insert into public.deployments (user_id, name, required_env)
     values ($1::uuid, $2, array(select jsonb_array_elements_text($3::text::jsonb))) returning id`,
    [owner.id, `bench-env-${envNames.length}`, JSON.stringify(envNames)],
  );
  await ctx.api.call("PUT", `/deployments/${id}/secrets`, owner.token, {
    bindings: envNames.map((envName, i) => ({ envName, secretId: secrets[i].id })),
  });
  await ctx.db.query(`update public.deployments set status = 'deploying' where id = $1::uuid`, [id]);
  const { token } = await ctx.api.call<{ token: string }>("POST", `/deployments/${id}/tokens`, owner.token, { ttlSeconds: 6 * 3600 });
  return { id, token };
}

/** Batches of 100 sequential reads on one connection; the row's figures are per batch. */
async function measureSequentialReads(ctx: BenchContext, readPaths: string[]): Promise<LoadResult> {
  ctx.log("100 single reads, sequential");
  const reads100 = await ctx.loader.run({
    // No warmup (it would run `amount` requests too); the single-read run just warmed this path.
    url: ctx.origin, connections: 1, headers: auth(ctx.users.env.token), paths: readPaths,
    amount: 100 * ctx.mode.reads100Batches, groupSize: 100,
  });
  ctx.results.raw.reads100 = reads100;
  ctx.results.add({
    key: "reads100", label: "100 single reads, one after another (p50/p99 per 100)", connections: 1, unit: "×100/s",
    rps: reads100.groups?.mean ? 1000 / reads100.groups.mean : null, p50: reads100.groups?.p50 ?? null,
    p99: reads100.groups?.p99 ?? null, errors: reads100.errors, requests: reads100.requests,
  });
  return reads100;
}
