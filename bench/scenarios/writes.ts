/**
 * Writes at full throughput: creating secrets (a unique name per request) and adding a new
 * version to one of 100 existing secrets, round robin.
 */
import { auth, type BenchContext } from "../lib/context.ts";
import { mapLimit, randomValue } from "../lib/fixtures.ts";
import { FN, THROUGHPUT_CONNECTIONS } from "../lib/options.ts";

export async function measureWrites(ctx: BenchContext): Promise<void> {
  const { writer } = ctx.users;
  const writeJson = { ...auth(writer.token), "content-type": "application/json" };
  await ctx.measure.once("create", "create secret", {
    connections: THROUGHPUT_CONNECTIONS, method: "POST", headers: writeJson, paths: [FN],
    bodyTemplate: JSON.stringify({ name: `W_${ctx.tag}_{{n}}`, value: randomValue(), secretType: "api_key" }),
  });
  const targets = await mapLimit(Array.from({ length: 100 }, (_, i) => `VERSIONED_${i}`), 8, (name) =>
    ctx.api.createSecret(writer.token, name, randomValue()));
  await ctx.measure.once("putValue", "new version (100 secrets)", {
    connections: THROUGHPUT_CONNECTIONS, method: "PUT", headers: writeJson,
    paths: targets.map((x) => `${FN}/${x.id}/value`), body: JSON.stringify({ value: randomValue() }),
  });
}
