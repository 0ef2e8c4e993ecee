/**
 * Request and response shapes of the secrets routes; zod is the single source and the
 * request types come from it. Responses are built field by field from rows, so a ciphertext
 * column can never reach JSON.
 */
import { z } from "zod";
import { decimalInt, isoDate, uuid } from "../http/validation.ts";
import { GRANT_LEVELS } from "./permissions.ts";

export const SECRET_TYPES = ["api_key", "database_url", "jwt_secret", "custom"] as const;
export const MAX_VALUE_BYTES = 64 * 1024;

export const secretName = z.string().regex(
  /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/,
  "1-128 characters: a letter or _, then letters, digits, _ . -",
);
const utf8Length = (s: string) => new TextEncoder().encode(s).byteLength;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** Text PostgreSQL can store as sent: well-formed Unicode, no NUL. */
export const storableText = (s: string) => !s.includes("\u0000") && !LONE_SURROGATE.test(s);
const text = () => z.string().refine(storableText, "must be well-formed Unicode without NUL characters");

/** Values are encrypted, never stored as text: NUL is fine, but they must encode to UTF-8 as sent. */
const secretValue = z.string()
  .refine((v) => !LONE_SURROGATE.test(v), "must be well-formed Unicode")
  .refine((v) => v.length > 0 && utf8Length(v) <= MAX_VALUE_BYTES, `must be 1 byte to ${MAX_VALUE_BYTES} bytes of UTF-8`);
const tags = z.array(text().min(1).max(64)).max(20);
const description = text().max(1000);

export const createSecretBody = z.strictObject({
  name: secretName,
  value: secretValue,
  secretType: z.enum(SECRET_TYPES).default("custom"),
  description: description.default(""),
  tags: tags.default([]),
  expiresAt: isoDate.nullable().optional(),
  /** Service role only: whose secret this is. */
  ownerId: uuid.optional(),
});
export type CreateSecretInput = z.infer<typeof createSecretBody>;

export const updateSecretBody = z.strictObject({
  name: secretName.optional(),
  secretType: z.enum(SECRET_TYPES).optional(),
  description: description.optional(),
  tags: tags.optional(),
  expiresAt: isoDate.nullable().optional(),
  isActive: z.boolean().optional(),
}).refine((b) => Object.keys(b).length > 0, "at least one field to change");
export type UpdateSecretInput = z.infer<typeof updateSecretBody>;

/** A version number in a path or query string. */
const version = decimalInt(1, 2_147_483_647);
/** The version a check-and-set expects; 0 never matches a secret. */
const expectedVersion = z.number().int().min(0).max(2_147_483_647).optional();

export const putValueBody = z.strictObject({
  value: secretValue,
  expectedVersion,
});
export type PutValueInput = z.infer<typeof putValueBody>;

export const rollbackBody = z.strictObject({ expectedVersion }).optional();

export const versionParams = z.strictObject({ id: uuid, n: version });
export const grantParams = z.strictObject({ id: uuid, userId: uuid });
export const valueQuery = z.strictObject({ version: version.optional() });

const boolFlag = z.enum(["true", "false"]).transform((v) => v === "true");

export const listQuery = z.strictObject({
  type: z.enum(SECRET_TYPES).optional(),
  tag: text().min(1).max(64).optional(),
  prefix: text().min(1).max(128).optional(),
  includeInactive: boolFlag.optional(),
  deleted: boolFlag.optional(),
  ownerId: uuid.optional(),
  /** A duration like 90m, 12h, 7d or 2w: live secrets expiring within it, soonest first. */
  expiringWithin: z.string().regex(/^[1-9]\d{0,5}[smhdw]$/, "a duration like 30m, 12h, 7d or 2w")
    .transform((v) => `${v.slice(0, -1)} ${({ s: "seconds", m: "minutes", h: "hours", d: "days", w: "weeks" } as const)[v.at(-1) as "s"]}`)
    .optional(),
  cursor: z.string().max(512).optional(),
  limit: decimalInt(1, 100).default(50),
});
export type ListQuery = z.infer<typeof listQuery>;

/** Whom to grant: by user id or by email, exactly one of them. One object rather than a union,
 * so a bad field is named on its own (a union reports only that no branch matched). */
export const grantBody = z.strictObject({
  userId: uuid.optional(),
  email: z.email().max(255).optional(),
  permission: z.enum(GRANT_LEVELS),
}).refine((b) => (b.userId === undefined) !== (b.email === undefined), {
  message: "exactly one of userId and email",
  path: ["userId"],
});
export type GrantInput = z.infer<typeof grantBody>;

// Responses: strict objects, so the spec (and the tests that check every answer against it)
// refuses any field not listed here, a column a row happened to carry included.

/** A timestamp as the API writes it: ISO 8601 in UTC. */
export const timestamp = z.iso.datetime();
/** An id as the API writes it: a lower-case UUID. */
export const idOut = z.guid();

/** A secret's metadata and the caller's level on it: never its value. */
export const secretDto = z.strictObject({
  id: idOut,
  name: z.string(),
  secretType: z.enum(SECRET_TYPES),
  description: z.string(),
  tags: z.array(z.string()),
  ownerId: idOut,
  /** Derived: deleted, else expired, else active or inactive (`isActive`). */
  status: z.enum(["active", "inactive", "expired", "deleted"]),
  isActive: z.boolean(),
  expiresAt: timestamp.nullable(),
  currentVersion: z.number().int().min(1),
  /** The caller's level on this secret (the service role acts as owner). */
  permission: z.enum([...GRANT_LEVELS, "owner"]),
  createdAt: timestamp,
  updatedAt: timestamp,
  deletedAt: timestamp.nullable(),
}).meta({ id: "Secret" });
export type SecretDto = z.infer<typeof secretDto>;

/** A page of `GET /secrets`. */
export const secretPage = z.strictObject({
  items: z.array(secretDto),
  /** Pass back as `cursor` for the next page; null on the last. */
  nextCursor: z.string().nullable(),
});

/** A decrypted value: the one answer that holds one. */
export const valueDto = z.strictObject({ id: idOut, version: z.number().int().min(1), value: z.string() });

/** A version of the value, without the value. */
export const versionDto = z.strictObject({
  version: z.number().int().min(1),
  createdBy: idOut.nullable(),
  createdAt: timestamp,
  /** The version whose value a roll-back copied, or null. */
  restoredFrom: z.number().int().nullable(),
  /** The KEK its DEK is wrapped under. */
  kekVersion: z.number().int().min(1),
  current: z.boolean(),
}).meta({ id: "Version" });
export type VersionDto = z.infer<typeof versionDto>;

/** A grant on a secret, with the grantee's email. */
export const grantDto = z.strictObject({
  userId: idOut,
  email: z.string().nullable(),
  permission: z.enum(GRANT_LEVELS),
  grantedBy: idOut.nullable(),
  grantedAt: timestamp,
}).meta({ id: "Grant" });
export type GrantDto = z.infer<typeof grantDto>;

/** The answer to a revocation. */
export const revokedGrant = z.strictObject({ revoked: z.literal(true), userId: idOut });
