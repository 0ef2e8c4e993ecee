/**
 * The traffic of the fault test: writers that each own a secret and put new values on it,
 * retrying every logical write until it is acknowledged, and readers of those values. Every
 * HTTP call is recorded (when it started and ended, its status, error code and request id), so
 * the test can judge each against the fault windows it injected.
 *
 * Two kinds of writer, both sending one `Idempotency-Key` per logical write and the same key on
 * every retry of it:
 *   - `cas`: also sends `If-Match` (check-and-set). A retry that meets 409 `version_conflict`
 *     reads the secret back: only this writer writes it, so a current version one past the one
 *     it expected means its write committed (the answer was lost), and the value at that version
 *     must be its own;
 *   - `key`: the key alone, so nothing but the idempotency key keeps a retry of a write whose
 *     commit went through from making a second version.
 */

export interface Call {
  who: string;
  what: "write" | "read" | "check";
  method: string;
  path: string;
  started: number;
  ended: number;
  /** 0 when no HTTP answer came (a network error, or no answer within the client's timeout). */
  status: number;
  code?: string;
  requestId?: string;
  replayed?: boolean;
  error?: string;
}

/** A call that reads a value (and is audited as `accessed` when it succeeds). */
export const isValueRead = (c: Call) => c.method === "GET" && /^\/[^/]+\/value(\?|$)/.test(c.path);

export interface Writer {
  name: string;
  mode: "cas" | "key";
  token: string;
  secretId: string;
  /** The version the writer knows as current. */
  version: number;
  /** Acknowledged logical writes: the version each became, and its value. */
  acked: { version: number; value: string; key: string; inferred: boolean }[];
  /** A logical write given up on (retried past the limit), if any. */
  abandoned: string | null;
}

export interface Reader {
  name: string;
  token: string;
  secretId: string;
}

/** How long the client waits for any answer: far beyond the deadline, so a late answer is measured, not cut. */
const CLIENT_TIMEOUT_MS = 20_000;
/** A logical write still unacknowledged after this long is abandoned (and fails the test). */
const GIVE_UP_MS = 20_000;

export function createTraffic(base: string, options: { idempotencyKeys: boolean; pauseMs?: number }) {
  const calls: Call[] = [];
  const values = new Set<string>();
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const pauseMs = options.pauseMs ?? 15;

  async function call(
    who: string, what: Call["what"], method: string, path: string, token: string,
    extra: { body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<{ call: Call; body: any }> {
    const started = performance.now();
    const record: Call = { who, what, method, path, started, ended: started, status: 0 };
    let body: any = null;
    try {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(extra.body === undefined ? {} : { "content-type": "application/json" }),
          ...extra.headers,
        },
        body: extra.body === undefined ? undefined : JSON.stringify(extra.body),
        signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
      });
      const text = await res.text();
      record.status = res.status;
      record.requestId = res.headers.get("x-request-id") ?? undefined;
      record.replayed = res.headers.get("idempotent-replayed") === "true";
      try {
        body = JSON.parse(text);
      } catch {
        body = null;
      }
      if (!res.ok) record.code = body?.error?.code ?? "(no envelope)";
    } catch (err) {
      record.error = (err as Error).name === "TimeoutError" ? "no answer" : String((err as Error).message);
    }
    record.ended = performance.now();
    calls.push(record);
    return { call: record, body };
  }

  /** One logical write of `w`, retried with the same key until acknowledged (or given up). */
  async function write(w: Writer, n: number) {
    const value = `fault-${w.name}-${n}-${crypto.randomUUID()}`;
    values.add(value);
    const key = crypto.randomUUID();
    const expected = w.version;
    const began = performance.now();
    for (;;) {
      const headers: Record<string, string> = {};
      if (options.idempotencyKeys) headers["idempotency-key"] = key;
      if (w.mode === "cas") headers["if-match"] = `"${expected}"`;
      const { call: c, body } = await call(w.name, "write", "PUT", `/${w.secretId}/value`, w.token, { body: { value }, headers });
      if (c.status === 200) {
        w.version = body.data.currentVersion;
        w.acked.push({ version: w.version, value, key, inferred: false });
        return;
      }
      if (c.status === 409 && c.code === "version_conflict" && w.mode === "cas") {
        // Was it ours? Only this writer writes the secret: one past `expected` is this write.
        const meta = await call(w.name, "check", "GET", `/${w.secretId}`, w.token);
        const current = meta.body?.data?.currentVersion;
        if (meta.call.status === 200 && current === expected + 1) {
          const read = await call(w.name, "check", "GET", `/${w.secretId}/value?version=${current}`, w.token);
          if (read.call.status === 200 && read.body.data.value === value) {
            w.version = current;
            w.acked.push({ version: current, value, key, inferred: true });
            return;
          }
          if (read.call.status === 200) {
            w.abandoned = `write ${n}: version ${current} holds another value`;
            return;
          }
        }
        if (meta.call.status === 200 && current !== expected + 1) {
          w.abandoned = `write ${n}: version_conflict at ${current}, expected ${expected}`;
          return;
        }
      }
      if (performance.now() - began > GIVE_UP_MS) {
        w.abandoned = `write ${n}: not acknowledged after ${GIVE_UP_MS} ms (last ${c.status} ${c.code ?? c.error ?? ""})`;
        return;
      }
      await pause(100);
    }
  }

  /** Writes until `stop()` says so, finishing the logical write under way. */
  async function runWriter(w: Writer, stop: () => boolean) {
    for (let n = 1; !stop() && !w.abandoned; n++) {
      await write(w, n);
      await pause(pauseMs);
    }
  }

  async function runReader(r: Reader, stop: () => boolean) {
    while (!stop()) {
      await call(r.name, "read", "GET", `/${r.secretId}/value`, r.token);
      await pause(pauseMs);
    }
  }

  return { calls, values, call, runWriter, runReader };
}
