/**
 * The console's form rules (web/src/rules.ts) agree with the server's zod schemas
 * (shared/secrets/secret-schemas.ts) on generated input: what the console lets through, the
 * server takes, and what it stops, the server would refuse. Plus the CSV of the audit viewer.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createSecretBody, updateSecretBody } from "../../shared/secrets/secret-schemas.ts";
import {
  checkDescription, checkExpiresAt, checkName, checkSecretFields, checkTags, checkValue, localToIso, mapDetails, MAX_VALUE_BYTES,
  parseTags,
} from "../../web/src/rules.ts";
import { auditCsv, csvCell } from "../../web/src/csv.ts";

const base = { name: "OK_NAME", value: "v" };
const serverTakes = (body: Record<string, unknown>) => createSecretBody.safeParse({ ...base, ...body }).success;

const nameChars = fc.constantFrom(..."aZ_09.-$ é/".split(""));
const names = fc.oneof(
  fc.string({ unit: nameChars, maxLength: 140 }),
  fc.string({ maxLength: 30 }),
  fc.constantFrom("", "_", "a".repeat(128), "a".repeat(129), "1abc", ".env", "A-b.c_9"),
);
const texts = fc.oneof(
  fc.string({ maxLength: 1100 }),
  fc.string({ unit: "grapheme", maxLength: 1100 }),
  fc.string({ unit: "binary", maxLength: 50 }),
  fc.constantFrom("a\u0000b", "\uD800", "x".repeat(1000), "x".repeat(1001)),
);

describe("the console's form rules", () => {
  it("accept exactly the names the server accepts", () => {
    fc.assert(fc.property(names, (name) => {
      expect(checkName(name) === null).toBe(serverTakes({ name }));
    }), { numRuns: 2000 });
  });

  it("accept exactly the values the server accepts, sizes in UTF-8 bytes included", () => {
    const values = fc.oneof(texts, fc.constantFrom("", "é".repeat(MAX_VALUE_BYTES / 2), "é".repeat(MAX_VALUE_BYTES / 2) + "x",
      "x".repeat(MAX_VALUE_BYTES), "\uDC00"));
    fc.assert(fc.property(values, (value) => {
      expect(checkValue(value) === null).toBe(serverTakes({ value }));
    }), { numRuns: 500 });
  });

  it("accept exactly the descriptions the server accepts", () => {
    fc.assert(fc.property(texts, (description) => {
      expect(checkDescription(description) === null).toBe(serverTakes({ description }));
    }), { numRuns: 1000 });
  });

  it("accept exactly the tag lists the server accepts, as typed with commas", () => {
    const tag = fc.oneof(fc.string({ minLength: 1, maxLength: 70 }), fc.constantFrom("prod", "x".repeat(64), "x".repeat(65), "a\u0000"));
    fc.assert(fc.property(fc.array(tag, { maxLength: 24 }), (list) => {
      const typed = parseTags(list.join(","));
      expect(typed.every((t) => t === t.trim() && t.length > 0 && !t.includes(","))).toBe(true);
      expect(checkTags(typed) === null).toBe(serverTakes({ tags: typed }));
    }), { numRuns: 1000 });
  });

  it("take only a future expiry, which the server's schema and its future check take too", () => {
    const now = new Date("2026-06-01T12:00:00Z");
    expect(checkExpiresAt("", now)).toBeNull();
    expect(checkExpiresAt("2026-06-01T12:00:00.000Z", now)).toMatch(/future/);
    expect(checkExpiresAt("2026-06-01T11:00:00.000Z", now)).toMatch(/future/);
    expect(checkExpiresAt("invalid", now)).toMatch(/date/);
    const later = "2026-06-01T12:01:00.000Z";
    expect(checkExpiresAt(later, now)).toBeNull();
    expect(serverTakes({ expiresAt: later })).toBe(true);
    expect(updateSecretBody.safeParse({ expiresAt: localToIso("2030-01-02T03:04") }).success).toBe(true);
  });

  it("name every broken field of a form at once and none of a valid one", () => {
    const now = new Date("2026-06-01T12:00:00Z");
    const bad = checkSecretFields(
      { name: "9lives", value: "", secretType: "custom", description: "x".repeat(1001), tags: Array.from({ length: 21 }, (_, i) => `t${i}`).join(","), expiresAt: "2020-01-01T00:00" },
      true, now);
    expect(Object.keys(bad).sort()).toEqual(["description", "expiresAt", "name", "tags", "value"]);
    const good = checkSecretFields({ name: "DB_URL", value: "postgres://x", secretType: "database_url", description: "", tags: "prod, eu", expiresAt: "" }, true, now);
    expect(good).toEqual({});
    // An edit does not send the value, so an empty one is no problem there.
    expect(checkSecretFields({ name: "DB_URL", value: "", secretType: "custom", description: "", tags: "", expiresAt: "" }, false, now)).toEqual({});
  });

  it("put the server's details on the fields they name, and the rest in one message", () => {
    const mapped = mapDetails([{ path: "name", message: "bad name" }, { path: "tags.3", message: "too long" }, { path: "ownerId", message: "x" }], "Invalid request.");
    expect(mapped).toEqual({ fields: { name: "bad name", tags: "too long" }, other: "x" });
    expect(mapDetails([], "expiresAt must be in the future.")).toEqual({ fields: { expiresAt: "expiresAt must be in the future." }, other: null });
  });
});

describe("the audit CSV", () => {
  it("quotes what needs quoting and defuses cells a spreadsheet would run as formulas", () => {
    expect(csvCell('say "hi", then\nleave')).toBe('"say ""hi"", then\nleave"');
    expect(csvCell("=HYPERLINK(\"x\")")).toBe("\"'=HYPERLINK(\"\"x\"\")\"");
    expect(csvCell("+1")).toBe("'+1");
    expect(csvCell(null)).toBe("");
    const csv = auditCsv([{
      id: "1", secretId: null, secretName: "A,B", actorId: null, actorType: "user", action: "accessed", version: 2,
      deploymentId: null, ip: "127.0.0.1", userAgent: "@evil", requestId: null, outcome: "success", details: {}, createdAt: "2026-01-01T00:00:00.000Z",
    }]);
    expect(csv.split("\r\n")).toEqual([
      "createdAt,action,outcome,secretId,secretName,version,actorType,actorId,deploymentId,ip,userAgent,requestId",
      '2026-01-01T00:00:00.000Z,accessed,success,,"A,B",2,user,,,127.0.0.1,\'@evil,',
      "",
    ]);
  });
});
