/**
 * Property-based fuzzing of every write route with input it must turn away: 1,000 generated
 * bodies or path parameters per route. Each must get a 4xx in the error envelope, must not
 * echo a value, and must leave the database exactly as it was (the route's secret, its
 * versions, grants and audit rows; for create, the owner's row counts).
 *
 * The inputs are invalid by construction (fuzz/generators.ts), and each is checked once more
 * against an oracle written from the documented limits, not imported from the app's zod
 * schemas (fuzz/oracle.ts); anything the oracle cannot rule out is discarded rather than sent.
 */
import fc, { type Arbitrary } from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { expectNo5xx, expectRejection, fuzz } from "./fuzz/checks.ts";
import {
  anyOffsetExpiry, badDescription, badEmail, badExpectedVersion, badExpiresAt, badIfMatch, badName, badPermission, badTags,
  badType, badUuidSegment, badUuidValue, badValue, badVersionSegment, createBodies, grantBodies, idAndBody, junkBody,
  loneSurrogateText, malformedJson, notId, nulText, ordinaryText, patchBodies, payloads, restoreBodies, strangerUuid, valueBodies,
} from "./fuzz/generators.ts";
import {
  afterJson, type Check, createOk, grantOk, ifMatchOk, json, namesId, none, patchOk, putValueOk, rollbackBodyOk,
  sendsNoBody, spec, valuesIn, versionSegmentOk, wireOf,
} from "./fuzz/oracle.ts";
import { createTarget } from "./fuzz/target.ts";

const TIMEOUT = 180_000;

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h?.close();
});

const fixture = (opts?: Parameters<typeof createTarget>[1]) => createTarget(h, opts);

