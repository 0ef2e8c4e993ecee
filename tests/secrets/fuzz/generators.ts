/**
 * fast-check arbitraries for the fuzz suites. The `bad*` ones are invalid by construction and
 * filtered through the oracle once more, so each sample is one the limits rule out; the route
 * bodies are a valid-looking base with at least one broken part, or something that is not a
 * body at all.
 */
import fc, { type Arbitrary } from "fast-check";
import {
  afterJson, type Check, CREATE_FIELDS, ifMatchOk, isDotSegment, json, JSON_TYPES, LEVELS, MALFORMED, MAX_INT,
  MAX_VALUE_BYTES, none, PATCH_FIELDS, type Payload, raw, spec, tryDecode, TYPES, UUID_RE, versionSegmentOk, wireOf,
} from "./oracle.ts";

/** Values the oracle rules out once they have been through JSON. */
const notA = (check: Check) => (v: unknown) => !check(afterJson(v));

// ---------------------------------------------------------------------------------------------
// Field values
// ---------------------------------------------------------------------------------------------

const anyJson = fc.jsonValue({ maxDepth: 2 });
/** JSON values of every type; callers filter out the right one. */
const wrongType: Arbitrary<unknown> = fc.oneof(
  fc.constant(null), fc.boolean(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 10 }), fc.array(anyJson, { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), anyJson, { maxKeys: 3 }),
);
const notString = wrongType.filter((v) => typeof v !== "string");

/** Near misses, then `more`, then any string up to `maxLength` and any JSON type: whatever `check` rules out. */
const ruledOut = (check: Check, maxLength: number, nearMisses: unknown[], ...more: Arbitrary<unknown>[]) =>
  fc.oneof(fc.constantFrom(...nearMisses), ...more, fc.string({ maxLength }), wrongType).filter(notA(check));

const validName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.-]{0,40}$/);
const validValue = fc.uuid().map((u) => `fuzz-value-${u}`);
const validType = fc.constantFrom(...TYPES);
const validDescription = fc.string({ maxLength: 80 });
const validTag = fc.string({ minLength: 1, maxLength: 64 });
const validTags = fc.array(validTag, { maxLength: 5 });
const futureDate = fc.date({ min: new Date(Date.now() + 86_400_000), max: new Date("2999-12-31T00:00:00Z"), noInvalidDate: true });
const validExpiresAt = fc.oneof(fc.constant(null), futureDate.map((d) => d.toISOString()));

const SQLISH = ["x'; drop table secrets;--", "' OR '1'='1", "Robert'); DROP TABLE public.secrets;--", "1; select pg_sleep(1)", "$$; drop table secrets; $$"];

export const badName = fc.oneof(
  fc.constantFrom(
    "", " ", "1abc", "9", "-name", ".name", "name with space", " lead", "trail ", "name\n", "na\u0000me", "naïve", "名前",
    "😀", "a/b", "a\\b", "a$b", "a:b", "%41", "a".repeat(129), "_".repeat(200), "A".repeat(1000), ...SQLISH,
  ),
  fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.-]{128,160}$/),
  fc.stringMatching(/^[0-9.-][A-Za-z0-9_.-]{0,20}$/),
  fc.tuple(validName, fc.string({ unit: "binary", minLength: 1, maxLength: 3 }), validName).map(([a, x, b]) => a + x + b),
  fc.string({ unit: "binary", maxLength: 140 }),
  wrongType,
).filter(notA(spec.name));

/** A few only: each is 64 KiB or more. "é" and "😀" are within 64 Ki UTF-16 units but over 64 KiB of UTF-8. */
const BIG_VALUES = ["a".repeat(MAX_VALUE_BYTES + 1), "é".repeat(MAX_VALUE_BYTES / 2 + 1), "😀".repeat(MAX_VALUE_BYTES / 4 + 1), "x".repeat(140_000)];
export const badValue = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom(...BIG_VALUES) },
  { weight: 3, arbitrary: fc.constant("") },
  { weight: 8, arbitrary: notString },
);

