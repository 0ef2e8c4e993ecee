/**
 * `npm run audit:verify` as an operator runs it: in-process on the configured PGlite data dir
 * when no server holds it, through the server that does otherwise; exit 0 and the heads when
 * the trail verifies, exit 1 and the first broken link when it does not, and `--checkpoint`
 * catching a rewrite the database alone cannot see.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../shared/config.ts";
import { createPgliteDatabase } from "../../shared/db/pglite.ts";
import type { Database } from "../../shared/db/database.ts";
import { createRuntime } from "../../shared/runtime.ts";
import { migrateLocal, signServiceToken } from "../../scripts/lib/local.ts";
import { freePort, runDeno, startServer, stopProcess } from "../helpers/processes.ts";
import { JWT_SECRET } from "../helpers/harness.ts";
import { tamper } from "./trail.ts";

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function dataDir() {
  const dir = await mkdtemp(join(tmpdir(), "sigyl-audit-"));
  dirs.push(dir);
  return dir;
}

const VALUE = "audit-script-value-7f3a9c";

/** A data dir with a trail: a secret created and read three times through the API. */
async function withTrail(dir: string) {
  await withDb(dir, async (db) => {
    const rt = await createRuntime({ config: loadConfig({}), db, log: () => {} });
    const service = await signServiceToken(JWT_SECRET);
    const [user] = await db.query<{ id: string }>(`insert into auth.users (email) values ('audit@example.com') returning id`);
    const res = await rt.app.request("/secrets", {
      method: "POST",
      headers: { authorization: `Bearer ${service}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "AUDITED", value: VALUE, ownerId: user.id }),
    });
    expect(res.status).toBe(201);
    const { id } = (await res.json()).data;
    for (let i = 0; i < 3; i++) {
      expect((await rt.app.request(`/secrets/${id}/value`, { headers: { authorization: `Bearer ${service}` } })).status).toBe(200);
    }
  });
}

async function withDb<T>(dir: string, fn: (db: Database) => Promise<T>) {
  const db = await createPgliteDatabase({ dataDir: dir });
  try {
    await migrateLocal(db);
    return await fn(db);
  } finally {
    await db.close();
  }
}

const verifyScript = async (dir: string, args: string[] = [], env: Record<string, string | undefined> = {}) =>
  runDeno("scripts/audit-verify.ts", args, { SIGYL_DATA_DIR: dir, DATABASE_URL: undefined, PORT: String(await freePort()), ...env });

describe("npm run audit:verify", () => {
  it("in-process: exit 0 and the heads for a clean trail; exit 1 and the first broken link after an edit", async () => {
    const dir = await dataDir();
    await withTrail(dir);

    const clean = await verifyScript(dir);
    expect(clean.code, clean.stderr).toBe(0);
    const result = JSON.parse(clean.stdout);
    expect(result).toMatchObject({ ok: true, firstBroken: null, brokenCount: 0, checkpointHeads: null });
    expect(result.heads).toHaveLength(1);
    expect(result.checkedRows).toBe(result.heads[0].rowCount);
    expect(clean.stderr).toContain(`sigyl audit: ${result.checkedRows} rows in 1 chains verify (${dir})`);
    expect(clean.stdout + clean.stderr).not.toContain(VALUE);

    const checkpoint = join(dir, "..", `${dir.split("/").pop()}-checkpoint.json`);
    dirs.push(checkpoint);
    await writeFile(checkpoint, clean.stdout);

    // The owner, triggers off, edits the second row; then a consistent rewrite of the rest.
    const [second] = await withDb(dir, async (db) => {
      const rows = await db.query<{ id: string }>(`select l.id::text as id from public.secret_access_logs l order by l.id`);
      await tamper(db, `update public.secret_access_logs set user_agent = 'curl/8' where id = $1::bigint`, [rows[1].id]);
      return rows.slice(1);
    });
    const broken = await verifyScript(dir);
    expect(broken.code, broken.stderr).toBe(1);
    expect(JSON.parse(broken.stdout).firstBroken).toEqual({ chain: result.heads[0].chain, id: second.id, reason: "altered" });
    expect(broken.stderr).toContain(`first: chain ${result.heads[0].chain}, id ${second.id}, altered`);

    await withDb(dir, (db) =>
      tamper(db, `do $$
        declare r public.secret_access_logs; prev bytea;
        begin
          for r in select * from public.secret_access_logs order by id loop
            prev := private.audit_link(prev, r.chain_seq, r);
            update public.secret_access_logs set chain_hash = prev where id = r.id;
          end loop;
          update private.audit_chains set last_hash = prev;
        end $$`));
    const rewritten = await verifyScript(dir);
    expect(rewritten.code, rewritten.stderr).toBe(0); // consistent: the database alone cannot tell

    const against = await verifyScript(dir, ["--checkpoint", checkpoint]);
    expect(against.code, against.stderr).toBe(1);
    expect(JSON.parse(against.stdout)).toMatchObject({
      ok: false, checkpointHeads: 1,
      firstBroken: { chain: result.heads[0].chain, id: result.heads[0].lastId, reason: "checkpoint_mismatch" },
    });
  });

  it("refuses a checkpoint file that holds no heads, verifying nothing", async () => {
    const dir = await dataDir();
    const bad = join(dir, "not-a-checkpoint.json");
    await writeFile(bad, JSON.stringify({ heads: [{ chain: 1, lastId: "x" }] }));
    const run = await verifyScript(dir, ["--checkpoint", bad]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("holds no valid \"heads\"");
    expect(run.stdout).toBe("");
  });

  it("changes nothing: a missing data dir or a database never migrated is exit 2, and stays as it was", async () => {
    const missing = join(await dataDir(), "none");
    const none = await verifyScript(missing);
    expect(none.code, none.stderr).toBe(2);
    expect(none.stderr).toContain("no database at");
    expect(existsSync(missing)).toBe(false);

    const bare = await dataDir();
    await (await createPgliteDatabase({ dataDir: bare })).close();
    const run = await verifyScript(bare);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain("has no audit trail schema");
    expect(run.stdout).toBe("");
    const db = await createPgliteDatabase({ dataDir: bare });
    try {
      expect(await db.query(`select 1 from pg_namespace where nspname = 'private'`)).toEqual([]);
    } finally {
      await db.close();
    }
  });

  it("with the local server holding the data dir: verifies through it, found by the data dir's lock file", async () => {
    const dir = await dataDir();
    await withTrail(dir);
    const { server, port } = await startServer({ SIGYL_DATA_DIR: dir, DATABASE_URL: undefined });
    try {
      const run = await verifyScript(dir, [], { PORT: undefined });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toContain(`verify (the server at http://127.0.0.1:${port})`);
      expect(JSON.parse(run.stdout)).toMatchObject({ ok: true, brokenCount: 0 });
    } finally {
      await stopProcess(server);
    }
  });
});
