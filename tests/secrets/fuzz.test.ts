/**
 * Property-based fuzzing of every write route with input it must turn away: 1,000 generated
 * bodies or path parameters per route. Each must get a 4xx in the error envelope, must not
 * echo a value, and must leave the database exactly as it was (the route's secret, its
 * versions, grants and audit rows; for create, the owner's row counts).
 *
 * The inputs are invalid by construction (a valid base with at least one broken part, or
 * something that is not a body at all), and each is checked once more against an oracle
 * written from the documented limits, not imported from the app's zod schemas: a schema that
 * accepts too much makes these tests fail instead of silently agreeing with itself. The oracle
 * judges what the server will actually see (the JSON after a round trip, `{}` for a body the
 * JSON validator ignores) and errs on the side of "could be valid"; anything it cannot rule
 * out is discarded rather than sent.
 */
import fc, { type Arbitrary } from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, type Harness, type Reply, snapshot, type TestUser } from "../helpers/harness.ts";

const RUNS = 1000;
const TIMEOUT = 180_000;

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h?.close();
});

// ---------------------------------------------------------------------------------------------
// The documented limits, as an oracle: "could this be accepted?"
// ---------------------------------------------------------------------------------------------

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;
/** Looser than RFC 9562 on purpose: anything shaped like a uuid counts as "could be valid". */
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$/i;
const TYPES = ["api_key", "database_url", "jwt_secret", "custom"];
const LEVELS = ["use", "read", "write", "admin"];
const MAX_INT = 2_147_483_647;
const MAX_VALUE_BYTES = 64 * 1024;
const MAX_BODY_BYTES = 128 * 1024;

const utf8Bytes = (s: string) => new TextEncoder().encode(s).byteLength;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const has = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

function calendarValid(y: number, mo: number, d: number, hh: number, mi: number, ss: number) {
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  return mo >= 1 && mo <= 12 && d >= 1 && d <= days[mo - 1] && hh <= 23 && mi <= 59 && ss <= 59;
}

const spec = {
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
};

type Check = (v: unknown) => boolean;
/** Every key known and valid, and the required ones present. */
function fieldsOk(b: unknown, allowed: Record<string, Check>, required: string[] = []): boolean {
  if (!isObj(b)) return false;
  return required.every((k) => has(b, k)) && Object.keys(b).every((k) => has(allowed, k) && allowed[k](b[k]));
}

const CREATE_FIELDS = { name: spec.name, value: spec.value, secretType: spec.secretType, description: spec.description, tags: spec.tags, expiresAt: spec.expiresAt };
const PATCH_FIELDS = { name: spec.name, secretType: spec.secretType, description: spec.description, tags: spec.tags, expiresAt: spec.expiresAt, isActive: spec.isActive };

/** ownerId is for the service role only, so any body naming it is invalid for a user. */
const createOk = (b: unknown) => fieldsOk(b, CREATE_FIELDS, ["name", "value"]);
const patchOk = (b: unknown) => isObj(b) && Object.keys(b).length > 0 && fieldsOk(b, PATCH_FIELDS);
const putValueOk = (b: unknown) => fieldsOk(b, { value: spec.value, expectedVersion: spec.expectedVersion }, ["value"]);
const rollbackBodyOk = (b: unknown) => fieldsOk(b, { expectedVersion: spec.expectedVersion });
const grantOk = (b: unknown) =>
  isObj(b) && Object.keys(b).length === 2 && spec.permission(b.permission) &&
  ((has(b, "userId") && spec.uuid(b.userId)) || (has(b, "email") && spec.email(b.email)));
/** z.coerce.number() semantics: anything Number() turns into a version in range could be one. */
const versionSegmentOk = (s: string) => {
  const n = Number(s);
  return Number.isInteger(n) && n >= 1 && n <= MAX_INT;
};

// ---------------------------------------------------------------------------------------------
// Payloads, and what the server sees of them
// ---------------------------------------------------------------------------------------------

type Payload =
  | { kind: "none" }
  | { kind: "json"; value: unknown }
  | { kind: "raw"; text: string; contentType: string };

const JSON_TYPES = ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "application/json;charset=UTF-8"];
const OTHER_TYPES = ["text/plain", "application/x-www-form-urlencoded", "application/xml", "application/octet-stream"];

const none: Payload = { kind: "none" };
const json = (value: unknown): Payload => ({ kind: "json", value });
const raw = (text: string, contentType: string): Payload => ({ kind: "raw", text, contentType });