export const badType = ruledOut(spec.secretType, 20,
  ["", "API_KEY", "Api_Key", "api-key", "apikey", "owner", "secret", " custom", "custom ", "custom\u0000", "password", ...SQLISH]);

export const badDescription = fc.oneof(
  fc.constantFrom("x".repeat(1001), "é".repeat(1001), "\u0000".repeat(1001)),
  fc.string({ minLength: 1001, maxLength: 1100 }),
  notString,
).filter(notA(spec.description));

const badTag = fc.oneof(
  fc.constant(""), fc.constant("t".repeat(65)), fc.string({ minLength: 65, maxLength: 100 }),
  notString,
);
export const badTags = fc.oneof(
  fc.array(validTag, { minLength: 21, maxLength: 30 }),
  fc.tuple(validTags, badTag, fc.nat()).map(([ts, t, i]) => {
    const out: unknown[] = [...ts];
    out.splice(i % (ts.length + 1), 0, t);
    return out;
  }),
  fc.constantFrom("tag", "a,b", "{a,b}", { 0: "a", length: 1 }),
  wrongType.filter((v) => !Array.isArray(v)),
).filter(notA(spec.tags));

const OFFSETS: [string, number][] = [["Z", 0], ["+00:00", 0], ["+05:30", 330], ["-08:00", -480], ["+14:00", 840]];
const pastDate = fc.date({ min: new Date("0001-01-02T00:00:00Z"), max: new Date(Date.now() - 3_600_000), noInvalidDate: true });
export const badExpiresAt = fc.oneof(
  fc.tuple(pastDate, fc.constantFrom(...OFFSETS)).map(([d, [suffix, minutes]]) =>
    new Date(d.getTime() + minutes * 60_000).toISOString().replace("Z", suffix)),
  fc.constantFrom(
    "", "tomorrow", "now", "infinity", "-infinity", "epoch", "Invalid Date", "2099-13-01T00:00:00Z", "2099-02-30T00:00:00Z",
    "2100-02-29T00:00:00Z", "2099-01-01T25:00:00Z", "2099-01-01T00:60:00Z", "2099-01-01", "2099-01-01T00:00:00",
    "2099-01-01 00:00:00Z", "01/01/2099", "4102444800000", "2099-W01-1", ...SQLISH,
  ),
  fc.integer({ min: Date.now(), max: Date.now() + 1e12 }),
  futureDate.map((d) => d.getTime()),
  futureDate.map((d) => d.toISOString().slice(0, 19)), // no offset
  fc.string({ maxLength: 30 }),
  wrongType.filter((v) => v !== null),
).filter(notA(spec.expiresAt));

export const badExpectedVersion = fc.oneof(
  fc.integer({ max: -1 }), fc.constantFrom(-0.5, 1.5, 2 ** 31, 2 ** 53, 1e300, "1", "2", "0", "", "latest"),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
  fc.bigInt({ min: 2n ** 31n, max: 10n ** 20n }).map((n) => Number(n)),
  wrongType,
).filter(notA(spec.expectedVersion));

export const badPermission = ruledOut(spec.permission, 12,
  ["owner", "READ", "Read", " read", "read ", "none", "", "all", "*", "admin;--", "write,admin", ...SQLISH]);

export const badEmail = ruledOut(spec.email, 40,
  ["", "@", "a@", "@example.com", "no-at-sign", "two@@example.com", "a b@example.com", `${"a".repeat(250)}@example.com`, ...SQLISH]);

export const badUuidValue = ruledOut(spec.uuid, 40,
  ["", "null", "0", "not-a-uuid", "00000000-0000-0000-0000-00000000000g", ...SQLISH],
  fc.uuid().map((u) => u.replace(/-/g, "")),
  fc.uuid().map((u) => `{${u}}`),
  fc.uuid().chain((u) => fc.nat(35).map((n) => u.slice(0, n))),
);