describe("fuzzing the write routes with invalid input: 4xx, the error envelope, no change", () => {
  it("POST /secrets (create)", async () => {
    const f = await fixture();
    const { valid, invalid } = createBodies(f.owner.id);
    await fuzz(f, {
      arb: payloads(invalid, valid),
      couldSucceed: (p) => createOk(wireOf(p)),
      call: (p) => f.send("POST", "", p),
      state: async () => `${await f.ownerState()} ${await f.state()}`,
      echoes: valuesIn,
    });
  }, TIMEOUT);

  it("PATCH /secrets/:id", async () => {
    const f = await fixture();
    const bodies = patchBodies();
    await fuzz(f, {
      arb: idAndBody(f.id, bodies, bodies.valid.filter(patchOk)),
      couldSucceed: ({ id, body }) => namesId(id, f.id) && patchOk(wireOf(body)),
      call: ({ id, body }) => f.send("PATCH", `/${id}`, body),
      echoes: ({ body }) => valuesIn(body),
    });
  }, TIMEOUT);

  it("PUT /secrets/:id/value", async () => {
    const f = await fixture();
    const { valid, invalid } = valueBodies();
    // If-Match that is not an ETag this API returns, with an otherwise valid body.
    const input = fc.oneof(
      { weight: 8, arbitrary: fc.record({ id: fc.constant(f.id), body: payloads(invalid, valid), ifMatch: fc.constant(undefined as string | undefined) }) },
      { weight: 2, arbitrary: fc.record({ id: fc.constant(f.id), body: valid.map(json), ifMatch: badIfMatch.map((v): string | undefined => v) }) },
      { weight: 3, arbitrary: fc.record({ id: badUuidSegment(f.id), body: fc.oneof(payloads(invalid, valid), valid.map(json)), ifMatch: fc.constant(undefined) }) },
      { weight: 1, arbitrary: fc.record({ id: strangerUuid([f.id]), body: valid.map(json), ifMatch: fc.constant(undefined) }) },
    );
    await fuzz(f, {
      arb: input,
      couldSucceed: ({ id, body, ifMatch }) => namesId(id, f.id) && putValueOk(wireOf(body)) && ifMatchOk(ifMatch),
      call: ({ id, body, ifMatch }) => f.send("PUT", `/${id}/value`, body, ifMatch === undefined ? {} : { "if-match": ifMatch }),
      echoes: ({ body }) => valuesIn(body),
    });
  }, TIMEOUT);

  it("POST /secrets/:id/versions/:n/restore", async () => {
    const f = await fixture({ secondVersion: true });
    const { valid, invalid } = restoreBodies();
    const goodN = fc.constantFrom("1", "2");
    const anyBody = fc.oneof(payloads(invalid, valid), valid.map(json), fc.constant(none));
    const input = fc.oneof(
      { weight: 6, arbitrary: fc.record({ id: fc.constant(f.id), n: goodN, body: payloads(invalid, valid) }) },
      { weight: 4, arbitrary: fc.record({ id: fc.constant(f.id), n: badVersionSegment, body: anyBody }) },
      { weight: 3, arbitrary: fc.record({ id: badUuidSegment(f.id), n: fc.oneof(goodN, badVersionSegment), body: anyBody }) },
      { weight: 1, arbitrary: fc.record({ id: strangerUuid([f.id]), n: goodN, body: fc.oneof(valid.map(json), fc.constant(none)) }) },
    );
    await fuzz(f, {
      arb: input,
      couldSucceed: ({ id, n, body }) => namesId(id, f.id) && versionSegmentOk(n) && rollbackBodyOk(wireOf(body)),
      call: ({ id, n, body }) => f.send("POST", `/${id}/versions/${n}/restore`, body),
    });
  }, TIMEOUT);

  it("PUT /secrets/:id/permissions", async () => {
    const f = await fixture();
    const other = await h.user("fuzz-other");
    await fuzz(f, {
      arb: idAndBody(f.id, grantBodies(f.grantee, other)),
      couldSucceed: ({ id, body }) => namesId(id, f.id) && grantOk(wireOf(body)),
      call: ({ id, body }) => f.send("PUT", `/${id}/permissions`, body),
    });
  }, TIMEOUT);

  it("DELETE /secrets/:id/permissions/:userId", async () => {
    const f = await fixture();
    const input = fc.oneof(
      { weight: 5, arbitrary: fc.record({ id: fc.constant(f.id), userId: badUuidSegment(f.grantee.id), body: junkBody }) },
      { weight: 3, arbitrary: fc.record({ id: badUuidSegment(f.id), userId: fc.oneof(fc.constant(f.grantee.id), badUuidSegment(f.grantee.id)), body: junkBody }) },
      { weight: 1, arbitrary: fc.record({ id: fc.constant(f.id), userId: strangerUuid([f.grantee.id]), body: junkBody }) },
      { weight: 1, arbitrary: fc.record({ id: strangerUuid([f.id]), userId: fc.constant(f.grantee.id), body: junkBody }) },
    );
    await fuzz(f, {
      arb: input,
      couldSucceed: ({ id, userId, body }) => namesId(id, f.id) && namesId(userId, f.grantee.id) && sendsNoBody(body),
      call: ({ id, userId, body }) => f.send("DELETE", `/${id}/permissions/${userId}`, body),
    });
  }, TIMEOUT);

  for (const route of [
    { method: "DELETE", suffix: "", target: {} },
    { method: "POST", suffix: "/restore", target: { deleted: true } },
  ]) {
    it(`${route.method} /secrets/:id${route.suffix}`, async () => {
      const f = await fixture(route.target);
      await fuzz(f, {
        // The right id with a body is refused too: the route takes none.
        arb: fc.record({ id: fc.oneof({ weight: 3, arbitrary: notId(f.id) }, { weight: 1, arbitrary: fc.constant(f.id) }), body: junkBody }),
        couldSucceed: ({ id, body }) => namesId(id, f.id) && sendsNoBody(body),
        call: ({ id, body }) => f.send(route.method, `/${id}${route.suffix}`, body),
      });
    }, TIMEOUT);
  }
});

