/**
 * The path a new user walks, trap by trap: `npm run token` finds the server that holds the
 * database whatever its PORT, and never opens a database another process holds; a second
 * process on the same PGlite data dir stops with one line; the README's "Try it" runs as
 * pasted and shows its failures; a skipped suite says why; a normal request prints no warning.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOCK_FILE } from "../../scripts/lib/data-dir-lock.ts";
import { ROOT } from "../../scripts/lib/local.ts";
import { eventually, freePort, runDeno, startDeno, startServer, stopProcess } from "../helpers/processes.ts";

const SLOW = 180_000; // each test boots Deno servers on PGlite

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A fresh directory whose `pglite` subdirectory is the data dir, so nothing lands beside it. */
async function workDir() {
  const dir = await mkdtemp(join(tmpdir(), "sigyl-newcomer-"));
  dirs.push(dir);
  return { dir, dataDir: join(dir, "pglite") };
}

const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const lockOf = async (dataDir: string) => JSON.parse(await readFile(join(dataDir, LOCK_FILE), "utf8"));

/** `npm run token` with PORT on a port where nothing listens, as when the server is elsewhere. */
async function token(email: string, dataDir: string, args: string[] = []) {
  const res = await runDeno("scripts/token.ts", [email, ...args], {
    SIGYL_DATA_DIR: dataDir, DATABASE_URL: undefined, PORT: String(await freePort()),
  });
  return { ...res, token: res.stdout.trim(), errLines: res.stderr.trim().split("\n") };
}

describe("npm run token and the server that holds the database", () => {
  it("without a server creates the user in PGlite; with the server on another port, goes through it and opens no second database", async () => {
    const { dir, dataDir } = await workDir();
    const before = await token("alice@example.com", dataDir);
    expect(before.code).toBe(0);
    expect(before.errLines).toEqual([expect.stringMatching(/^sigyl token: alice@example\.com \(.+\) in the embedded PGlite at .+ \(no server is running\)/)]);
    expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);

    const { server, port, base } = await startServer({ SIGYL_DATA_DIR: dataDir, DATABASE_URL: undefined });
    try {
      expect(await lockOf(dataDir)).toEqual({ pid: server.child.pid, url: `http://127.0.0.1:${port}` });
      const files = await readdir(dataDir);

      const alice = await token("alice@example.com", dataDir);
      expect(alice.code).toBe(0);
      expect(alice.errLines).toEqual([expect.stringContaining(`through the server at http://127.0.0.1:${port},`)]);
      expect(claimsOf(alice.token).sub).toBe(claimsOf(before.token).sub);
      const bob = await token("bob@example.com", dataDir);
      expect(bob.code).toBe(0);

      // The user is in the server's database: it can own a secret there (no 409 conflict).
      const created = await fetch(base, {
        method: "POST",
        headers: { authorization: `Bearer ${bob.token}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "FIRST", value: "created-by-a-new-user" }),
      });
      expect(created.status).toBe(201);
      expect((await created.json()).data.ownerId).toBe(claimsOf(bob.token).sub);

      expect(await readdir(dir)).toEqual(["pglite"]);
      expect(await readdir(dataDir)).toEqual(files);
      expect(await lockOf(dataDir)).toEqual({ pid: server.child.pid, url: `http://127.0.0.1:${port}` });
    } finally {
      expect(await stopProcess(server)).toBe(0);
    }
    expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);
  }, SLOW);

  it("refuses in one line, naming PORT and DATABASE_URL, when the process holding the database serves no requests", async () => {
    const { dataDir } = await workDir();
    const holder = startDeno("tests/helpers/hold-data-dir.ts", [dataDir], {});
    try {
      await eventually(async () => (holder.output().includes("held") ? true : undefined), 30_000);
      const res = await token("carol@example.com", dataDir, ["--wait", "0"]);
      expect(res.code).toBe(1);
      expect(res.stdout).toBe("");
      expect(res.errLines).toHaveLength(1);
      expect(res.errLines[0]).toMatch(new RegExp(
        `^sigyl token: the PGlite database at ${escape(dataDir)} is in use by process ${holder.child.pid}, and no server answers for it; .*PORT.*DATABASE_URL`));
      // It never opened the database: PGlite would have initialised the empty directory.
      expect(await readdir(dataDir)).toEqual([LOCK_FILE]);
      expect((await lockOf(dataDir)).pid).toBe(holder.child.pid);
    } finally {
      await stopProcess(holder, "SIGKILL");
    }
  }, SLOW);
});

describe("one process per PGlite data dir", () => {
  it("a second npm start on the same data dir exits with one line naming the holder; the first keeps serving", async () => {
    const { dataDir } = await workDir();
    const first = await startServer({ SIGYL_DATA_DIR: dataDir, DATABASE_URL: undefined });
    try {
      const second = await runDeno("scripts/serve.ts", [], { PORT: String(await freePort()), SIGYL_DATA_DIR: dataDir, DATABASE_URL: undefined });
      expect(second.code).toBe(1);
      expect(second.stderr.trim().split("\n")).toEqual([
        `sigyl: the PGlite database at ${dataDir} is in use by process ${first.server.child.pid} (another npm start?); stop it or set SIGYL_DATA_DIR`,
      ]);
      expect(second.stdout).not.toContain("migrations");
      expect((await fetch(`${first.base}/health`)).status).toBe(200);
      expect((await lockOf(dataDir)).pid).toBe(first.server.child.pid);
    } finally {
      expect(await stopProcess(first.server, "SIGTERM")).toBe(0);
    }
    expect(first.server.output()).toContain("shutting down");
    expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);
  }, SLOW);

  it("a holder killed outright leaves its lock file but no lock: the next process opens the database", async () => {
    const { dataDir } = await workDir();
    const holder = startDeno("tests/helpers/hold-data-dir.ts", [dataDir], {});
    await eventually(async () => (holder.output().includes("held") ? true : undefined), 30_000);
    await stopProcess(holder, "SIGKILL");
    expect((await lockOf(dataDir)).pid).toBe(holder.child.pid);

    const res = await token("dave@example.com", dataDir);
    expect(res.code).toBe(0);
    expect(res.stderr).toContain("in the embedded PGlite");
    expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false);
  }, SLOW);
});

