/**
 * The migration pipeline: the same files on PGlite (our runner) and PostgreSQL (the real
 * Supabase CLI), one history, idempotent, atomic per file; the stand-in never among them.
 */
import { execFile } from "node:child_process";
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { createPgliteDatabase } from "../../shared/db/pglite.ts";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";
import { listMigrations, migrate, MigrationError, splitStatements } from "../../shared/db/migrate.ts";
import { MIGRATIONS_DIR, migrateLocal, ROOT, STAND_IN_PATH } from "../../scripts/lib/local.ts";
import { describeOrSkip, needsPostgres } from "../helpers/skip.ts";

const run = promisify(execFile);
const pgUrl = process.env.DATABASE_URL;

describe("migrations on embedded PGlite", () => {
  it("applies every migration once; a second run applies nothing and changes no history", async () => {
    const db = await createPgliteDatabase();
    try {
      const files = await listMigrations(MIGRATIONS_DIR);
      const first = await migrateLocal(db);
      expect(first.applied).toEqual(files.map((f) => f.version));
      const history = await db.query(`select version, name, statements from supabase_migrations.schema_migrations order by version`);
      const second = await migrateLocal(db);
      expect(second.applied).toEqual([]);
      expect(await db.query(`select version, name, statements from supabase_migrations.schema_migrations order by version`)).toEqual(history);
      expect(history.map((h: any) => h.name)).toEqual(files.map((f) => f.name));
    } finally {
      await db.close();
    }
  });

  it("a failing migration applies nothing of itself, names the file and the error, and keeps earlier ones", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sigyl-migrations-"));
    const db = await createPgliteDatabase();
    try {
      for (const f of await readdir(MIGRATIONS_DIR)) await copyFile(join(MIGRATIONS_DIR, f), join(dir, f));
      await writeFile(join(dir, "29990101000000_broken.sql"), "create table public.half_done (id int);\nselect 1 / 0;\n");
      const err = await migrate(db, { migrationsDir: dir, standInPath: STAND_IN_PATH }).catch((e) => e);
      expect(err).toBeInstanceOf(MigrationError);
      expect(err.message).toContain("29990101000000_broken.sql");
      expect(err.message).toMatch(/division by zero/);
      expect(await db.query(`select to_regclass('public.half_done') as t`)).toEqual([{ t: null }]);
      const versions = (await db.query<{ version: string }>(`select version from supabase_migrations.schema_migrations`)).map((r) => r.version);
      expect(versions).not.toContain("29990101000000");
      expect(versions).toHaveLength((await listMigrations(MIGRATIONS_DIR)).length);
    } finally {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("creates the first KEK inside the database: 32 random bytes in Vault, different in every database", async () => {
    const materials: string[] = [];
    for (let i = 0; i < 2; i++) {
      const db = await createPgliteDatabase();
      try {
        await migrateLocal(db);
        const rows = await db.query<{ version: number; status: string; material: string }>(`select * from private.load_keyring()`);
        expect(rows).toHaveLength(1);
        expect(rows[0]).toMatchObject({ version: 1, status: "active" });
        expect(Buffer.from(rows[0].material, "base64")).toHaveLength(32);
        const [stored] = await db.query<{ secret: string }>(`select secret from vault.secrets where name = 'sigyl_kek_v1'`);
        expect(stored.secret).not.toContain(rows[0].material);
        materials.push(rows[0].material);
      } finally {
        await db.close();
      }
    }
    expect(materials[0]).not.toBe(materials[1]);
  });
});

describe("migration files", () => {
  it("hold nothing of the platform stand-in and no key material", async () => {
    for (const f of await listMigrations(MIGRATIONS_DIR)) {
      const sql = (await readFile(f.path, "utf8")).toLowerCase();
      // The platform's roles are the stand-in's; the function's own login (sigyl_api) is ours.
      expect(sql, f.path).not.toMatch(/create role (?!sigyl_api\b)|create schema (if not exists )?(auth|vault|extensions)\b|create (or replace )?function (auth|vault)\.|create table (if not exists )?(auth|vault)\./);
      expect(sql, f.path).not.toMatch(/create_secret\(\s*'/);
      // A role's password is set by hand (README: Deploy), never in a migration.
      expect(sql, f.path).not.toMatch(/password\s+'[^']*[a-z0-9]/);
      expect(sql, f.path).not.toMatch(/[a-z0-9+/]{43}=/i);
    }
    expect(STAND_IN_PATH.startsWith(MIGRATIONS_DIR)).toBe(false);
  });

  it("split into statements the way the Supabase CLI records them", () => {
    expect(splitStatements("create table a (x text default ';');\n-- c;\nselect $$ ; $$;\nselect $t$ $$ ; $t$; select 'it''s;'")).toEqual([
      "create table a (x text default ';')",
      "-- c;\nselect $$ ; $$",
      "select $t$ $$ ; $t$",
      "select 'it''s;'",
    ]);
  });
});

describeOrSkip("migrations on PostgreSQL with the real Supabase CLI", needsPostgres, () => {
  it("supabase db push applies every migration to an empty database; our runner then sees the same history", async () => {
    const admin = createPostgresDatabase(pgUrl!, { max: 1 });
    const name = `sigyl_cli_${Math.random().toString(36).slice(2, 8)}`;
    await admin.query(`create database ${name}`);
    const url = new URL(pgUrl!);
    url.pathname = `/${name}`;
    const db = createPostgresDatabase(url.toString(), { max: 1 });
    try {
      const empty = await mkdtemp(join(tmpdir(), "sigyl-empty-"));
      await migrate(db, { migrationsDir: empty, standInPath: STAND_IN_PATH }); // the stand-in only
      await db.exec("drop schema supabase_migrations cascade");
      url.searchParams.set("sslmode", "disable");
      const { stdout, stderr } = await run(join(ROOT, "node_modules/.bin/supabase"), ["db", "push", "--yes", "--db-url", url.toString()], { cwd: ROOT });
      const files = await listMigrations(MIGRATIONS_DIR);
      for (const f of files) expect(stdout + stderr).toContain(`${f.version}_${f.name}.sql`);
      const history = await db.query<{ version: string; name: string; statements: string[] }>(
        `select version, name, statements from supabase_migrations.schema_migrations order by version`);
      expect(history.map((h) => h.version)).toEqual(files.map((f) => f.version));
      for (const f of files) {
        const row = history.find((h) => h.version === f.version)!;
        expect(row.statements, f.path).toEqual(splitStatements(await readFile(f.path, "utf8")));
      }
      expect((await migrate(db, { migrationsDir: MIGRATIONS_DIR, standInPath: STAND_IN_PATH })).applied).toEqual([]);
      const again = await run(join(ROOT, "node_modules/.bin/supabase"), ["db", "push", "--yes", "--db-url", url.toString()], { cwd: ROOT });
      expect(again.stdout + again.stderr).toMatch(/up to date/i);
    } finally {
      await db.close();
      await admin.query(`drop database ${name} with (force)`);
      await admin.close();
    }
  });
});
