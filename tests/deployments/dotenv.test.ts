/** The dotenv output round-trips through the dotenv package's own parser, for any value it accepts. */
import dotenv from "dotenv";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatDotenv, NotRepresentableError, quoteDotenvValue } from "../../shared/deployments/dotenv.ts";

const parse = (text: string) => dotenv.parse(text);
const roundTrip = (value: string) => parse(formatDotenv([{ name: "V", value }])).V;

const awkward = ["'", '"', "`", "\n", "\r", "#", "$", "\\", "=", " ", "\t", "é", "🔑", "n", "r", "a", "{", "}", ":"];

describe("dotenv output", () => {
  it("round-trips every kind of value the issue names", () => {
    for (const value of [
      `it's "quoted"`, `both ' and "`, "line one\nline two\n", "# not a comment", "$HOME and ${PATH}",
      "back\\slash \\n literal", "a=b=c", "  leading and trailing  ", "ключ 🔑 秘密", "tab\there", "",
      "C:\\dir\\", "crlf\r\nline", "ends with space ", "`backticks` and 'single'", "-----BEGIN KEY-----\nabc\n-----END KEY-----",
    ]) {
      expect(roundTrip(value), JSON.stringify(value)).toBe(value);
    }
  });

  it("any generated value either round-trips exactly or is refused, never altered", () => {
    let representable = 0;
    fc.assert(fc.property(fc.string({ unit: fc.constantFrom(...awkward), maxLength: 24 }), (value) => {
      const quoted = quoteDotenvValue(value);
      if (quoted === null) {
        expect(() => formatDotenv([{ name: "V", value }])).toThrow(NotRepresentableError);
        return;
      }
      representable++;
      expect(roundTrip(value)).toBe(value);
    }), { numRuns: 5000 });
    expect(representable).toBeGreaterThan(4000);
  });

  it("round-trips arbitrary unicode and many variables at once", () => {
    fc.assert(fc.property(
      fc.uniqueArray(fc.tuple(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,20}$/), fc.string({ unit: "grapheme", maxLength: 40 })), {
        selector: ([k]) => k, maxLength: 20,
      }),
      (pairs) => {
        const entries = pairs.map(([name, value]) => ({ name, value })).filter((e) => quoteDotenvValue(e.value) !== null);
        const parsed = parse(formatDotenv(entries));
        expect(parsed).toEqual(Object.fromEntries(entries.map((e) => [e.name, e.value])));
      },
    ), { numRuns: 1000 });
  });

  it("refuses only values that no dotenv form can hold", () => {
    expect(quoteDotenvValue("` ' \" all three \\")).toBeNull();
    expect(() => formatDotenv([{ name: "A", value: "ok" }, { name: "B", value: "`'\"\\" }])).toThrow(/B/);
  });
});
