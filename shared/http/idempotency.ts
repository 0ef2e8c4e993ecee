/**
 * `Idempotency-Key` on writes (POST, PUT, PATCH, DELETE): a retry with the same key, by the
 * same caller, for the same request, within 24 hours, gets the first answer again
 * (`Idempotent-Replayed: true`) and changes nothing; the same key with another request is 422
 * `idempotency_key_reused`. Without the header nothing changes.
 *
 * Why one transaction. The case that matters is a write that committed while its answer was
 * lost: the request deadline met during the commit (503), a dropped connection. An answer
 * stored after the commit is missing exactly then. So the request runs inside ONE database
 * transaction (`inRequestTransaction`; the services' `asCaller`/`asOwner` join it): it claims
 * the key (a row keyed by a hash of caller and key, with the request's fingerprint), runs the
 * route, stores a 2xx answer on the claim, and commits all of it at once. Whatever the client
 * saw, either the change and its answer are both in the database, or neither is.
 *   - An error answer (4xx, 5xx, an exception) rolls the whole transaction back: nothing of
 *     the request remains, the key included, and a retry runs again. (No write route commits
 *     anything on its way to an error, e.g. a 'denied' audit row; one that did would lose it
 *     under a key.)
 *   - A concurrent duplicate waits on the claim's primary key until the first commits, then
 *     replays its answer (or, if the first rolled back, runs itself).
 *   - The request deadline covers the whole transaction, claim to commit.
 *
 * The stored body is sealed under the KEK like a secret value (a fresh DEK, AES-256-GCM): a
 * body may carry a bearer credential (`POST /deployments/:id/tokens` answers with a new
 * token), and sealing every body covers any route that ever does. The AAD binds it to its
 * claim: `sealValue` with the id `idempotency:<claim hash>`, a name no secret id (a UUID) can
 * take, so neither a secret's blob nor another claim's opens here. The key itself never
 * reaches the database: only its SHA-256, hashed again with the caller by the database.
 *
 * Routes whose work spans several transactions (`multiTransactionPaths`: the KEK rotation
 * runs its batches in transactions of their own, two at a time, and reloads the keyring from
 * Vault between steps, which a transaction not yet committed would hide) cannot be made
 * atomic with an answer. There the key means "at most once": the claim commits first, the
 * route runs, a 2xx answer is stored afterwards (a failure releases the claim). A retry while
 * the first runs, or after it stopped without storing its answer, gets 409
 * `idempotency_key_in_flight` and runs nothing; the caller checks `GET /admin/keys` and calls
 * again with a new key (a rotation resumes where it stopped). So a retry never begins a
 * second rotation behind the caller's back.
 */
import { createMiddleware } from "hono/factory";
import type { Context } from "hono";
import type { ContentfulStatusCode, StatusCode } from "hono/utils/http-status";
import { toBase64 } from "../bytes.ts";
import { DecryptionError, openValue, sealValue } from "../crypto/envelope.ts";
import type { Keyring } from "../crypto/keyring.ts";
import { asCaller, type Database, inRequestTransaction } from "../db/database.ts";
import { appError } from "../errors.ts";
import type { AppEnv } from "./app-env.ts";
import * as dal from "./idempotency-dal.ts";

export const IDEMPOTENCY_KEY_HEADER = "Idempotency-Key";
export const REPLAYED_HEADER = "Idempotent-Replayed";

const WRITE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);
/**
 * POSTs that change nothing (POST only to carry a body): the audit verification. A key is
 * ignored there: a retry simply runs again, and the route keeps its own short transactions
 * instead of one under the request deadline.
 */
const READ_ONLY_PATHS = new Set(["/secrets/admin/audit/verify"]);
/** 1 to 255 visible ASCII characters (no space: two keys in one header would join with ", "). */
const VALID_KEY = /^[\x21-\x7e]{1,255}$/;
/** The headers of an answer a replay repeats; the rest (request id, CORS, security) are the retry's own. */
const REPLAYED_HEADERS = ["content-type", "etag", "location", "cache-control", "pragma"];

export interface IdempotencyDeps {
  db: Database;
  keyring: Keyring;
  /** Full paths (`/secrets/admin/keys/rotate`) of routes whose work spans several transactions. */
  multiTransactionPaths?: readonly string[];
  log?: (event: string, fields: Record<string, unknown>) => void;
}

/** A thrown marker: the route answered an error, so the request's transaction rolls back. */
class ErrorAnswer {}

const isSuccess = (status: number) => status >= 200 && status < 300;

/** SHA-256 of a string's UTF-8. */
async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/** JSON with object keys sorted at every depth: two spellings of one body are one request. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * The request as the route reads it: method, path, query (sorted), the body (JSON in
 * canonical form, as the route parses it; other bytes as they are) and `If-Match`.
 */
