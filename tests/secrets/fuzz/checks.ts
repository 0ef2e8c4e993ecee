/** What every fuzz run asserts: a 4xx in the error envelope, no value echoed, nothing changed. */
import fc, { type Arbitrary } from "fast-check";
import { expect } from "vitest";
import type { Reply } from "../../helpers/harness.ts";
import type { Target } from "./target.ts";

/** Inputs sent per route. */
const RUNS = 1000;

/** A 4xx in the error envelope that echoes none of `secrets`. */
export function expectRejection(res: Reply, secrets: string[]) {
  const text = JSON.stringify(res.body);
  const info = `${res.status} ${text.slice(0, 400)}`;
  expect(res.status, info).toBeGreaterThanOrEqual(400);
  expect(res.status, info).toBeLessThan(500);
  expect(res.body, info).toEqual({
    success: false,
    error: expect.objectContaining({ code: expect.stringMatching(/\S/), message: expect.any(String) }),
  });
  for (const s of secrets) expect(text.includes(s), `response echoes a value: ${info}`).toBe(false);
}

/** Taken, or refused as a rejection that changed nothing; never a 5xx. */
export async function expectNo5xx(res: Reply, before: string, after: () => Promise<string>) {
  const info = `${res.status} ${JSON.stringify(res.body).slice(0, 300)}`;
  expect(res.status, info).toBeLessThan(500);
  if (res.status >= 400) {
    expectRejection(res, []);
    expect(await after()).toBe(before);
  }
}

/**
 * Runs `RUNS` inputs the oracle rules out: each is sent, must be rejected without echoing the
 * target's value or one it carries (`echoes`), and the state must equal the state before the
 * first run (so a change by any run is caught by the next check too). `state` defaults to the
 * target's.
 */
export async function fuzz<T>(target: Target, opts: {
  arb: Arbitrary<T>;
  couldSucceed: (input: T) => boolean;
  call: (input: T) => Promise<Reply>;
  state?: () => Promise<string>;
  echoes?: (input: T) => string[];
}) {
  const state = opts.state ?? target.state;
  const baseline = await state();
  let sent = 0;
  await fc.assert(
    fc.asyncProperty(opts.arb.filter((i) => !opts.couldSucceed(i)), async (input) => {
      sent++;
      const res = await opts.call(input);
      expectRejection(res, [target.value, ...(opts.echoes?.(input) ?? [])]);
      expect(await state(), `database changed after ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`).toBe(baseline);
    }),
    { numRuns: RUNS },
  );
  expect(sent).toBeGreaterThanOrEqual(RUNS);
}