describe("the checks above can fail", () => {
  it("a valid PATCH body changes the row, and the rejection check then fails", async () => {
    const f = await fixture();
    const before = await f.state();
    const body = { description: "changed by the sanity check", tags: ["sane"] };
    expect(patchOk(wireOf(json(body)))).toBe(true); // the oracle would have discarded it
    const res = await f.send("PATCH", `/${f.id}`, json(body));
    expect(res.status).toBe(200);
    expect(await f.state()).not.toBe(before);
    expect(() => expectRejection(res, [])).toThrow();
  });

  it("a valid create adds a row for the owner", async () => {
    const f = await fixture();
    const before = await f.ownerState();
    const value = `fuzz-sanity-${crypto.randomUUID()}`;
    h.remember(value);
    const res = await f.send("POST", "", json({ name: "Sanity_1", value }));
    expect(res.status).toBe(201);
    expect(await f.ownerState()).not.toBe(before);
  });

  it("the oracle rejects samples of every broken-by-design generator", () => {
    for (const [label, arb, check] of [
      ["name", badName, spec.name], ["value", badValue, spec.value], ["secretType", badType, spec.secretType],
      ["description", badDescription, spec.description], ["tags", badTags, spec.tags], ["expiresAt", badExpiresAt, spec.expiresAt],
      ["expectedVersion", badExpectedVersion, spec.expectedVersion], ["permission", badPermission, spec.permission],
      ["email", badEmail, spec.email], ["uuid", badUuidValue, spec.uuid],
    ] as [string, Arbitrary<unknown>, Check][]) {
      for (const v of fc.sample(arb, 200)) expect(check(afterJson(v)), `${label}: ${JSON.stringify(v)?.slice(0, 80)}`).toBe(false);
    }
    for (const v of fc.sample(malformedJson, 200)) expect(() => JSON.parse(v)).toThrow();
  });
});

/**
 * Not invalid input but the edges of valid input: text the limits allow (any Unicode up to the
 * length limit) and offsets the schema's ISO check allows (±00:00 to ±23:59). The API may take
 * or refuse them, but never with a 5xx, and a refusal changes nothing.
 */
describe("inputs the schemas accept are never answered with a 5xx", () => {
  const EDGE_RUNS = 200;

  let n = 0;
  async function createProperty(extra: Arbitrary<Record<string, unknown>>) {
    const f = await fixture();
    const value = `fuzz-edge-value-${crypto.randomUUID()}`;
    h.remember(value);
    await fc.assert(fc.asyncProperty(extra, async (fields) => {
      const body = { name: `Edge_${++n}`, value, ...fields };
      expect(createOk(wireOf(json(body)))).toBe(true);
      const before = await f.ownerState();
      const res = await f.send("POST", "", json(body));
      await expectNo5xx(res, before, f.ownerState);
    }), { numRuns: EDGE_RUNS });
  }

  async function patchProperty(patch: Arbitrary<Record<string, unknown>>) {
    const f = await fixture();
    await fc.assert(fc.asyncProperty(patch, async (body) => {
      expect(patchOk(wireOf(json(body)))).toBe(true);
      const before = await f.state();
      const res = await f.send("PATCH", `/${f.id}`, json(body));
      await expectNo5xx(res, before, f.state);
    }), { numRuns: EDGE_RUNS });
  }

  it("POST /secrets with control characters and any other Unicode in description and tags", () => createProperty(ordinaryText), TIMEOUT);
  it("PATCH /secrets/:id with control characters and any other Unicode in description and tags", () => patchProperty(ordinaryText), TIMEOUT);
  it("POST /secrets with U+0000 in description or tags", () => createProperty(nulText), TIMEOUT);
  it("PATCH /secrets/:id with U+0000 in description or tags", () => patchProperty(nulText), TIMEOUT);
  it("POST /secrets with unpaired surrogates in description or tags", () => createProperty(loneSurrogateText), TIMEOUT);
  it("PATCH /secrets/:id with unpaired surrogates in description or tags", () => patchProperty(loneSurrogateText), TIMEOUT);
  it("POST /secrets with expiresAt at any offset", () => createProperty(anyOffsetExpiry), TIMEOUT);
  it("PATCH /secrets/:id with expiresAt at any offset", () => patchProperty(anyOffsetExpiry), TIMEOUT);
});