export async function requestFingerprint(c: Context): Promise<Uint8Array> {
  const url = new URL(c.req.url);
  const query = [...url.searchParams].sort(([a, x], [b, y]) => a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0);
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  let body = "";
  if (bytes.byteLength > 0) {
    try {
      body = `json:${canonicalJson(JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)))}`;
    } catch {
      body = `bytes:${toBase64(bytes)}`;
    }
  }
  return await sha256(JSON.stringify([c.req.method, url.pathname, query, body, c.req.header("if-match") ?? null]));
}

/** The AAD name of a claim's sealed answer (see the module comment). */
const answerName = (claimId: string) => `idempotency:${claimId}`;

export function idempotency(deps: IdempotencyDeps) {
  const { db, keyring } = deps;
  const log = deps.log ?? (() => {});
  const multiTransaction = new Set(deps.multiTransactionPaths ?? []);

  /** The route's 2xx answer, its body sealed for this claim. */
  async function sealAnswer(c: Context, claimId: string): Promise<dal.StoredAnswer> {
    const res = c.res.clone();
    const headers: Record<string, string> = {};
    for (const name of REPLAYED_HEADERS) {
      const value = res.headers.get(name);
      if (value !== null) headers[name] = value;
    }
    return { status: res.status, headers, body: await sealValue(keyring, answerName(claimId), 1, await res.text()) };
  }

  /** The stored answer again, marked as a replay. */
  async function replay(c: Context, claimId: string, answer: dal.StoredAnswer): Promise<Response> {
    // Sealed under a KEK this instance does not hold: another instance rotated; reload once.
    if (!keyring.get(answer.body.kekVersion) && keyring.reload) await keyring.reload();
    let body: string;
    try {
      body = await openValue(keyring, answerName(claimId), 1, answer.body);
    } catch (err) {
      if (!(err instanceof DecryptionError)) throw err;
      log("idempotent_answer_unreadable", { requestId: c.get("requestId"), kekVersion: answer.body.kekVersion });
      // Its KEK was retired by a rotation since (retired keys are never loaded): the write is
      // done and stays done; only its answer is gone. Anything else is a tampered row.
      if (!keyring.get(answer.body.kekVersion)) throw appError("idempotency_answer_unavailable");
      throw appError("decryption_failed");
    }
    for (const [name, value] of Object.entries(answer.headers)) c.header(name, value);
    c.header(REPLAYED_HEADER, "true");
    const status = answer.status as StatusCode;
    return body.length === 0 ? c.body(null, status) : c.body(body, status as ContentfulStatusCode);
  }

  return createMiddleware<AppEnv>(async (c, next) => {
    if (!WRITE_METHODS.has(c.req.method) || READ_ONLY_PATHS.has(c.req.path)) return next();
    const key = c.req.header(IDEMPOTENCY_KEY_HEADER);
    if (key === undefined) return next();
    if (!VALID_KEY.test(key)) throw appError("idempotency_key_invalid");
    const keyDigest = await sha256(key);
    const fingerprint = await requestFingerprint(c);
    const ctx = c.get("ctx");

    let claim: dal.Claim;
    if (multiTransaction.has(c.req.path)) {
      // At most once: the claim commits on its own, before the route's transactions.
      claim = await asCaller(db, ctx, (tx) => dal.claim(tx, keyDigest, fingerprint));
      if (claim.outcome === "claimed") {
        await next();
        const claimId = claim.claimId;
        if (isSuccess(c.res.status)) {
          const answer = await sealAnswer(c, claimId);
          await asCaller(db, ctx, (tx) => dal.store(tx, keyDigest, answer));
        } else {
          await asCaller(db, ctx, (tx) => dal.release(tx, keyDigest));
        }
        return;
      }
    } else {
      try {
        claim = await inRequestTransaction(db, async () => {
          const found = await asCaller(db, ctx, (tx) => dal.claim(tx, keyDigest, fingerprint));
          // Not claimed: this transaction wrote nothing, and its commit changes nothing.
          if (found.outcome !== "claimed") return found;
          await next();
          if (!isSuccess(c.res.status)) throw new ErrorAnswer();
          const answer = await sealAnswer(c, found.claimId);
          await asCaller(db, ctx, (tx) => dal.store(tx, keyDigest, answer));
          return found;
        });
      } catch (err) {
        // The route's error answer stands (c.res); its transaction, the claim with it, is gone.
        if (err instanceof ErrorAnswer) return;
        throw err;
      }
      if (claim.outcome === "claimed") return;
    }
    if (claim.outcome === "mismatch") throw appError("idempotency_key_reused");
    if (claim.outcome === "in_flight") throw appError("idempotency_key_in_flight");
    return await replay(c, claim.claimId, claim.answer);
  });
}
