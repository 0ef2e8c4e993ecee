/**
 * The documented limits, as an oracle: "could this be accepted?"
 *
 * Written from the limits, not imported from the app's zod schemas: a schema that accepts too
 * much makes the fuzz suites fail instead of silently agreeing with itself. The oracle judges
 * what the server will actually see (the JSON after a round trip, a body not declared JSON
 * refused, a path segment after decoding) and errs on the side of "could be valid".
 */

export const TYPES = ["api_key", "database_url", "jwt_secret", "custom"];
export const LEVELS = ["use", "read", "write", "admin"];
export const MAX_INT = 2_147_483_647;
export const MAX_VALUE_BYTES = 64 * 1024;
const MAX_BODY_BYTES = 128 * 1024;

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;
/** Looser than RFC 9562 on purpose: anything shaped like a uuid counts as "could be valid". */
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$/i;
/** An ETag this API returns: `"3"` or `W/"3"`. */
const ETAG_RE = /^(?:W\/)?"\d{1,10}"$/;

const utf8Bytes = (s: string) => new TextEncoder().encode(s).byteLength;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const has = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/** A value as the server sees it inside a JSON body (`undefined` is sent as nothing, so as null). */
export const afterJson = (v: unknown): unknown => JSON.parse(JSON.stringify(v) ?? "null");

function calendarValid(y: number, mo: number, d: number, hh: number, mi: number, ss: number) {
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  return mo >= 1 && mo <= 12 && d >= 1 && d <= days[mo - 1] && hh <= 23 && mi <= 59 && ss <= 59;
}

export type Check = (v: unknown) => boolean;

/** One check per documented field. */
export const spec = {
  name: (v: unknown) => typeof v === "string" && NAME_RE.test(v),
  value: (v: unknown) => typeof v === "string" && v.length > 0 && utf8Bytes(v) <= MAX_VALUE_BYTES,
  secretType: (v: unknown) => typeof v === "string" && TYPES.includes(v),
  description: (v: unknown) => typeof v === "string" && v.length <= 1000,
  tags: (v: unknown) =>
    Array.isArray(v) && v.length <= 20 && v.every((t) => typeof t === "string" && t.length >= 1 && t.length <= 64),
  /** null clears; otherwise a real calendar datetime with an offset, not (clearly) in the past. */
  expiresAt: (v: unknown) => {
    if (v === null) return true;
    if (typeof v !== "string") return false;
    const m = ISO_RE.exec(v);
    if (!m) return false;
    const [y, mo, d, hh, mi, ss] = m.slice(1, 7).map((x) => (x === undefined ? 0 : Number(x)));
    if (!calendarValid(y, mo, d, hh, mi, ss)) return false;
    return !(Date.parse(v) <= Date.now() - 60_000); // NaN: cannot rule it out
  },
  isActive: (v: unknown) => typeof v === "boolean",
  expectedVersion: (v: unknown) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= MAX_INT,
  uuid: (v: unknown) => typeof v === "string" && UUID_RE.test(v),
  email: (v: unknown) => typeof v === "string" && v.length <= 255 && /^[^@\s]+@[^@\s]+$/.test(v),
  permission: (v: unknown) => typeof v === "string" && LEVELS.includes(v),
} satisfies Record<string, Check>;

/** Every key known and valid, and the required ones present. */
function fieldsOk(b: unknown, allowed: Record<string, Check>, required: string[] = []): boolean {
  if (!isObj(b)) return false;
  return required.every((k) => has(b, k)) && Object.keys(b).every((k) => has(allowed, k) && allowed[k](b[k]));
}

export const CREATE_FIELDS = { name: spec.name, value: spec.value, secretType: spec.secretType, description: spec.description, tags: spec.tags, expiresAt: spec.expiresAt };
export const PATCH_FIELDS = { name: spec.name, secretType: spec.secretType, description: spec.description, tags: spec.tags, expiresAt: spec.expiresAt, isActive: spec.isActive };

