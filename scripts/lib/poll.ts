/**
 * Polls `fn` until it returns a value or the deadline passes; the last error, if any, is in
 * the failure. Shared by the tests and the benchmark, which both wait on child servers.
 */
export async function eventually<T>(
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
  stepMs = 250,
  what = "timed out",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, stepMs));
  }
  throw new Error(`${what} after ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ""}`);
}