/** `sh scripts/try-it.sh`, the README's "Try it", as a user pastes it into a shell. */
function tryIt(env: Record<string, string | undefined>) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile("sh", ["scripts/try-it.sh"], { cwd: ROOT, env: { ...process.env, ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? (err as { code?: number }).code ?? 1 : 0, stdout, stderr }));
  });
}

describe("a fresh npm start, used as the README shows", () => {
  let started: Awaited<ReturnType<typeof startServer>>;
  let dataDir: string;
  beforeAll(async () => {
    ({ dataDir } = await workDir());
    started = await startServer({ SIGYL_DATA_DIR: dataDir, DATABASE_URL: undefined });
  }, SLOW);
  afterAll(async () => {
    if (started) expect(await stopProcess(started.server)).toBe(0);
  });

  it("Try it runs step by step: ids captured, Bob reads what Alice shared, the trail shows it, and it runs again", async () => {
    expect(started.server.output()).toContain(`walk-through: PORT=${started.port} sh scripts/try-it.sh`);
    const env = { PORT: String(started.port), SIGYL_DATA_DIR: dataDir, DATABASE_URL: undefined };
    const res = await tryIt(env);
    expect(res.stderr).not.toMatch(/curl: \(\d+\)/);
    expect(res.code).toBe(0);
    const [health, aliceReads, grant, bobReads, audit, deleted, ...rest] = res.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(rest).toEqual([]);
    expect(health.data.status).toBe("ok");
    const created = JSON.parse(res.stderr.split("\n").find((l) => l.startsWith('{"success":true'))!);
    expect(created.data).toMatchObject({ name: "OPENAI_API_KEY", secretType: "api_key", tags: ["prod"] });
    const id = created.data.id;
    expect(aliceReads.data).toMatchObject({ id, value: "sk-live-123" });
    expect(grant.data).toMatchObject({ email: "bob@example.com", permission: "read" });
    expect(bobReads.data).toMatchObject({ id, value: "sk-live-123" });
    expect(audit.data.items.map((e: { action: string }) => e.action)).toEqual(["accessed", "shared", "accessed", "created"]);
    expect(audit.data.items.every((e: { secretId: string }) => e.secretId === id)).toBe(true);
    expect(deleted.data).toMatchObject({ id, status: "deleted" });

    const again = await tryIt(env);
    expect(again.code).toBe(0);
  }, SLOW);

  it("answers normal requests without a word on stderr (no Deno warning about request.signal)", async () => {
    const { base, port, server } = started;
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect((await fetch(base)).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${port}/nowhere`)).status).toBe(404);
    const { token: bearer } = await token("erin@example.com", dataDir);
    const headers = { authorization: `Bearer ${bearer}`, "content-type": "application/json" };
    const created = await fetch(base, { method: "POST", headers, body: JSON.stringify({ name: "QUIET", value: "no-warning-value" }) });
    expect(created.status).toBe(201);
    const { data } = await created.json();
    expect((await (await fetch(`${base}/${data.id}/value`, { headers })).json()).data.value).toBe("no-warning-value");
    await new Promise((r) => setTimeout(r, 500)); // Deno warns once a response has gone out
    expect(server.stderr()).toBe("");
  }, SLOW);
});

describe("the README's Try it", () => {
  it("is scripts/try-it.sh below its header line, so the block that is pasted is the one tested", async () => {
    const readme = await readFile(join(ROOT, "README.md"), "utf8");
    const block = readme.split("### Try it")[1].split("```sh\n")[1].split("\n```")[0];
    const script = (await readFile(join(ROOT, "scripts/try-it.sh"), "utf8")).split(/^# -{20,}\n/m)[1];
    expect(script, "try-it.sh has its header line").toBeDefined();
    expect(block.trim()).toBe(script.trim());
  });
});

describe("Try it with the server stopped", () => {
  it("fails at its first step with curl's error in sight and creates nothing", async () => {
    const { dir, dataDir } = await workDir();
    const res = await tryIt({ PORT: String(await freePort()), SIGYL_DATA_DIR: dataDir, DATABASE_URL: undefined });
    expect(res.code).not.toBe(0);
    expect(res.stdout.trim()).toBe("");
    expect(res.stderr).toMatch(/curl: \(7\) Failed to connect to 127\.0\.0\.1 port \d+/);
    expect(await readdir(dir)).toEqual([]);
  }, SLOW);
});

describe("skipped suites", () => {
  const testFiles = async () =>
    (await readdir(join(ROOT, "tests"), { recursive: true })).filter((f) => f.endsWith(".test.ts")).map((f) => join("tests", f));

  it("skip only through tests/helpers/skip.ts, which prints the reason", async () => {
    for (const file of await testFiles()) {
      const source = await readFile(join(ROOT, file), "utf8");
      expect(source, file).not.toMatch(/\b(describe|it|test)\.(skip|skipIf|runIf|todo)\b/);
    }
  });

  it("print `[sigyl tests] skipped: <suite>: <reason>` without DATABASE_URL", async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" };
    delete env.DATABASE_URL;
    for (const key of Object.keys(env)) if (key.startsWith("VITEST")) delete env[key];
    const files = ["tests/foundation/migrations.test.ts", "tests/foundation/health.test.ts", "tests/foundation/pg-cron.test.ts",
      "tests/foundation/local-server.test.ts", "tests/lifecycle/jobs.test.ts"];
    const { stdout } = await promisify(execFile)(join(ROOT, "node_modules", ".bin", "vitest"),
      ["run", ...files, "--testNamePattern", "^no test has this name$"], { cwd: ROOT, env });
    const lines = stdout.split("\n").filter((l) => l.startsWith("[sigyl tests] skipped:")).sort();
    expect(lines).toEqual([
      "[sigyl tests] skipped: health against PostgreSQL through a proxy that goes down and up: needs DATABASE_URL (PostgreSQL)",
      "[sigyl tests] skipped: is trimmed past its retention when pg_cron is installed, for our jobs only: needs DATABASE_URL (PostgreSQL)",
      "[sigyl tests] skipped: migrations on PostgreSQL with the real Supabase CLI: needs DATABASE_URL (PostgreSQL)",
      "[sigyl tests] skipped: npm start on PostgreSQL: needs DATABASE_URL (PostgreSQL)",
      "[sigyl tests] skipped: pg_cron: needs DATABASE_URL (PostgreSQL with pg_cron)",
    ]);
  }, SLOW);
});