/** ownerId is for the service role only, so any body naming it is invalid for a user. */
export const createOk = (b: unknown) => fieldsOk(b, CREATE_FIELDS, ["name", "value"]);
export const patchOk = (b: unknown) => isObj(b) && Object.keys(b).length > 0 && fieldsOk(b, PATCH_FIELDS);
export const putValueOk = (b: unknown) => fieldsOk(b, { value: spec.value, expectedVersion: spec.expectedVersion }, ["value"]);
export const rollbackBodyOk = (b: unknown) => fieldsOk(b, { expectedVersion: spec.expectedVersion });
export const grantOk = (b: unknown) =>
  isObj(b) && Object.keys(b).length === 2 && spec.permission(b.permission) &&
  ((has(b, "userId") && spec.uuid(b.userId)) || (has(b, "email") && spec.email(b.email)));
/** No If-Match, or one carrying an ETag this API returns. */
export const ifMatchOk = (v: string | undefined) => v === undefined || ETAG_RE.test(v.trim());

// ---------------------------------------------------------------------------------------------
// Path segments, as the app receives them
// ---------------------------------------------------------------------------------------------

/** Dot segments are resolved by the URL parser before a request leaves; they never reach the app. */
const DOT_SEGMENTS = new Set([".", "..", "%2e", "%2e%2e", ".%2e", "%2e."]);
export const isDotSegment = (seg: string) => DOT_SEGMENTS.has(seg.toLowerCase());

export const tryDecode = (seg: string) => {
  try {
    return decodeURIComponent(seg);
  } catch {
    return seg;
  }
};

/** Whether a path segment reaches the app as `id` (uuids compare case-insensitively). */
export const namesId = (seg: string, id: string) => tryDecode(seg).toLowerCase() === id.toLowerCase();

/** Numbers in a path are plain decimal integers: no sign, leading zero, space, exponent or `0x`. */
export const versionSegmentOk = (seg: string) => {
  const s = tryDecode(seg);
  return /^[1-9][0-9]*$/.test(s) && Number(s) <= MAX_INT;
};

// ---------------------------------------------------------------------------------------------
// Payloads, and what the server sees of them
// ---------------------------------------------------------------------------------------------

export type Payload =
  | { kind: "none" }
  | { kind: "json"; value: unknown }
  | { kind: "raw"; text: string; contentType: string };

export const JSON_TYPES = ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "application/json;charset=UTF-8"];

export const none: Payload = { kind: "none" };
export const json = (value: unknown): Payload => ({ kind: "json", value });
export const raw = (text: string, contentType: string): Payload => ({ kind: "raw", text, contentType });

export const MALFORMED = Symbol("malformed JSON");
const TOO_LARGE = Symbol("over the body limit");
const NOT_JSON = Symbol("a body not declared JSON");

/** The bytes a payload sends, as text; undefined when it sends none. */
const textOf = (p: Payload) => p.kind === "none" ? undefined : p.kind === "json" ? JSON.stringify(p.value) : p.text;

/** Routes that take no body refuse any body that is not empty. */
export const sendsNoBody = (p: Payload) => !textOf(p);

/** The body the JSON validator hands to zod: no body is `{}`; a body of another type is refused. */
export function wireOf(p: Payload): unknown {
  const text = textOf(p);
  if (text === undefined) return {}; // no payload, or JSON.stringify(undefined): nothing is sent
  if (utf8Bytes(text) > MAX_BODY_BYTES) return TOO_LARGE;
  if (p.kind === "raw" && !JSON_TYPES.includes(p.contentType)) return text === "" ? {} : NOT_JSON;
  // What Request.text() yields: UTF-8 round trip (lone surrogates become U+FFFD), BOM dropped.
  const seen = new TextDecoder().decode(new TextEncoder().encode(text));
  try {
    return JSON.parse(seen);
  } catch {
    return MALFORMED;
  }
}

/** String values a body carries under "value", which no response may echo. */
export function valuesIn(p: Payload): string[] {
  const w = wireOf(p);
  return isObj(w) && typeof w.value === "string" && w.value.length >= 16 ? [w.value] : [];
}
