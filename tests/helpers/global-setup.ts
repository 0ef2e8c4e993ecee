/**
 * Runs once before every suite. With DATABASE_URL: migrates that PostgreSQL once (the suites
 * share it and keep apart by using fresh users). Without: migrates an embedded PGlite once and
 * leaves a dump every suite starts from, so each gets a private database in about a second.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { createPgliteDatabase } from "../../shared/db/pglite.ts";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";
import { redactUrl } from "../../shared/db/database.ts";
import { migrateLocal } from "../../scripts/lib/local.ts";

let dumpDir: string | undefined;

export async function setup(project: TestProject) {
  const url = process.env.DATABASE_URL;
  if (url) {
    const db = createPostgresDatabase(url, { max: 1 });
    try {
      const { applied, total } = await migrateLocal(db);
      console.log(`[sigyl tests] database: PostgreSQL ${redactUrl(url)} (${total} migrations, ${applied.length} applied by the test setup)`);
    } finally {
      await db.close();
    }
    project.provide("pgliteDump", "");
    return;
  }
  const db = await createPgliteDatabase();
  const { total } = await migrateLocal(db);
  dumpDir = await mkdtemp(join(tmpdir(), "sigyl-tests-"));
  const path = join(dumpDir, "migrated.tar");
  await writeFile(path, new Uint8Array(await (await db.dump()).arrayBuffer()));
  await db.close();
  console.log(`[sigyl tests] database: embedded PGlite (${total} migrations; set DATABASE_URL to use PostgreSQL)`);
  project.provide("pgliteDump", path);
}

export async function teardown() {
  if (dumpDir) await rm(dumpDir, { recursive: true, force: true });
}

declare module "vitest" {
  export interface ProvidedContext {
    pgliteDump: string;
  }
}