const MALFORMED = Symbol("malformed JSON");
const TOO_LARGE = Symbol("over the body limit");

/** The body the JSON validator hands to zod: no body or a non-JSON type is `{}`. */
function wireOf(p: Payload): unknown {
  if (p.kind === "none") return {};
  const text = p.kind === "json" ? JSON.stringify(p.value) : p.text;
  if (text === undefined) return {}; // JSON.stringify(undefined): nothing is sent
  if (utf8Bytes(text) > MAX_BODY_BYTES) return TOO_LARGE;
  if (p.kind === "raw" && !JSON_TYPES.includes(p.contentType)) return {};
  // What Request.text() yields: UTF-8 round trip (lone surrogates become U+FFFD), BOM dropped.
  const seen = new TextDecoder().decode(new TextEncoder().encode(text));
  try {
    return JSON.parse(seen);
  } catch {
    return MALFORMED;
  }
}

function send(method: string, path: string, token: string, p: Payload, headers: Record<string, string> = {}) {
  if (p.kind === "none" || (p.kind === "json" && p.value === undefined)) return h.request(method, path, { token, headers });
  if (p.kind === "json") return h.request(method, path, { token, body: p.value, headers });
  return h.request(method, path, { token, rawBody: p.text, headers: { ...headers, "content-type": p.contentType } });
}

/** String values a body carries under "value", which no response may echo. */
function valuesIn(p: Payload): string[] {
  const w = wireOf(p);
  return isObj(w) && typeof w.value === "string" && w.value.length >= 16 ? [w.value] : [];
}

// ---------------------------------------------------------------------------------------------
// Generators
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

const anyJson = fc.jsonValue({ maxDepth: 2 });
/** JSON values of every type; callers filter out the right one. */
const wrongType: Arbitrary<unknown> = fc.oneof(
  fc.constant(null), fc.boolean(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 10 }), fc.array(anyJson, { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), anyJson, { maxKeys: 3 }),
);
const notA = (check: Check) => (v: unknown) => !check(JSON.parse(JSON.stringify(v) ?? "null"));

const validName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.-]{0,40}$/);
const validValue = fc.uuid().map((u) => `fuzz-value-${u}`);
const validType = fc.constantFrom(...TYPES);
const validDescription = fc.string({ maxLength: 80 });
const validTag = fc.string({ minLength: 1, maxLength: 64 });
const validTags = fc.array(validTag, { maxLength: 5 });
const futureDate = fc.date({ min: new Date(Date.now() + 86_400_000), max: new Date("2999-12-31T00:00:00Z"), noInvalidDate: true });
const validExpiresAt = fc.oneof(fc.constant(null), futureDate.map((d) => d.toISOString()));

const SQLISH = ["x'; drop table secrets;--", "' OR '1'='1", "Robert'); DROP TABLE public.secrets;--", "1; select pg_sleep(1)", "$$; drop table secrets; $$"];

const badName = fc.oneof(
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
const badValue = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom(...BIG_VALUES) },
  { weight: 3, arbitrary: fc.constant("") },
  { weight: 8, arbitrary: wrongType.filter((v) => typeof v !== "string") },
);

const badType = fc.oneof(
  fc.constantFrom("", "API_KEY", "Api_Key", "api-key", "apikey", "owner", "secret", " custom", "custom ", "custom\u0000", "password", ...SQLISH),
  fc.string({ maxLength: 20 }),
  wrongType,
).filter(notA(spec.secretType));

const badDescription = fc.oneof(
  fc.constantFrom("x".repeat(1001), "é".repeat(1001), "\u0000".repeat(1001)),
  fc.string({ minLength: 1001, maxLength: 1100 }),
  wrongType.filter((v) => typeof v !== "string"),
).filter(notA(spec.description));

const badTag = fc.oneof(
  fc.constant(""), fc.constant("t".repeat(65)), fc.string({ minLength: 65, maxLength: 100 }),
  wrongType.filter((v) => typeof v !== "string"),
);
const badTags = fc.oneof(
  fc.array(validTag, { minLength: 21, maxLength: 30 }),
  fc.tuple(fc.array(validTag, { maxLength: 5 }), badTag, fc.nat()).map(([ts, t, i]) => {
    const out: unknown[] = [...ts];
    out.splice(i % (ts.length + 1), 0, t);
    return out;
  }),
  fc.constantFrom("tag", "a,b", "{a,b}", { 0: "a", length: 1 }),
  wrongType.filter((v) => !Array.isArray(v)),
).filter(notA(spec.tags));

