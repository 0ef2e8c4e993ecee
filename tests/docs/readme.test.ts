/**
 * The README's Layout section and route tables are checked against the code, so they cannot
 * drift: every entry of the project's top-level folders is described and every path named
 * exists; every route the app serves is in a table and every route in a table is served.
 */
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/lib/local.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { documentedRoutes, readme, section, tableRows } from "../helpers/readme.ts";

const FOLDERS = ["functions", "shared", "scripts", "bench", "tests", "supabase", "cli", "bin", "web"];
/** Not part of the source: written by tools at run time, git-ignored. */
const GENERATED = new Set(["bench/results/", "supabase/.temp/", "supabase/.branches/", "web/dist/"]);

/** `shared/`, `shared/app.ts`: what lies directly inside each top-level folder. */
async function entries(): Promise<string[]> {
  const out: string[] = [];
  for (const folder of FOLDERS) {
    for (const e of await readdir(join(ROOT, folder), { withFileTypes: true })) {
      const path = `${folder}/${e.name}${e.isDirectory() ? "/" : ""}`;
      if (!GENERATED.has(path)) out.push(path);
    }
  }
  return out.sort();
}

/** The first cell of each row of the Layout table: one or more `path`s. */
async function documentedPaths(): Promise<string[]> {
  const rows = tableRows(section(await readme(), "## Layout"));
  return rows.flatMap(([cell]) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1])).sort();
}

describe("the README's Layout", () => {
  it("describes every entry of the top-level folders", async () => {
    const documented = new Set(await documentedPaths());
    expect((await entries()).filter((e) => !documented.has(e))).toEqual([]);
  });

  it("names only paths that exist", async () => {
    const missing: string[] = [];
    for (const path of await documentedPaths()) {
      const found = await stat(join(ROOT, path)).then((s) => s.isDirectory() === path.endsWith("/"), () => false);
      if (!found) missing.push(path);
    }
    expect(missing).toEqual([]);
  });
});

describe("the README's route tables", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("list exactly the routes the function serves", async () => {
    const documented = await documentedRoutes();
    const served = h.app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${r.path.replace(/\/$/, "")}`);
    expect([...new Set(documented)].sort()).toEqual([...new Set(served)].sort());
    expect(documented.length, "each route documented once").toBe(new Set(documented).size);
  });
});
