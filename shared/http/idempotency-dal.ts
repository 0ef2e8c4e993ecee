/**
 * SQL of idempotency keys (supabase/migrations/20261128160900_idempotency.sql); parameterised,
 * run as the caller, whose identity the helpers read from the JWT claims. Digests and the
 * sealed body cross as base64.
 */
import { fromBase64, toBase64 } from "../bytes.ts";
import type { SealedValue } from "../crypto/envelope.ts";
import type { Queryable } from "../db/database.ts";

/** What an earlier request did with the key, or that this request now holds it. */
export type Claim =
  | { outcome: "claimed"; claimId: string }
  | { outcome: "mismatch"; claimId: string }
  | { outcome: "in_flight"; claimId: string }
  | { outcome: "replay"; claimId: string; answer: StoredAnswer };

/** A 2xx answer as stored: its body sealed under the KEK. */
export interface StoredAnswer {
  status: number;
  headers: Record<string, string>;
  body: SealedValue;
}

interface ClaimRow {
  claim: string;
  outcome: Claim["outcome"];
  status: number | null;
  headers: Record<string, string> | null;
  enc_format: number | null;
  iv: string | null;
  ciphertext: string | null;
  wrapped_dek: string | null;
  kek_version: number | null;
}

/** Claims the key (`keyDigest`: SHA-256 of the key) for this transaction, or reads what it holds. */
export async function claim(tx: Queryable, keyDigest: Uint8Array, fingerprint: Uint8Array): Promise<Claim> {
  const [row] = await tx.query<ClaimRow>(
    `select encode(c.claim, 'hex') as claim, c.outcome, c.status, c.headers, c.enc_format,
            encode(c.iv, 'base64') as iv, encode(c.ciphertext, 'base64') as ciphertext,
            encode(c.wrapped_dek, 'base64') as wrapped_dek, c.kek_version
       from private.claim_idempotency_key(decode($1, 'base64'), decode($2, 'base64')) c`,
    [toBase64(keyDigest), toBase64(fingerprint)],
  );
  if (row.outcome !== "replay") return { outcome: row.outcome, claimId: row.claim } as Claim;
  return {
    outcome: "replay",
    claimId: row.claim,
    answer: {
      status: row.status!,
      headers: row.headers ?? {},
      body: {
        encFormat: row.enc_format!,
        iv: fromBase64(row.iv!),
        ciphertext: fromBase64(row.ciphertext!),
        wrappedDek: fromBase64(row.wrapped_dek!),
        kekVersion: row.kek_version!,
      },
    },
  };
}

/** Stores the answer on the key this request claimed (before its commit). */
export async function store(tx: Queryable, keyDigest: Uint8Array, answer: StoredAnswer): Promise<void> {
  await tx.query(
    `select private.store_idempotent_response(decode($1, 'base64'), $2::int, $3::text::jsonb, $4::int,
       decode($5, 'base64'), decode($6, 'base64'), decode($7, 'base64'), $8::int)`,
    [
      toBase64(keyDigest), answer.status, JSON.stringify(answer.headers), answer.body.encFormat,
      toBase64(answer.body.iv), toBase64(answer.body.ciphertext), toBase64(answer.body.wrappedDek), answer.body.kekVersion,
    ],
  );
}

/** Drops the key's claim that has no answer (a multi-transaction request failed). */
export async function release(tx: Queryable, keyDigest: Uint8Array): Promise<void> {
  await tx.query(`select private.release_idempotency_key(decode($1, 'base64'))`, [toBase64(keyDigest)]);
}