/** If-Match values that are not an ETag this API returns. */
export const badIfMatch = fc.oneof(
  fc.constantFrom("1", "W/1", "\"1", "1\"", "'1'", "\"-1\"", "\"1.5\"", "\"abc\"", "*", "\"\"", "W/\"\"", "\"99999999999\"", "w/\"1\"", "\"1\", \"2\""),
  fc.string({ unit: "grapheme-ascii", maxLength: 20 }),
).filter((v) => !ifMatchOk(v));

// ---------------------------------------------------------------------------------------------
// Bodies: a valid-looking base with breaking mutations
// ---------------------------------------------------------------------------------------------

function setKey(o: Record<string, unknown>, k: string, v: unknown) {
  // defineProperty, so "__proto__" becomes a real key of the JSON body.
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

type Mutation = { set: string; to: unknown } | { drop: string };
const setTo = (key: string, arb: Arbitrary<unknown>): Arbitrary<Mutation> => arb.map((to) => ({ set: key, to }));
const drop = (...keys: string[]): Arbitrary<Mutation> => fc.constantFrom(...keys).map((k) => ({ drop: k }));

/** A valid-looking base with one to three breaking mutations applied. */
function broken(base: Arbitrary<Record<string, unknown>>, mutation: Arbitrary<Mutation>) {
  return fc.tuple(base, fc.array(mutation, { minLength: 1, maxLength: 3 })).map(([b, ms]) => {
    const out: Record<string, unknown> = { ...b };
    for (const m of ms) {
      if ("drop" in m) delete out[m.drop];
      else setKey(out, m.set, m.to);
    }
    return out;
  });
}

/** Mostly broken bases (weight 12), sometimes something that is not a body of this route at all. */
function brokenOrStray(base: Arbitrary<Record<string, unknown>>, mutation: Arbitrary<Mutation>, strays: unknown[]) {
  return fc.oneof({ weight: 12, arbitrary: broken(base, mutation) }, { weight: 1, arbitrary: fc.constantFrom(...strays) });
}

const COMMON_UNKNOWN = [
  "__proto__", "constructor", "prototype", "toString", "id", "userId", "user_id", "ownerId", "owner_id", "isActive",
  "is_active", "Name", "NAME", " name", "value ", "currentVersion", "current_version", "deletedAt", "permission", "expectedVersion",
  "email", "role", "",
];
const unknownField = (known: string[]): Arbitrary<Mutation> =>
  fc.tuple(fc.oneof(fc.constantFrom(...COMMON_UNKNOWN), fc.string({ maxLength: 20 })).filter((k) => !known.includes(k)), anyJson)
    .map(([set, to]) => ({ set, to }));

/** Create bodies; `ownerId` (the caller's own among others) is for the service role only. */
export function createBodies(ownerId: string) {
  const valid = fc.record(
    { name: validName, value: validValue, secretType: validType, description: validDescription, tags: validTags, expiresAt: validExpiresAt },
    { requiredKeys: ["name", "value"] },
  );
  const invalid = brokenOrStray(valid, fc.oneof(
    setTo("name", badName), setTo("value", badValue), setTo("secretType", badType), setTo("description", badDescription),
    setTo("tags", badTags), setTo("expiresAt", badExpiresAt), drop("name", "value"),
    setTo("ownerId", fc.oneof(badUuidValue, fc.uuid(), fc.constant(ownerId))),
    unknownField(Object.keys(CREATE_FIELDS)),
  ), [{}, [], null, 0, "", "name=x&value=y", [{ name: "X", value: "abcdefgh" }]]);
  return { valid, invalid };
}

/** Metadata patches; `valid` may be `{}`, which the route refuses. */
export function patchBodies() {
  const valid = fc.record(
    { name: validName, secretType: validType, description: validDescription, tags: validTags, expiresAt: validExpiresAt, isActive: fc.boolean() },
    { requiredKeys: [] },
  );
  const invalid = brokenOrStray(valid, fc.oneof(
    setTo("name", badName), setTo("secretType", badType), setTo("description", badDescription), setTo("tags", badTags),
    setTo("expiresAt", badExpiresAt), setTo("isActive", wrongType.filter(notA(spec.isActive))),
    setTo("value", fc.oneof(validValue, badValue)), // values are not metadata
    unknownField(Object.keys(PATCH_FIELDS)),
  ), [{}, [], null, 0, "", true, [{ description: "x" }]]);
  return { valid, invalid };
}

/** New values, with or without the version they expect to replace. */
export function valueBodies() {
  const valid = fc.record({ value: validValue, expectedVersion: fc.constantFrom(0, 1, 2, MAX_INT) }, { requiredKeys: ["value"] });
  const invalid = brokenOrStray(valid, fc.oneof(
    { weight: 3, arbitrary: setTo("value", badValue) }, drop("value"), setTo("expectedVersion", badExpectedVersion),
    unknownField(["value", "expectedVersion"]),
  ), [{}, [], null, 0, "", "fuzz-value-as-a-bare-string", [{ value: "abcdefgh" }]]);
  return { valid, invalid };
}

/** Restore bodies: an optional expected version. */
export function restoreBodies() {
  const valid = fc.record({ expectedVersion: fc.constantFrom(0, 1, 2, 3) }, { requiredKeys: [] });
  const invalid = fc.oneof(
    { weight: 12, arbitrary: broken(valid, fc.oneof(setTo("expectedVersion", badExpectedVersion), unknownField(["expectedVersion"]))) },
    { weight: 2, arbitrary: fc.constantFrom(null, [], 0, 2, "", "2", true, [{ expectedVersion: 2 }]) },
  );
  return { valid, invalid };
}

/** Grants to either user, by id or by email; broken ones include naming both at once. */
export function grantBodies(grantee: { id: string; email: string }, other: { id: string; email: string }) {
  const valid = fc.oneof(
    fc.record({ userId: fc.constantFrom(grantee.id, other.id), permission: fc.constantFrom(...LEVELS) }),
    fc.record({ email: fc.constantFrom(grantee.email, other.email), permission: fc.constantFrom(...LEVELS) }),
  );
  const invalid = brokenOrStray(valid, fc.oneof(
    { weight: 3, arbitrary: setTo("permission", badPermission) }, setTo("userId", badUuidValue), setTo("email", badEmail),
    setTo("userId", fc.constant(other.id)), setTo("email", fc.constant(other.email)), // both identifiers at once
    drop("permission"), drop("userId", "email"), unknownField(["userId", "email", "permission"]),
  ), [{}, [], null, 0, "", "read", [{ userId: other.id, permission: "read" }]]);
  return { valid, invalid };
}

// ---------------------------------------------------------------------------------------------
// Payloads: how a body is sent
// ---------------------------------------------------------------------------------------------

const OTHER_TYPES = ["text/plain", "application/x-www-form-urlencoded", "application/xml", "application/octet-stream"];

export const malformedJson = fc.oneof(
  fc.constantFrom(
    "", " ", "{", "}", "[", "{\"name\":", "{'name':'x'}", "{name:\"x\"}", "{\"a\":1,}", "[1,]", "NaN", "undefined", "{\"a\":NaN}",
    "{\"a\":Infinity}", "{\"a\":01}", "{} {}", "{\"a\":\"\\x41\"}", "{\"a\":\"\u0001\"}", "// c\n{}", "nul", "tru",
    "{\"a\":\"unterminated}", "{\"value\":\"abc\"", "\"\\ud800", "{\"a\" 1}", "{\"a\":1}}",
  ),
  fc.json().chain((s) => fc.nat(Math.max(0, s.length - 1)).map((i) => s.slice(0, i))),
  fc.tuple(fc.json(), fc.string({ unit: "binary", minLength: 1, maxLength: 3 }), fc.nat()).map(([s, junk, i]) => {
    const at = i % (s.length + 1);
    return s.slice(0, at) + junk + s.slice(at);
  }),
  fc.string({ unit: "binary", maxLength: 50 }),
).filter((s) => wireOf(raw(s, "application/json")) === MALFORMED);

/** Bodies of one route: mostly broken-by-design, plus arbitrary values, malformed JSON, wrong types, none. */
export function payloads(invalid: Arbitrary<unknown>, valid: Arbitrary<unknown>): Arbitrary<Payload> {
  return fc.oneof(
    { weight: 10, arbitrary: invalid.map(json) },
    { weight: 2, arbitrary: fc.anything().map(json) },
    { weight: 2, arbitrary: fc.jsonValue().map(json) },
    { weight: 2, arbitrary: fc.tuple(malformedJson, fc.constantFrom(...JSON_TYPES)).map(([t, ct]) => raw(t, ct)) },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.oneof(valid, invalid).map((b) => JSON.stringify(b) ?? ""), fc.constantFrom(...OTHER_TYPES))
        .map(([t, ct]) => raw(t, ct)),
    },
    { weight: 1, arbitrary: fc.constant(none) },
  );
}