const OFFSETS: [string, number][] = [["Z", 0], ["+00:00", 0], ["+05:30", 330], ["-08:00", -480], ["+14:00", 840]];
const pastDate = fc.date({ min: new Date("0001-01-02T00:00:00Z"), max: new Date(Date.now() - 3_600_000), noInvalidDate: true });
const badExpiresAt = fc.oneof(
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

const badExpectedVersion = fc.oneof(
  fc.integer({ max: -1 }), fc.constantFrom(-0.5, 1.5, 2 ** 31, 2 ** 53, 1e300, "1", "2", "0", "", "latest"),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
  fc.bigInt({ min: 2n ** 31n, max: 10n ** 20n }).map((n) => Number(n)),
  wrongType,
).filter(notA(spec.expectedVersion));

const badPermission = fc.oneof(
  fc.constantFrom("owner", "READ", "Read", " read", "read ", "none", "", "all", "*", "admin;--", "write,admin", ...SQLISH),
  fc.string({ maxLength: 12 }),
  wrongType,
).filter(notA(spec.permission));

const badEmail = fc.oneof(
  fc.constantFrom("", "@", "a@", "@example.com", "no-at-sign", "two@@example.com", "a b@example.com", `${"a".repeat(250)}@example.com`, ...SQLISH),
  fc.string({ maxLength: 40 }),
  wrongType,
).filter(notA(spec.email));

const badUuidValue = fc.oneof(
  fc.constantFrom("", "null", "0", "not-a-uuid", "00000000-0000-0000-0000-00000000000g", ...SQLISH),
  fc.uuid().map((u) => u.replace(/-/g, "")),
  fc.uuid().map((u) => `{${u}}`),
  fc.uuid().chain((u) => fc.nat(35).map((n) => u.slice(0, n))),
  fc.string({ maxLength: 40 }),
  wrongType,
).filter(notA(spec.uuid));

const COMMON_UNKNOWN = [
  "__proto__", "constructor", "prototype", "toString", "id", "userId", "user_id", "ownerId", "owner_id", "isActive",
  "is_active", "Name", "NAME", " name", "value ", "currentVersion", "current_version", "deletedAt", "permission", "expectedVersion",
  "email", "role", "",
];
const unknownField = (known: string[]): Arbitrary<Mutation> =>
  fc.tuple(fc.oneof(fc.constantFrom(...COMMON_UNKNOWN), fc.string({ maxLength: 20 })).filter((k) => !known.includes(k)), anyJson)
    .map(([set, to]) => ({ set, to }));

const malformedJson = fc.oneof(
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
function payloads(invalid: Arbitrary<unknown>, valid: Arbitrary<unknown>): Arbitrary<Payload> {
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

// Path segments. Dot segments are resolved by the URL parser before a request leaves, so they
// never reach the app as a parameter; they are left out.
const DOT_SEGMENTS = new Set([".", "..", "%2e", "%2e%2e", ".%2e", "%2e."]);
const tryDecode = (seg: string) => {
  try {
    return decodeURIComponent(seg);
  } catch {
    return seg;
  }
};
const seg = (s: string) => encodeURIComponent(s);

/** Segments that are not a uuid at all, some of them near misses of `near`. */
function badUuidSegment(near: string): Arbitrary<string> {
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
  ).filter((s) => !DOT_SEGMENTS.has(s.toLowerCase()) && !UUID_RE.test(tryDecode(s)));
}

/** Well-formed uuids that name nothing here (the request is about some other, absent, row). */
function strangerUuid(avoid: string[]): Arbitrary<string> {
  const lower = avoid.map((a) => a.toLowerCase());
  return fc.oneof(
    fc.uuid(),
    fc.uuid().map((u) => u.toUpperCase()),
    fc.constantFrom("00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff", "12345678-1234-1234-1234-123456789012"),
  ).filter((u) => !lower.includes(u.toLowerCase()));
}

const badVersionSegment = fc.oneof(
  fc.constantFrom(
    "0", "-1", "-0", "00", "0.0", "1.5", "2.0000001", "NaN", "Infinity", "-Infinity", "1e309", "2147483648", "4294967296",
    "9007199254740993", "99999999999999999999999", "1e10", "abc", "one", "true", "null", "[1]", "1_000", "1,000", "½",
    "١", "１", "v1", "1'; drop table secrets;--", "1 OR 1=1",
  ).map(seg),
  fc.integer({ max: 0 }).map(String),
  fc.bigInt({ min: 2n ** 31n, max: 10n ** 30n }).map(String),
  fc.double().map((d) => seg(String(d))),
  fc.string({ unit: "binary", maxLength: 20 }).map(seg),
).filter((s) => !DOT_SEGMENTS.has(s.toLowerCase()) && !versionSegmentOk(tryDecode(s)));

// ---------------------------------------------------------------------------------------------
// Fixtures and the check every run makes
// ---------------------------------------------------------------------------------------------

interface Fixture {
  owner: TestUser;
  id: string;
  name: string;
  value: string;
  grantee: TestUser;
}

async function fixture(opts: { deleted?: boolean; secondVersion?: boolean } = {}): Promise<Fixture> {
  const owner = await h.user("fuzz-owner");
  const grantee = await h.user("fuzz-grantee");
  const secret = await h.createSecret(owner, { description: "fuzz target", tags: ["fuzz", "target"] });
  await h.grant(owner, secret.id, grantee, "read");
  let value = secret.value;
  if (opts.secondVersion) {
    value = `fuzz-second-${crypto.randomUUID()}`;
    h.remember(value);
    const res = await h.request("PUT", `/${secret.id}/value`, { token: owner.token, body: { value } });
    expect(res.status).toBe(200);
  }
  if (opts.deleted) expect((await h.request("DELETE", `/${secret.id}`, { token: owner.token })).status).toBe(200);
  return { owner, id: secret.id, name: secret.name, value, grantee };
}

/** Everything about the secret a rejected call must leave alone, audit rows included. */
async function stateOf(f: Fixture) {
  const [audit] = await h.db.query<{ n: number }>(
    `select count(*)::int as n from public.secret_access_logs where secret_id = $1::uuid`, [f.id]);
  return `${await snapshot(h.db, f.id)} audit=${audit.n}`;
}

/** The owner's footprint, for create: rows it owns, their versions, audit rows naming it. */
async function ownerState(owner: TestUser) {
  const [row] = await h.db.query(
    `select (select count(*)::int from public.secrets where user_id = $1::uuid) as secrets,
            (select count(*)::int from public.secret_versions v join public.secrets s on s.id = v.secret_id
              where s.user_id = $1::uuid) as versions,
            (select count(*)::int from public.secret_access_logs where owner_id = $1::uuid or actor_id = $1::uuid) as audit`,
    [owner.id],
  );
  return JSON.stringify(row);
}

/** A 4xx in the error envelope that echoes no value. */
function expectRejection(res: Reply, secrets: string[]) {
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

/**
 * Runs `numRuns` inputs: each is sent, must be rejected, and the state must equal the
 * state before the first run (so a change by any run is caught by the next check too).
 */
async function fuzz<T>(opts: {
  arb: Arbitrary<T>;
  couldSucceed: (input: T) => boolean;
  call: (input: T) => Promise<Reply>;
  state: () => Promise<string>;
  secrets: (input: T) => string[];
}) {
  const baseline = await opts.state();
  let sent = 0;
  await fc.assert(
    fc.asyncProperty(opts.arb.filter((i) => !opts.couldSucceed(i)), async (input) => {
      sent++;
      const res = await opts.call(input);
      expectRejection(res, opts.secrets(input));
      expect(await opts.state(), `database changed after ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`).toBe(baseline);
    }),
    { numRuns: RUNS },
  );
  expect(sent).toBeGreaterThanOrEqual(RUNS);
}

const idOk = (f: Fixture, segment: string) => tryDecode(segment).toLowerCase() === f.id.toLowerCase();

// ---------------------------------------------------------------------------------------------
// The routes
// ---------------------------------------------------------------------------------------------

describe("fuzzing the write routes with invalid input: 4xx, the error envelope, no change", () => {
  it("POST /secrets (create)", async () => {
    const f = await fixture();
    const base = fc.record(
      { name: validName, value: validValue, secretType: validType, description: validDescription, tags: validTags, expiresAt: validExpiresAt },
      { requiredKeys: ["name", "value"] },
    );
    const invalid = fc.oneof(
      { weight: 12, arbitrary: broken(base, fc.oneof(
        setTo("name", badName), setTo("value", badValue), setTo("secretType", badType), setTo("description", badDescription),
        setTo("tags", badTags), setTo("expiresAt", badExpiresAt), drop("name", "value"),
        setTo("ownerId", fc.oneof(badUuidValue, fc.uuid(), fc.constant(f.owner.id))), // service role only
        unknownField(Object.keys(CREATE_FIELDS)),
      )) },
      { weight: 1, arbitrary: fc.constantFrom({}, [], null, 0, "", "name=x&value=y", [{ name: "X", value: "abcdefgh" }]) },
    );
    await fuzz({
      arb: payloads(invalid, base),
      couldSucceed: (p) => createOk(wireOf(p)),
      call: (p) => send("POST", "", f.owner.token, p),
      state: async () => `${await ownerState(f.owner)} ${await stateOf(f)}`,
      secrets: (p) => [f.value, ...valuesIn(p)],
    });
  }, TIMEOUT);

  it("PATCH /secrets/:id", async () => {
    const f = await fixture();
    const base = fc.record(
      { name: validName, secretType: validType, description: validDescription, tags: validTags, expiresAt: validExpiresAt, isActive: fc.boolean() },
      { requiredKeys: [] },
    );
    const invalid = fc.oneof(
      { weight: 12, arbitrary: broken(base, fc.oneof(
        setTo("name", badName), setTo("secretType", badType), setTo("description", badDescription), setTo("tags", badTags),
        setTo("expiresAt", badExpiresAt), setTo("isActive", wrongType.filter(notA(spec.isActive))),
        setTo("value", fc.oneof(validValue, badValue)), // values are not metadata
        unknownField(Object.keys(PATCH_FIELDS)),
      )) },
      { weight: 1, arbitrary: fc.constantFrom({}, [], null, 0, "", true, [{ description: "x" }]) },
    );
    const input = fc.oneof(
      { weight: 8, arbitrary: fc.record({ id: fc.constant(f.id), body: payloads(invalid, base) }) },
      { weight: 3, arbitrary: fc.record({ id: badUuidSegment(f.id), body: fc.oneof(payloads(invalid, base), base.map(json)) }) },
      { weight: 1, arbitrary: fc.record({ id: strangerUuid([f.id]), body: base.filter(patchOk).map(json) }) },
    );
    await fuzz({
      arb: input,
      couldSucceed: ({ id, body }) => idOk(f, id) && patchOk(wireOf(body)),
      call: ({ id, body }) => send("PATCH", `/${id}`, f.owner.token, body),
      state: () => stateOf(f),
      secrets: ({ body }) => [f.value, ...valuesIn(body)],
    });
  }, TIMEOUT);

  it("PUT /secrets/:id/value", async () => {
    const f = await fixture();
    const base = fc.record({ value: validValue, expectedVersion: fc.constantFrom(0, 1, 2, MAX_INT) }, { requiredKeys: ["value"] });
    const invalid = fc.oneof(
      { weight: 12, arbitrary: broken(base, fc.oneof(
        { weight: 3, arbitrary: setTo("value", badValue) }, drop("value"), setTo("expectedVersion", badExpectedVersion),
        unknownField(["value", "expectedVersion"]),
      )) },
      { weight: 1, arbitrary: fc.constantFrom({}, [], null, 0, "", "fuzz-value-as-a-bare-string", [{ value: "abcdefgh" }]) },
    );
    // If-Match that is not an ETag this API returns (`"3"` or `W/"3"`), with an otherwise valid body.
    const badIfMatch = fc.oneof(
      fc.constantFrom("1", "W/1", "\"1", "1\"", "'1'", "\"-1\"", "\"1.5\"", "\"abc\"", "*", "\"\"", "W/\"\"", "\"99999999999\"", "w/\"1\"", "\"1\", \"2\""),
      fc.string({ unit: "grapheme-ascii", maxLength: 20 }),
    ).filter((v) => !/^(?:W\/)?"\d{1,10}"$/.test(v.trim()));
    const input = fc.oneof(
      { weight: 8, arbitrary: fc.record({ id: fc.constant(f.id), body: payloads(invalid, base), ifMatch: fc.constant(undefined as string | undefined) }) },
      { weight: 2, arbitrary: fc.record({ id: fc.constant(f.id), body: base.map(json), ifMatch: badIfMatch.map((v): string | undefined => v) }) },
      { weight: 3, arbitrary: fc.record({ id: badUuidSegment(f.id), body: fc.oneof(payloads(invalid, base), base.map(json)), ifMatch: fc.constant(undefined) }) },
      { weight: 1, arbitrary: fc.record({ id: strangerUuid([f.id]), body: base.map(json), ifMatch: fc.constant(undefined) }) },
    );
    await fuzz({
      arb: input,
      couldSucceed: ({ id, body, ifMatch }) =>
        idOk(f, id) && putValueOk(wireOf(body)) && (ifMatch === undefined || /^(?:W\/)?"\d{1,10}"$/.test(ifMatch.trim())),
      call: ({ id, body, ifMatch }) => send("PUT", `/${id}/value`, f.owner.token, body, ifMatch === undefined ? {} : { "if-match": ifMatch }),
      state: () => stateOf(f),
      secrets: ({ body }) => [f.value, ...valuesIn(body)],
    });
  }, TIMEOUT);

  it("POST /secrets/:id/versions/:n/restore", async () => {
    const f = await fixture({ secondVersion: true });
    const base = fc.record({ expectedVersion: fc.constantFrom(0, 1, 2, 3) }, { requiredKeys: [] });
    const invalid = fc.oneof(
      { weight: 12, arbitrary: broken(base, fc.oneof(setTo("expectedVersion", badExpectedVersion), unknownField(["expectedVersion"]))) },
      { weight: 2, arbitrary: fc.constantFrom(null, [], 0, 2, "", "2", true, [{ expectedVersion: 2 }]) },
    );
    const goodN = fc.constantFrom("1", "2");
    const anyBody = fc.oneof(payloads(invalid, base), base.map(json), fc.constant(none));
    const input = fc.oneof(
      { weight: 6, arbitrary: fc.record({ id: fc.constant(f.id), n: goodN, body: payloads(invalid, base) }) },
      { weight: 4, arbitrary: fc.record({ id: fc.constant(f.id), n: badVersionSegment, body: anyBody }) },
      { weight: 3, arbitrary: fc.record({ id: badUuidSegment(f.id), n: fc.oneof(goodN, badVersionSegment), body: anyBody }) },
      { weight: 1, arbitrary: fc.record({ id: strangerUuid([f.id]), n: goodN, body: fc.oneof(base.map(json), fc.constant(none)) }) },
    );
    await fuzz({
      arb: input,
      couldSucceed: ({ id, n, body }) => idOk(f, id) && versionSegmentOk(tryDecode(n)) && rollbackBodyOk(wireOf(body)),
      call: ({ id, n, body }) => send("POST", `/${id}/versions/${n}/restore`, f.owner.token, body),
      state: () => stateOf(f),
      secrets: () => [f.value],
    });
  }, TIMEOUT);

  it("PUT /secrets/:id/permissions", async () => {
    const f = await fixture();
    const other = await h.user("fuzz-other");
    const validGrant = fc.oneof(
      fc.record({ userId: fc.constantFrom(f.grantee.id, other.id), permission: fc.constantFrom(...LEVELS) }),
      fc.record({ email: fc.constantFrom(f.grantee.email, other.email), permission: fc.constantFrom(...LEVELS) }),
    );
    const invalid = fc.oneof(
      { weight: 12, arbitrary: broken(validGrant, fc.oneof(
        { weight: 3, arbitrary: setTo("permission", badPermission) }, setTo("userId", badUuidValue), setTo("email", badEmail),
        setTo("userId", fc.constant(other.id)), setTo("email", fc.constant(other.email)), // both identifiers at once
        drop("permission"), drop("userId", "email"), unknownField(["userId", "email", "permission"]),
      )) },
      { weight: 1, arbitrary: fc.constantFrom({}, [], null, 0, "", "read", [{ userId: other.id, permission: "read" }]) },
    );
    const input = fc.oneof(
      { weight: 8, arbitrary: fc.record({ id: fc.constant(f.id), body: payloads(invalid, validGrant) }) },
      { weight: 3, arbitrary: fc.record({ id: badUuidSegment(f.id), body: fc.oneof(payloads(invalid, validGrant), validGrant.map(json)) }) },
      { weight: 1, arbitrary: fc.record({ id: strangerUuid([f.id]), body: validGrant.map(json) }) },
    );
    await fuzz({
      arb: input,
      couldSucceed: ({ id, body }) => idOk(f, id) && grantOk(wireOf(body)),
      call: ({ id, body }) => send("PUT", `/${id}/permissions`, f.owner.token, body),
      state: () => stateOf(f),
      secrets: () => [f.value],
    });
  }, TIMEOUT);

  it("DELETE /secrets/:id/permissions/:userId", async () => {
    const f = await fixture();
    const junk = fc.oneof(fc.constant(none), fc.anything().map(json), malformedJson.map((t) => raw(t, "application/json")));
    const input = fc.oneof(
      { weight: 5, arbitrary: fc.record({ id: fc.constant(f.id), userId: badUuidSegment(f.grantee.id), body: junk }) },
      { weight: 3, arbitrary: fc.record({ id: badUuidSegment(f.id), userId: fc.oneof(fc.constant(f.grantee.id), badUuidSegment(f.grantee.id)), body: junk }) },
      { weight: 1, arbitrary: fc.record({ id: fc.constant(f.id), userId: strangerUuid([f.grantee.id]), body: junk }) },
      { weight: 1, arbitrary: fc.record({ id: strangerUuid([f.id]), userId: fc.constant(f.grantee.id), body: junk }) },
    );
    await fuzz({
      arb: input,
      couldSucceed: ({ id, userId }) => idOk(f, id) && tryDecode(userId).toLowerCase() === f.grantee.id.toLowerCase(),
      call: ({ id, userId, body }) => send("DELETE", `/${id}/permissions/${userId}`, f.owner.token, body),
      state: () => stateOf(f),
      secrets: () => [f.value],
    });
  }, TIMEOUT);

  it("DELETE /secrets/:id", async () => {
    const f = await fixture();
    const junk = fc.oneof(fc.constant(none), fc.anything().map(json), malformedJson.map((t) => raw(t, "application/json")));
    const input = fc.record({ id: fc.oneof({ weight: 6, arbitrary: badUuidSegment(f.id) }, { weight: 1, arbitrary: strangerUuid([f.id]) }), body: junk });
    await fuzz({
      arb: input,
      couldSucceed: ({ id }) => idOk(f, id),
      call: ({ id, body }) => send("DELETE", `/${id}`, f.owner.token, body),
      state: () => stateOf(f),
      secrets: () => [f.value],
    });
  }, TIMEOUT);

  it("POST /secrets/:id/restore", async () => {
    const f = await fixture({ deleted: true });
    const junk = fc.oneof(fc.constant(none), fc.anything().map(json), malformedJson.map((t) => raw(t, "application/json")));
    const input = fc.record({ id: fc.oneof({ weight: 6, arbitrary: badUuidSegment(f.id) }, { weight: 1, arbitrary: strangerUuid([f.id]) }), body: junk });
    await fuzz({
      arb: input,
      couldSucceed: ({ id }) => idOk(f, id),
      call: ({ id, body }) => send("POST", `/${id}/restore`, f.owner.token, body),
      state: () => stateOf(f),
      secrets: () => [f.value],
    });
  }, TIMEOUT);
});

describe("the checks above can fail", () => {
  it("a valid PATCH body changes the row, and the rejection check then fails", async () => {
    const f = await fixture();
    const before = await stateOf(f);
    const body = { description: "changed by the sanity check", tags: ["sane"] };
    expect(patchOk(wireOf(json(body)))).toBe(true); // the oracle would have discarded it
    const res = await send("PATCH", `/${f.id}`, f.owner.token, json(body));
    expect(res.status).toBe(200);
    expect(await stateOf(f)).not.toBe(before);
    expect(() => expectRejection(res, [])).toThrow();
  });

  it("a valid create adds a row for the owner", async () => {
    const f = await fixture();
    const before = await ownerState(f.owner);
    const value = `fuzz-sanity-${crypto.randomUUID()}`;
    h.remember(value);
    const res = await send("POST", "", f.owner.token, json({ name: "Sanity_1", value }));
    expect(res.status).toBe(201);
    expect(await ownerState(f.owner)).not.toBe(before);
  });

  it("the oracle rejects samples of every broken-by-design generator", () => {
    for (const [label, arb, check] of [
      ["name", badName, spec.name], ["value", badValue, spec.value], ["secretType", badType, spec.secretType],
      ["description", badDescription, spec.description], ["tags", badTags, spec.tags], ["expiresAt", badExpiresAt, spec.expiresAt],
      ["expectedVersion", badExpectedVersion, spec.expectedVersion], ["permission", badPermission, spec.permission],
      ["email", badEmail, spec.email], ["uuid", badUuidValue, spec.uuid],
    ] as [string, Arbitrary<unknown>, Check][]) {
      for (const v of fc.sample(arb, 200)) expect(check(JSON.parse(JSON.stringify(v))), `${label}: ${JSON.stringify(v)?.slice(0, 80)}`).toBe(false);
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
  /** Code points that are legal in text and JSON but unusual: controls, separators, BOM, quotes. */
  const OTHER_AWKWARD = ["\u0001", "\u001f", "\u007f", "\u0085", "\u2028", "\ufeff", "\uffff", "a", "é", "😀", "\\", "\"", "'", "%", "{}"];
  /** Descriptions and tags within the limits; `special` are the only NUL or unpaired surrogates in them. */
  const textWith = (special: string[]) => {
    const clean = (t: string) => !t.includes("\u0000") && !/\p{Surrogate}/u.test(t);
    const text = (maxLength: number) => fc.oneof(
      fc.string({ unit: fc.constantFrom(...special, ...OTHER_AWKWARD), maxLength }),
      fc.string({ unit: "binary", maxLength }).filter(clean),
    );
    return fc.record(
      { description: text(200), tags: fc.array(text(20).filter((t) => t.length >= 1), { maxLength: 3 }) },
      { requiredKeys: [] },
    ).filter((b) => Object.keys(b).length > 0);
  };
  const ordinaryText = textWith([]);
  const nulText = textWith(["\u0000"]);
  const loneSurrogateText = textWith(["\ud800", "\udbff", "\udc00", "\udfff"]);
  /** A future instant written with any offset the ISO check lets through. */
  const anyOffsetFuture = fc.tuple(futureDate, fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 })).map(([d, minutes]) => {
    const local = new Date(d.getTime() + minutes * 60_000).toISOString().slice(0, 19);
    const abs = Math.abs(minutes);
    return `${local}${minutes < 0 ? "-" : "+"}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
  });

  async function expectNo5xx(res: Reply, before: string, after: () => Promise<string>) {
    const info = `${res.status} ${JSON.stringify(res.body).slice(0, 300)}`;
    expect(res.status, info).toBeLessThan(500);
    if (res.status >= 400) {
      expectRejection(res, []);
      expect(await after()).toBe(before);
    }
  }

  let n = 0;
  async function createProperty(extra: Arbitrary<Record<string, unknown>>) {
    const f = await fixture();
    const value = `fuzz-edge-value-${crypto.randomUUID()}`;
    h.remember(value);
    await fc.assert(fc.asyncProperty(extra, async (fields) => {
      const body = { name: `Edge_${++n}`, value, ...fields };
      expect(createOk(wireOf(json(body)))).toBe(true);
      const before = await ownerState(f.owner);
      const res = await send("POST", "", f.owner.token, json(body));
      await expectNo5xx(res, before, () => ownerState(f.owner));
    }), { numRuns: EDGE_RUNS });
  }

  async function patchProperty(patch: Arbitrary<Record<string, unknown>>) {
    const f = await fixture();
    await fc.assert(fc.asyncProperty(patch, async (body) => {
      expect(patchOk(wireOf(json(body)))).toBe(true);
      const before = await stateOf(f);
      const res = await send("PATCH", `/${f.id}`, f.owner.token, json(body));
      await expectNo5xx(res, before, () => stateOf(f));
    }), { numRuns: EDGE_RUNS });
  }

  it("POST /secrets with control characters and any other Unicode in description and tags", () => createProperty(ordinaryText), TIMEOUT);
  it("PATCH /secrets/:id with control characters and any other Unicode in description and tags", () => patchProperty(ordinaryText), TIMEOUT);
  it("POST /secrets with U+0000 in description or tags", () => createProperty(nulText), TIMEOUT);
  it("PATCH /secrets/:id with U+0000 in description or tags", () => patchProperty(nulText), TIMEOUT);
  it("POST /secrets with unpaired surrogates in description or tags", () => createProperty(loneSurrogateText), TIMEOUT);
  it("PATCH /secrets/:id with unpaired surrogates in description or tags", () => patchProperty(loneSurrogateText), TIMEOUT);
  it("POST /secrets with expiresAt at any offset", () => createProperty(anyOffsetFuture.map((expiresAt) => ({ expiresAt }))), TIMEOUT);
  it("PATCH /secrets/:id with expiresAt at any offset", () => patchProperty(anyOffsetFuture.map((expiresAt) => ({ expiresAt }))), TIMEOUT);
});
