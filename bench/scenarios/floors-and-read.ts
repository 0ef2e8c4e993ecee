/**
 * The floors and the value read, interleaved so drift hits them alike: the bare stack's floors
 * (bench/floor-server.ts: B1 `select 1`, B1j the same behind the token check, B2j the token
 * check and a primary-key select with its audit insert in one transaction), our framework floor
 * F1 (a `select 1` route behind the service's own middleware and authentication), the real value
 * read R (RLS, permission, audit row, envelope) and S, the same read with the seed's PBKDF2.
 */
import type { LoadResult } from "../lib/children.ts";
import { auth, type BenchContext } from "../lib/context.ts";
import { toBase64 as b64 } from "../../shared/bytes.ts";
import { randomValue } from "../lib/fixtures.ts";
import { FN, THROUGHPUT_CONNECTIONS } from "../lib/options.ts";
import { sealSeedStyle, SEED_ITERATIONS } from "../seed-design.ts";

export interface FloorsAndRead {
  b1: LoadResult;
  b1j: LoadResult;
  b2j: LoadResult;
  f1: LoadResult;
  r: LoadResult;
  s: LoadResult;
}

export const B2J_LABEL = "B2j bare: token + pk select + audit insert";

/** The B2j load for a secret of the reader's: a floor that scenarios measure themselves against. */
export function b2jLoad(ctx: BenchContext, secretId: string) {
  return {
    key: "b2j", label: B2J_LABEL,
    spec: { url: ctx.floorOrigin, connections: THROUGHPUT_CONNECTIONS, headers: auth(ctx.users.reader.token), paths: [`/b2j/${secretId}`] },
  };
}

export async function measureFloorsAndRead(ctx: BenchContext): Promise<FloorsAndRead & { readerSecret: string }> {
  const { reader } = ctx.users;
  const rSecret = await ctx.api.createSecret(reader.token, "OPENAI_API_KEY", randomValue());
  const sSecret = await createSeedStyleSecret(ctx);

  const c16 = { connections: THROUGHPUT_CONNECTIONS, headers: auth(reader.token) };
  const floor = { ...c16, url: ctx.floorOrigin };
  const [b1, b1j, f1, b2j, r, s] = await ctx.measure.together([
    { key: "b1", label: "B1 bare: select 1", spec: { ...floor, paths: ["/b1"] } },
    { key: "b1j", label: "B1j bare: token + select 1", spec: { ...floor, paths: ["/b1j"] } },
    { key: "f1", label: "F1 ours: select 1 behind our middleware + auth", spec: { ...c16, paths: [`${FN}/__bench/f1`] } },
    b2jLoad(ctx, rSecret.id),
    { key: "r", label: "R value read (RLS, audit, envelope)", spec: { ...c16, paths: [`${FN}/${rSecret.id}/value`] } },
    {
      key: "s", label: `S seed design (PBKDF2 ${SEED_ITERATIONS.toLocaleString("en-US")}/decrypt)`,
      spec: { ...c16, paths: [`${FN}/__bench/seed/${sSecret}/value`], warmup: Math.min(ctx.mode.warmup, 1) },
    },
  ]);
  // Its blob is no envelope: the rotation would count it as a DEK that does not unwrap.
  await ctx.db.query(`delete from public.secrets where id = $1::uuid`, [sSecret]);
  return { b1, b1j, b2j, f1, r, s, readerSecret: rSecret.id };
}

/** A reader's secret whose version 1 is sealed the seed's way; checked to open. Returns its id. */
async function createSeedStyleSecret(ctx: BenchContext): Promise<string> {
  const { reader } = ctx.users;
  const { id } = await ctx.api.createSecret(reader.token, "SEED_STYLE_KEY", randomValue());
  const value = randomValue("seed");
  const seed = await sealSeedStyle(ctx.seedMaster, value);
  await ctx.db.transaction(async (tx) => {
    // Replaces the envelope blob with a seed-style one (the immutability trigger is off here).
    await tx.query(`set local session_replication_role = replica`);
    await tx.query(
      `update public.secret_versions set iv = decode($2, 'base64'), ciphertext = decode($3, 'base64'), wrapped_dek = decode($4, 'base64')
        where secret_id = $1::uuid and version = 1`,
      [id, b64(seed.iv), b64(seed.ciphertext), b64(seed.wrappedDek)],
    );
  });
  const check = await ctx.api.call<{ value: string }>("GET", `/__bench/seed/${id}/value`, reader.token);
  if (check.value !== value) throw new Error("the seed-style read did not return the sealed value");
  return id;
}