/** Whatever arrives on a route that takes no body: none, any value, malformed JSON. */
export const junkBody = fc.oneof(fc.constant(none), fc.anything().map(json), malformedJson.map((t) => raw(t, "application/json")));

// ---------------------------------------------------------------------------------------------
// Path segments (dot segments never reach the app, so they are left out)
// ---------------------------------------------------------------------------------------------

const seg = (s: string) => encodeURIComponent(s);

/** Segments that are not a uuid at all, some of them near misses of `near`. */
export function badUuidSegment(near: string): Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom(
      "", "null", "undefined", "0", "1", "-1", "NaN", "true", "[]", "{}", "*", "%", "_", near.slice(0, -1), `${near}0`,
      near.replace(/-/g, ""), `{${near}}`, `(${near})`, `urn:uuid:${near}`, near.replace(/-/g, "_"), `${near}'`,
      `${near}' or '1'='1`, `${near},${near}`, `${near} ${near}`, `${near}\n`, ` ${near}`, `${near} `, `${near}\u0000`,
      `${near}/value`, "٠".repeat(8), "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", ...SQLISH,
    ).map(seg),
    // Verbatim in the path: broken or unusual percent-encoding.
    fc.constantFrom("%", "%ZZ", "%E0%A4%A", "%ED%A0%80", "%FF", "%C0%AE", `${near}%00`, `${near}%0A`, `%20${near}`, `${near}%2F`,
      "a%2Fb", `${near}%3Fx=1`, `${near}%23`, `${near}%2Fvalue`),
    fc.tuple(fc.uuid(), fc.nat(35), fc.constantFrom("g", "z", "G", " ", "", "ä", "'", "x", "%")).map(([u, i, c]) =>
      seg(u.slice(0, i) + c + u.slice(i + 1))),
    fc.uuid().chain((u) => fc.nat(35).map((n) => seg(u.slice(0, n)))),
    fc.string({ unit: "binary", maxLength: 64 }).map(seg),
    fc.string({ maxLength: 200 }).map(seg),
    fc.integer().map(String),
  ).filter((s) => !isDotSegment(s) && !UUID_RE.test(tryDecode(s)));
}

