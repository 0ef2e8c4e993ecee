/**
 * Request and response shapes of KEK management (`/admin/keys`, service role only).
 */
import { z } from "zod";
import { decimalInt } from "../http/validation.ts";

/** What a caller other than the service role is told. */
export const SERVICE_ROLE_ONLY = "Key management is for the service role only.";

export const MAX_BATCH_SIZE = 5000;

/**
 * NIST SP 800-38D: one AES-GCM key, random 96-bit IVs, at most 2^32 invocations. A KEK makes
 * one per stored wrapping (private.kek_wrap_counts counts them).
 */
export const WRAP_LIMIT = 2 ** 32;
/** From this many wraps on, a key is reported `nearWrapLimit` and logged: rotate it. */
export const WRAP_WARNING = 2 ** 30;
export const DEFAULT_BATCH_SIZE = 500;

/** `POST /admin/keys/rotate`: both optional; no body at all means the defaults. */
export const rotateBody = z.strictObject({
  /** DEKs re-wrapped per transaction. */
  batchSize: z.number().int().min(1).max(MAX_BATCH_SIZE).optional(),
  /** Stop after this many batches (the rotation stays open and the next call resumes it). */
  maxBatches: z.number().int().min(1).optional(),
}).optional();
export type RotateInput = NonNullable<z.infer<typeof rotateBody>>;

export const keyVersionParam = z.strictObject({ version: decimalInt(1, 2_147_483_647) });

export const KEY_STATUSES = ["active", "retiring", "retired"] as const;
export type KeyStatus = typeof KEY_STATUSES[number];

/** A KEK version as the API reports it: never its material, never its Vault row. */
export const keyDto = z.strictObject({
  version: z.number().int().min(1),
  status: z.enum(KEY_STATUSES),
  createdAt: z.iso.datetime(),
  retiredAt: z.iso.datetime().nullable(),
  /** DEKs (secret versions) this key still wraps. */
  dekCount: z.number().int().min(0),
  /**
   * Wrappings ever stored under this key (new secrets, new versions, roll-backs, re-wraps),
   * purged secrets included: its random-IV AES-GCM invocations, capped at 2^32.
   */
  wraps: z.number().int().min(0),
  /** `wraps` has reached 2^30, a quarter of the cap: rotate this key soon. */
  nearWrapLimit: z.boolean(),
}).meta({ id: "Key" });
export type KeyDto = z.infer<typeof keyDto>;

/** What one rotation call did, and what is left for the next. */
export const rotationDto = z.strictObject({
  fromVersion: z.number().int().min(1),
  toVersion: z.number().int().min(1),
  /** DEKs re-wrapped by this call. */
  rewrapped: z.number().int().min(0),
  /** DEKs still wrapped by a key other than the active one. */
  remaining: z.number().int().min(0),
  /** No DEK left under an older key, and the older keys are retired. */
  completed: z.boolean(),
});
export type RotationDto = z.infer<typeof rotationDto>;
