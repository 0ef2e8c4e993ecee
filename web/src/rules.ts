/**
 * The server's input rules, checked in the browser as the user types (the server checks them
 * again; this only spares a round trip and says what is wrong next to the field). Plain
 * functions, no zod, to keep the bundle small; tests/web/rules.test.ts checks each verdict
 * against the server's own zod schemas (shared/secrets/secret-schemas.ts) on generated input.
 */

export const SECRET_TYPES = ["api_key", "database_url", "jwt_secret", "custom"] as const;
export type SecretType = (typeof SECRET_TYPES)[number];

export const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;
export const MAX_VALUE_BYTES = 64 * 1024;
export const MAX_DESCRIPTION = 1000;
export const MAX_TAGS = 20;
export const MAX_TAG = 64;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const storable = (s: string) => !s.includes("\u0000") && !LONE_SURROGATE.test(s);
const utf8Length = (s: string) => new TextEncoder().encode(s).byteLength;

/** A message when the field breaks a rule, else null. */
export type Rule<T> = (value: T) => string | null;

export const checkName: Rule<string> = (name) => {
  if (name.length === 0) return "A name is required.";
  if (name.length > 128) return "At most 128 characters.";
  if (!NAME_PATTERN.test(name)) return "Start with a letter or _, then letters, digits, _ . - only.";
  return null;
};

export const checkValue: Rule<string> = (value) => {
  if (value.length === 0) return "A value is required.";
  if (LONE_SURROGATE.test(value)) return "The value must be well-formed Unicode.";
  const bytes = utf8Length(value);
  if (bytes > MAX_VALUE_BYTES) return `At most ${MAX_VALUE_BYTES} bytes of UTF-8 (this is ${bytes}).`;
  return null;
};

export const checkDescription: Rule<string> = (text) => {
  if (!storable(text)) return "Only well-formed text, without NUL characters.";
  if (text.length > MAX_DESCRIPTION) return `At most ${MAX_DESCRIPTION} characters (this is ${text.length}).`;
  return null;
};

/** Tags as typed: separated by commas; blanks around each and repeats are dropped. */
export const parseTags = (text: string): string[] =>
  [...new Set(text.split(",").map((t) => t.trim()).filter((t) => t.length > 0))];

export const checkTags: Rule<string[]> = (tags) => {
  if (tags.length > MAX_TAGS) return `At most ${MAX_TAGS} tags.`;
  const long = tags.find((t) => t.length > MAX_TAG);
  if (long !== undefined) return `Each tag at most ${MAX_TAG} characters.`;
  if (!tags.every(storable)) return "Only well-formed text, without NUL characters.";
  return null;
};

/** `expiresAt` as an ISO timestamp, or "" for none; it must lie in the future. */
export const checkExpiresAt = (iso: string, now: Date = new Date()): string | null => {
  if (iso === "") return null;
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return "Not a date and time.";
  if (at <= now) return "Must be in the future.";
  return null;
};

/** A `<input type="datetime-local">` value (local time) as an ISO timestamp, or "" when empty. */
export const localToIso = (local: string): string => {
  if (local === "") return "";
  const at = new Date(local);
  return Number.isNaN(at.getTime()) ? "invalid" : at.toISOString();
};

/** An ISO timestamp as a `datetime-local` value in the browser's zone. */
export const isoToLocal = (iso: string | null): string => {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
};

export interface SecretFields {
  name: string;
  value: string;
  secretType: SecretType;
  description: string;
  tags: string;
  /** `datetime-local`, or "". */
  expiresAt: string;
}

export type FieldErrors = Partial<Record<keyof SecretFields, string>>;

/** Every field's problem; `withValue` false for an edit, which does not change the value. */
export function checkSecretFields(f: SecretFields, withValue: boolean, now = new Date()): FieldErrors {
  const errors: FieldErrors = {};
  const put = (key: keyof SecretFields, message: string | null) => {
    if (message) errors[key] = message;
  };
  put("name", checkName(f.name));
  if (withValue) put("value", checkValue(f.value));
  put("description", checkDescription(f.description));
  put("tags", checkTags(parseTags(f.tags)));
  put("expiresAt", checkExpiresAt(localToIso(f.expiresAt), now));
  return errors;
}

/** The server's `details` (`[{ path, message }]`) as messages per field; the rest as one. */
export function mapDetails(
  details: { path: string; message: string }[],
  message: string,
): { fields: FieldErrors; other: string | null } {
  const fields: FieldErrors = {};
  const rest: string[] = [];
  const known = new Set(["name", "value", "secretType", "description", "tags", "expiresAt"]);
  for (const d of details) {
    const head = d.path.split(/[.[]/)[0];
    if (known.has(head)) fields[head as keyof SecretFields] ??= d.message;
    else rest.push(d.message);
  }
  if (details.length === 0 && /expiresAt/.test(message)) fields.expiresAt = message;
  else if (details.length === 0) rest.push(message);
  return { fields, other: rest.length ? rest.join(" ") : null };
}