/** Well-formed uuids that name nothing here (the request is about some other, absent, row). */
export function strangerUuid(avoid: string[]): Arbitrary<string> {
  const lower = avoid.map((a) => a.toLowerCase());
  return fc.oneof(
    fc.uuid(),
    fc.uuid().map((u) => u.toUpperCase()),
    fc.constantFrom("00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff", "12345678-1234-1234-1234-123456789012"),
  ).filter((u) => !lower.includes(u.toLowerCase()));
}

/** Any segment but `id`: mostly not a uuid, sometimes another uuid. */
export const notId = (id: string) =>
  fc.oneof({ weight: 6, arbitrary: badUuidSegment(id) }, { weight: 1, arbitrary: strangerUuid([id]) });

export const badVersionSegment = fc.oneof(
  fc.constantFrom(
    "0", "-1", "-0", "00", "0.0", "1.5", "2.0000001", "NaN", "Infinity", "-Infinity", "1e309", "2147483648", "4294967296",
    "9007199254740993", "99999999999999999999999", "1e10", "abc", "one", "true", "null", "[1]", "1_000", "1,000", "½",
    "١", "１", "v1", "1'; drop table secrets;--", "1 OR 1=1",
  ).map(seg),
  fc.integer({ max: 0 }).map(String),
  fc.bigInt({ min: 2n ** 31n, max: 10n ** 30n }).map(String),
  fc.double().map((d) => seg(String(d))),
  fc.string({ unit: "binary", maxLength: 20 }).map(seg),
).filter((s) => !isDotSegment(s) && !versionSegmentOk(s));

