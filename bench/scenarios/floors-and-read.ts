/**
 * F1, F2, R and S, interleaved so drift hits them alike: the two floors (a `select 1`; a
 * primary-key select with its audit insert, no RLS, no crypto), the real value read (RLS,
 * audit, envelope), and the same read with the seed's PBKDF2 decryption.
 */
import type { LoadResult } from "../lib/children.ts";
import { auth, type BenchContext } from "../lib/context.ts";
import { toBase64 as b64 } from "../../shared/bytes.ts";
import { randomValue } from "../lib/fixtures.ts";
import { FN, THROUGHPUT_CONNECTIONS } from "../lib/options.ts";
import { sealSeedStyle, SEED_ITERATIONS } from "../seed-design.ts";

export interface FloorsAndRead {
  f1: LoadResult;
  f2: LoadResult;
  r: LoadResult;
  s: LoadResult;
}

export async function measureFloorsAndRead(ctx: BenchContext): Promise<FloorsAndRead> {
  const { reader } = ctx.users;
  const rSecret = await ctx.api.createSecret(reader.token, "OPENAI_API_KEY", randomValue());
  const sSecret = await createSeedStyleSecret(ctx);

  const c16 = { connections: THROUGHPUT_CONNECTIONS, headers: auth(reader.token) };
  const [f1, f2, r, s] = await ctx.measure.together([
    { key: "f1", label: "F1 floor: select 1", spec: { ...c16, paths: [`${FN}/__bench/f1`] } },
    { key: "f2", label: "F2 floor: pk select + audit insert", spec: { ...c16, paths: [`${FN}/__bench/f2/${rSecret.id}`] } },
    { key: "r", label: "R value read (RLS, audit, envelope)", spec: { ...c16, paths: [`${FN}/${rSecret.id}/value`] } },
    {
      key: "s", label: `S seed design (PBKDF2 ${SEED_ITERATIONS.toLocaleString("en-US")}/decrypt)`,
      spec: { ...c16, paths: [`${FN}/__bench/seed/${sSecret}/value`], warmup: Math.min(ctx.mode.warmup, 1) },
    },
  ]);
  // Its blob is no envelope: the rotation would count it as a DEK that does not unwrap.
  await ctx.db.query(`delete from public.secrets where id = $1::uuid`, [sSecret]);
  return { f1, f2, r, s };
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
