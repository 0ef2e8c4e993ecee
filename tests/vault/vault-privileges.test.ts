/**
 * Vault's privileges are hosted Supabase's, on the real extension (PostgreSQL prepared by
 * scripts/setup-postgres.sh) and on the platform stand-in (PGlite) alike: service_role reads
 * and deletes Vault secrets and calls create_secret/update_secret; anon and authenticated get
 * nothing; the KEK helpers of our migrations are the connection owner's alone.
 */
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STAND_IN_PATH } from "../../scripts/lib/local.ts";
import type { Database, Queryable } from "../../shared/db/database.ts";
import { openTestDatabase } from "../helpers/harness.ts";
import { createScratchDatabase, realVaultReason } from "../helpers/real-vault.ts";
import { itOrSkip } from "../helpers/skip.ts";

/** Runs `fn` in a transaction that is always rolled back, so nothing it does stays. */
async function rolledBack(db: Database, fn: (tx: Queryable) => Promise<void>): Promise<void> {
  const rollback = new Error("rollback");
  await db.transaction(async (tx) => {
    await fn(tx);
    throw rollback;
  }).catch((err) => {
    if (err !== rollback) throw err;
  });
}

/** The SQLSTATE a statement fails with inside a savepoint, or null when it succeeds. */
async function failsWith(tx: Queryable, sql: string): Promise<string | null> {
  await tx.exec("savepoint attempt");
  try {
    await tx.exec(sql);
    await tx.exec("release savepoint attempt");
    return null;
  } catch (err) {
    await tx.exec("rollback to savepoint attempt");
    return (err as { code?: string }).code ?? "unknown";
  }
}

describe("Vault privileges", () => {
  let db: Database;
  beforeAll(async () => {
    db = await openTestDatabase();
  });
  afterAll(async () => {
    await db?.close();
  });

  it("service_role creates, updates, reads and deletes Vault secrets through Vault's API, as on hosted", async () => {
    await rolledBack(db, async (tx) => {
      await tx.exec("set local role service_role");
      const [made] = await tx.query<{ id: string }>(`select vault.create_secret('first', 'sigyl_privilege_check') as id`);
      await tx.query(`select vault.update_secret($1::uuid, 'second')`, [made.id]);
      const [read] = await tx.query<{ value: string }>(
        `select decrypted_secret as value from vault.decrypted_secrets where id = $1::uuid`, [made.id]);
      expect(read.value).toBe("second");
      const [raw] = await tx.query<{ secret: string }>(`select secret from vault.secrets where id = $1::uuid`, [made.id]);
      expect(raw.secret).not.toContain("second");
      // Rows are written only through the API, which encrypts.
      expect(await failsWith(tx, `insert into vault.secrets (secret) values ('plain')`)).toBe("42501");
      expect(await failsWith(tx, `update vault.secrets set secret = 'plain'`)).toBe("42501");
      expect(await failsWith(tx, `delete from vault.secrets where name = 'sigyl_privilege_check'`)).toBeNull();
    });
  });

  it("anon and authenticated can neither reach the vault schema nor call any of its functions", async () => {
    const rows = await db.query<{ role: string; what: string }>(
      `select r.role, 'schema vault' as what from (values ('anon'), ('authenticated')) r(role)
        where has_schema_privilege(r.role, 'vault', 'USAGE')
       union all
       select r.role, c.oid::regclass::text from pg_class c cross join (values ('anon'), ('authenticated')) r(role)
        where c.relnamespace = 'vault'::regnamespace and c.relkind in ('r', 'v')
          and has_table_privilege(r.role, c.oid, 'SELECT, INSERT, UPDATE, DELETE')
       union all
       select r.role, p.oid::regprocedure::text from pg_proc p cross join (values ('anon'), ('authenticated')) r(role)
        where p.pronamespace = 'vault'::regnamespace and has_function_privilege(r.role, p.oid, 'EXECUTE')`);
    expect(rows).toEqual([]);
  });

  it("only the connection owner may create a KEK or schedule the jobs", async () => {
    const rows = await db.query<{ role: string; fn: string; allowed: boolean }>(
      `select r.role, f.fn, has_function_privilege(r.role, f.fn, 'EXECUTE') as allowed
         from (values ('anon'), ('authenticated'), ('service_role')) r(role)
        cross join (values ('private.create_kek(integer)'), ('private.schedule_jobs()')) f(fn)`);
    expect(rows.filter((r) => r.allowed)).toEqual([]);
    expect(rows).toHaveLength(6);
  });
});

const realVault = await realVaultReason();

describe("the platform stand-in on PostgreSQL", () => {
  itOrSkip("uses the real Supabase Vault extension where the server has it, and stays idempotent", realVault, async () => {
    const scratch = await createScratchDatabase();
    try {
      const standIn = await readFile(STAND_IN_PATH, "utf8");
      await scratch.db.exec(standIn);
      await scratch.db.exec(standIn);
      const [ext] = await scratch.db.query<{ version: string }>(
        `select extversion as version from pg_extension where extname = 'supabase_vault'`);
      expect(ext?.version).toMatch(/^0\.3\./);
      // vault.secrets is the extension's table, not a stand-in's.
      const [member] = await scratch.db.query<{ owned: boolean }>(
        `select exists (select 1 from pg_depend d join pg_extension e on e.oid = d.refobjid
                         where e.extname = 'supabase_vault' and d.classid = 'pg_class'::regclass
                           and d.objid = 'vault.secrets'::regclass) as owned`);
      expect(member.owned).toBe(true);
      expect(await scratch.db.query(`select to_regclass('vault._root_key') as t`)).toEqual([{ t: null }]);
    } finally {
      await scratch.drop();
    }
  });
});
