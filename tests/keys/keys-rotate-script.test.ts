/**
 * `npm run keys:rotate` as an operator runs it: in-process against the configured database
 * when no server is running, through the running server's endpoint otherwise; a progress bar
 * on stderr, the outcome as JSON on stdout, and values that read the same afterwards.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../shared/config.ts";
import { createPgliteDatabase } from "../../shared/db/pglite.ts";
import { createRuntime } from "../../shared/runtime.ts";
import { migrateLocal, signServiceToken } from "../../scripts/lib/local.ts";
import { eventually, freePort, runDeno, startDeno } from "../helpers/processes.ts";
import { JWT_SECRET } from "../helpers/harness.ts";

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function dataDir() {
  const dir = await mkdtemp(join(tmpdir(), "sigyl-keys-"));
  dirs.push(dir);
  return dir;
}

/** Opens the PGlite data dir in this process, runs `fn` against a runtime over it, closes it. */
async function withRuntime<T>(dir: string, fn: (rt: Awaited<ReturnType<typeof createRuntime>>, service: string) => Promise<T>) {
  const db = await createPgliteDatabase({ dataDir: dir });
  try {
    await migrateLocal(db);
    const rt = await createRuntime({ config: loadConfig({}), db, log: () => {} });
    return await fn(rt, await signServiceToken(JWT_SECRET));
  } finally {
    await db.close();
  }
}

const json = (token: string, body: unknown) => ({
  method: "POST",
  headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
  body: JSON.stringify(body),
});

describe("npm run keys:rotate", () => {
  it("without a server, rotates in-process on the configured database and draws its progress", async () => {
    const dir = await dataDir();
    const values = ["script-value-one-123456", "script-value-two-654321", "script-value-three-000"];
    const ids = await withRuntime(dir, async (rt, service) => {
      const [user] = await rt.db.query<{ id: string }>(`insert into auth.users (email) values ('ops@example.com') returning id`);
      const out: string[] = [];
      for (const [i, value] of values.entries()) {
        const res = await rt.app.request("/secrets", json(service, { name: `S${i}`, value, ownerId: user.id }));
        expect(res.status).toBe(201);
        out.push((await res.json()).data.id);
      }
      return out;
    });

    const env = { SIGYL_DATA_DIR: dir, DATABASE_URL: undefined, PORT: String(await freePort()) };
    const run = await runDeno("scripts/keys-rotate.ts", ["--batch-size", "1"], env);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ fromVersion: 1, toVersion: 2, rewrapped: 3, remaining: 0, completed: true });
    expect(run.stderr).toContain(`rotating through ${dir}`);
    expect(run.stderr).toMatch(/KEK v1 -> v2 \[#{10}-{20}\]\s+33% 1\/3 DEKs re-wrapped/);
    expect(run.stderr).toMatch(/KEK v1 -> v2 \[#{30}\] 100% 3\/3 DEKs re-wrapped/);

    await withRuntime(dir, async (rt, service) => {
      for (const [i, id] of ids.entries()) {
        const res = await rt.app.request(`/secrets/${id}/value`, { headers: { authorization: `Bearer ${service}` } });
        expect((await res.json()).data.value).toBe(values[i]);
      }
      const keys = await rt.db.query<{ version: number; status: string }>(`select version, status from private.key_versions order by version`);
      expect(keys).toEqual([{ version: 1, status: "retired" }, { version: 2, status: "active" }]);
      // Every KEK, the retired one too (the keyring no longer loads it).
      const materials = await rt.db.query<{ material: string }>(
        `select s.decrypted_secret as material from private.key_versions k join vault.decrypted_secrets s on s.id = k.vault_secret_id`);
      expect(materials).toHaveLength(2);
      for (const { material } of materials) {
        expect(run.stdout + run.stderr).not.toContain(material);
        expect(run.stdout + run.stderr).not.toContain(Buffer.from(material, "base64").toString("hex"));
      }
    });

    // Again: a fresh rotation to v3, nothing to resume.
    const again = await runDeno("scripts/keys-rotate.ts", [], env);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ fromVersion: 2, toVersion: 3, rewrapped: 3, completed: true });
  });

  it("with the local server running on another port, finds it and rotates through its endpoint, one batch per call", async () => {
    const dir = await dataDir();
    const port = await freePort();
    const env = { SIGYL_DATA_DIR: dir, DATABASE_URL: undefined, PORT: String(port) };
    const server = startDeno("scripts/serve.ts", [], env);
    const base = `http://127.0.0.1:${port}/functions/v1/secrets`;
    try {
      await eventually(async () => {
        if (server.child.exitCode !== null) throw new Error(`server exited: ${server.stderr()}`);
        return (await fetch(`${base}/health`)).status === 200 ? true : undefined;
      }, 60_000);
      const service = await signServiceToken(JWT_SECRET);
      const user = await (await fetch(`http://127.0.0.1:${port}/auth/v1/admin/users`, json(service, { email: "ops@example.com" }))).json();
      const created = [];
      for (let i = 0; i < 4; i++) {
        const res = await fetch(base, json(service, { name: `S${i}`, value: `served-value-${i}-abcdef`, ownerId: user.id }));
        expect(res.status).toBe(201);
        created.push((await res.json()).data.id);
      }

      // Without the server's PORT: the data dir's lock file names the server that holds it.
      const run = await runDeno("scripts/keys-rotate.ts", ["--batch-size", "2"], { SIGYL_DATA_DIR: dir, DATABASE_URL: undefined, PORT: undefined });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toContain(`rotating through the server at http://127.0.0.1:${port}`);
      expect(run.stderr).toMatch(/KEK v1 -> v2 \[#{15}-{15}\]\s+50% 2\/4 DEKs re-wrapped/);
      expect(JSON.parse(run.stdout)).toEqual({ fromVersion: 1, toVersion: 2, rewrapped: 4, remaining: 0, completed: true });

      for (const [i, id] of created.entries()) {
        const res = await fetch(`${base}/${id}/value`, { headers: { authorization: `Bearer ${service}` } });
        expect((await res.json()).data.value).toBe(`served-value-${i}-abcdef`);
      }
      const keys = await (await fetch(`${base}/admin/keys`, { headers: { authorization: `Bearer ${service}` } })).json();
      expect(keys.data.map((k: { version: number; status: string; dekCount: number }) => [k.version, k.status, k.dekCount]))
        .toEqual([[1, "retired", 0], [2, "active", 4]]);
    } finally {
      server.child.kill("SIGINT");
      await server.exited;
    }
  });
});