/**
 * Requests to `/:id…` with a body: mostly broken bodies for the secret itself, some for a
 * broken id, a few valid bodies for a secret that is not there.
 */
export function idAndBody(id: string, bodies: { invalid: Arbitrary<unknown>; valid: Arbitrary<unknown> }, validForStranger = bodies.valid) {
  const { invalid, valid } = bodies;
  return fc.oneof(
    { weight: 8, arbitrary: fc.record({ id: fc.constant(id), body: payloads(invalid, valid) }) },
    { weight: 3, arbitrary: fc.record({ id: badUuidSegment(id), body: fc.oneof(payloads(invalid, valid), valid.map(json)) }) },
    { weight: 1, arbitrary: fc.record({ id: strangerUuid([id]), body: validForStranger.map(json) }) },
  );
}

// ---------------------------------------------------------------------------------------------
// Valid edges: input the limits allow but that is unusual
// ---------------------------------------------------------------------------------------------

/** Code points that are legal in text and JSON but unusual: controls, separators, BOM, quotes. */
const OTHER_AWKWARD = ["\u0001", "\u001f", "\u007f", "\u0085", "\u2028", "\ufeff", "\uffff", "a", "é", "😀", "\\", "\"", "'", "%", "{}"];

/** Descriptions and tags within the limits; `special` are the only NUL or unpaired surrogates in them. */
function textWith(special: string[]) {
  const clean = (t: string) => !t.includes("\u0000") && !/\p{Surrogate}/u.test(t);
  const text = (maxLength: number) => fc.oneof(
    fc.string({ unit: fc.constantFrom(...special, ...OTHER_AWKWARD), maxLength }),
    fc.string({ unit: "binary", maxLength }).filter(clean),
  );
  return fc.record(
    { description: text(200), tags: fc.array(text(20).filter((t) => t.length >= 1), { maxLength: 3 }) },
    { requiredKeys: [] },
  ).filter((b) => Object.keys(b).length > 0);
}

export const ordinaryText = textWith([]);
export const nulText = textWith(["\u0000"]);
export const loneSurrogateText = textWith(["\ud800", "\udbff", "\udc00", "\udfff"]);

/** A future `expiresAt` written with any offset the ISO check lets through (±00:00 to ±23:59). */
export const anyOffsetExpiry = fc.tuple(futureDate, fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 })).map(([d, minutes]) => {
  const local = new Date(d.getTime() + minutes * 60_000).toISOString().slice(0, 19);
  const abs = Math.abs(minutes);
  const expiresAt = `${local}${minutes < 0 ? "-" : "+"}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
  return { expiresAt };
});
