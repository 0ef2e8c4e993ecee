/**
 * One error catalogue (shared/errors.ts): the README's error table is the catalogue, row for
 * row; every code the database raises or returns is in it, with the status its SQLSTATE says.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ERRORS, fromCodedMessage, fromDatabaseError } from "../../shared/errors.ts";
import { MIGRATIONS_DIR } from "../../scripts/lib/local.ts";
import { readme, section, tableRows } from "../helpers/readme.ts";

/** `raise exception '<code>…' … using errcode = 'S0nnn'`, and `outcome := '<code>…'`, from every migration. */
async function databaseCodes() {
  const raised: { code: string; status: number }[] = [];
  const outcomes = new Set<string>();
  for (const file of (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith(".sql"))) {
    const sql = await readFile(join(MIGRATIONS_DIR, file), "utf8");
    for (const m of sql.matchAll(/raise exception '([a-z_]+)[^']*'[^;]*?errcode = 'S0(\d{3})'/g)) {
      raised.push({ code: m[1], status: Number(m[2]) });
    }
    for (const m of sql.matchAll(/outcome := (?:format\()?'([a-z_]+)/g)) outcomes.add(m[1]);
  }
  return { raised, outcomes: [...outcomes] };
}

describe("the error catalogue", () => {
  it("is the README's error table, row for row: status, code and when", async () => {
    const rows = tableRows(section(await readme(), "### Error codes"));
    const documented = rows.map(([status, code, when]) => ({ status: Number(status), code: code.replace(/`/g, ""), when }));
    const catalogue = Object.entries(ERRORS).map(([code, e]) => ({ status: e.status, code, when: e.when }));
    const asRow = (e: { status: number; code: string; when: string }) => `| ${e.status} | \`${e.code}\` | ${e.when.replace(/\|/g, "\\|")} |`;
    // On failure the message is the table to paste.
    expect(documented.map(asRow).join("\n"), catalogue.map(asRow).join("\n")).toBe(catalogue.map(asRow).join("\n"));
  });

  it("holds every code the database raises, at the status its SQLSTATE names", async () => {
    const { raised } = await databaseCodes();
    expect(raised.length).toBeGreaterThan(10);
    for (const { code, status } of raised) {
      expect(ERRORS, code).toHaveProperty(code);
      expect(ERRORS[code as keyof typeof ERRORS].status, code).toBe(status);
      const err = fromDatabaseError({ code: `S0${status}`, message: `${code}: detail` });
      expect(err).toMatchObject({ code, status, message: "detail" });
    }
  });

  it("holds every refusal the value read and env resolution return as an outcome", async () => {
    const { outcomes } = await databaseCodes();
    // `not_modified` is not a refusal: the env is unchanged, answered 304.
    expect(outcomes).toContain("not_modified");
    const refusals = outcomes.filter((o) => o !== "ok" && o !== "not_modified");
    expect(refusals).toEqual(expect.arrayContaining(["deployment_not_found", "deployment_not_ready", "deployment_invalid"]));
    for (const code of refusals) expect(fromCodedMessage(code)?.code, code).toBe(code);
    for (const code of ["secret_not_found", "forbidden", "secret_deleted", "secret_expired", "secret_inactive", "version_not_found"]) {
      expect(fromCodedMessage(code)?.code, code).toBe(code);
    }
  });

  it("maps an unknown code to nothing rather than guessing a status", () => {
    expect(fromCodedMessage("no_such_code: detail")).toBeNull();
    expect(fromDatabaseError({ code: "S0404", message: "no_such_code" })).toBeNull();
    expect(fromDatabaseError({ code: "23505", constraint: "secrets_live_name" })?.code).toBe("name_taken");
    expect(fromDatabaseError({ code: "08006" })?.code).toBe("database_unavailable");
  });
});
