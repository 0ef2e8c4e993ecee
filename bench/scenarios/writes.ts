/**
 * Writes at full throughput, interleaved with the bare B2j floor so their ratio holds on a
 * drifting machine: creating secrets (a unique name per request) and adding a new version to
 * one of 100 existing secrets, round robin.
 */
import type { LoadResult } from "../lib/children.ts";
import { auth, type BenchContext } from "../lib/context.ts";
import { mapLimit, randomValue } from "../lib/fixtures.ts";
import { FN, THROUGHPUT_CONNECTIONS } from "../lib/options.ts";
import { b2jLoad } from "./floors-and-read.ts";

export interface Writes {
  create: LoadResult;
  putValue: LoadResult;
  /** B2j measured in the same rounds as the writes. */
  b2jWrites: LoadResult;
}

export async function measureWrites(ctx: BenchContext, readerSecret: string): Promise<Writes> {
  const { writer } = ctx.users;
  const writeJson = { ...auth(writer.token), "content-type": "application/json" };
  const targets = await mapLimit(Array.from({ length: 100 }, (_, i) => `VERSIONED_${i}`), 8, (name) =>
    ctx.api.createSecret(writer.token, name, randomValue()));
  const b2j = b2jLoad(ctx, readerSecret);
  const [create, putValue, b2jWrites] = await ctx.measure.together([
    {
      key: "create", label: "create secret", spec: {
        connections: THROUGHPUT_CONNECTIONS, method: "POST", headers: writeJson, paths: [FN],
        bodyTemplate: JSON.stringify({ name: `W_${ctx.tag}_{{n}}`, value: randomValue(), secretType: "api_key" }),
      },
    },
    {
      key: "putValue", label: "new version (100 secrets)", spec: {
        connections: THROUGHPUT_CONNECTIONS, method: "PUT", headers: writeJson,
        paths: targets.map((x) => `${FN}/${x.id}/value`), body: JSON.stringify({ value: randomValue() }),
      },
    },
    { ...b2j, key: "b2jWrites", label: `${b2j.label} (with the writes)` },
  ]);
  return { create, putValue, b2jWrites };
}
