/**
 * KEK rotation over real envelope-sealed versions (`mode.rotationSecrets` secrets of
 * `mode.versionsPerSecret` versions, spread over 50 owners) while a steady value-read load
 * runs against the rotating keyring. Runs before the writes and the scale step, so what it
 * re-wraps is what it sealed.
 */
import { loadKeyringFromVault } from "../../shared/crypto/vault-keyring.ts";
import type { RotationDto } from "../../shared/keys/key-schemas.ts";
import type { LoadResult } from "../lib/children.ts";
import { auth, type BenchContext } from "../lib/context.ts";
import { makeUsers, sealRealVersions } from "../lib/fixtures.ts";
import { FN, ROTATION_READ_CONNECTIONS, ROTATION_READ_RATE } from "../lib/options.ts";

export interface Rotation {
  dekRate: number;
  /** The value reads that ran during the rotation. */
  reads: LoadResult;
  /** Owners of the sealed secrets (the scale step clears them). */
  owners: string[];
}

export async function measureRotation(ctx: BenchContext): Promise<Rotation> {
  const fixtures = await sealFixtures(ctx);
  ctx.log(`KEK rotation over ${fixtures.dekTotal.toLocaleString("en-US")} versions, value reads running (${ROTATION_READ_RATE}/s on ${ROTATION_READ_CONNECTIONS} conns)`);
  const reading = ctx.loader.start({
    url: ctx.origin, connections: ROTATION_READ_CONNECTIONS, overallRate: ROTATION_READ_RATE, duration: 1800,
    headers: auth(ctx.users.rotation.token), paths: fixtures.readerSecrets.map((id) => `${FN}/${id}/value`),
  });
  await new Promise((res) => setTimeout(res, 500));
  const started = performance.now();
  let rotated: Awaited<ReturnType<typeof rotateUntilDone>>;
  try {
    rotated = await rotateUntilDone(ctx);
  } finally {
    await new Promise((res) => setTimeout(res, 250));
    reading.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  const reads = await reading.result;
  const { rewrapped, calls, last } = rotated;
  const dekRate = rewrapped / seconds;
  ctx.results.add({
    key: "rotation", label: `KEK rotation, ${rewrapped.toLocaleString("en-US")} DEKs re-wrapped`, connections: null,
    rps: dekRate, unit: "DEK/s", p50: null, p99: null, errors: last?.completed ? 0 : 1, requests: calls,
  });
  ctx.results.record("rotationReads", `value reads during the rotation (${ROTATION_READ_RATE}/s offered)`, reads);
  ctx.results.raw.rotation = {
    ...last, rewrapped, calls, seconds, dekPerSecond: dekRate, sealedVersions: fixtures.sealedVersions, sealSeconds: fixtures.sealSeconds,
  };
  ctx.log(`  ${rewrapped} DEKs in ${seconds.toFixed(2)} s (${Math.round(dekRate)} DEK/s), completed: ${last?.completed}`);
  return { dekRate, reads, owners: fixtures.owners };
}

/** Seals the versions with the live keyring; the rotation user owns every 50th secret. */
async function sealFixtures(ctx: BenchContext) {
  const { db, mode, log } = ctx;
  const sealedVersions = mode.rotationSecrets * mode.versionsPerSecret;
  log(`rotation fixtures: sealing ${sealedVersions.toLocaleString("en-US")} real versions`);
  const others = await makeUsers(db, Array.from({ length: 49 }, (_, i) => `rotation-${i + 1}-${ctx.tag}@bench.sigyl.dev`));
  const owners = [ctx.users.rotation.id, ...others.map((u) => u.id)];
  const keyring = await loadKeyringFromVault(db);
  const started = performance.now();
  const ids = await sealRealVersions(db, keyring, {
    owners, secrets: mode.rotationSecrets, versionsPerSecret: mode.versionsPerSecret, namePrefix: "ROT",
  }, (done) => done % 20_000 === 0 && log(`  sealed ${done.toLocaleString("en-US")}`));
  const sealSeconds = (performance.now() - started) / 1000;
  await db.query(`analyze public.secrets, public.secret_versions`);
  const [{ n: dekTotal }] = await db.query<{ n: number }>(`select count(*)::int as n from public.secret_versions`);
  const readerSecrets = ids.filter((_, i) => i % owners.length === 0);
  return { owners, readerSecrets, dekTotal, sealedVersions, sealSeconds };
}

/** Calls the rotation route until it reports completion (at most 500 calls). */
async function rotateUntilDone(ctx: BenchContext) {
  let rewrapped = 0;
  let calls = 0;
  let last: RotationDto | null = null;
  while (calls < 500) {
    calls++;
    last = await ctx.api.call<RotationDto>("POST", "/admin/keys/rotate", ctx.serviceToken, {});
    rewrapped += last.rewrapped;
    if (last.completed) break;
  }
  return { rewrapped, calls, last };
}
