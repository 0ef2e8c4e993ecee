/**
 * The `sigyl` CLI as a user runs it: `node bin/sigyl.mjs …` as a child process, against a real
 * `npm start` (embedded PGlite in a temp data dir; a database of its own on PostgreSQL when
 * DATABASE_URL is set), with a temp HOME and working directory that a suite can scan for
 * anything the CLI must never write. Users and deployments are made in the database before
 * the server starts (the platform writes deployments by SQL; a PGlite data dir has one process
 * at a time); everything else goes through the CLI.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Database } from "../../shared/db/database.ts";
import { createPgliteDatabase } from "../../shared/db/pglite.ts";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";
import { ensureUser, LOCAL_KEYS_FILE, localSigner, migrateLocal, ROOT, signUserToken } from "../../scripts/lib/local.ts";
import { type Started, startServer, stopProcess } from "../helpers/processes.ts";

export const BIN = join(ROOT, "bin", "sigyl.mjs");
export const PROBE = join(ROOT, "tests", "cli", "fixtures", "env-probe.mjs");

export interface CliUser {
  id: string;
  email: string;
  token: string;
}

export interface CliServer {
  url: string;
  origin: string;
  keys: { publishableKey: string; secretKey: string };
  users: Record<string, CliUser>;
  /** Deployment ids by name, each with nothing required, as `deployments` asked for. */
  deployments: Record<string, string>;
  /** A temp HOME (config under HOME/.config) and working directory for every CLI run. */
  home: string;
  cwd: string;
  serverOutput: () => string;
  close: () => Promise<void>;
}

/**
 * Starts the server with `users` (by name) and `deployments` (by name: the owner's name and a
 * status, `running` by default) made first.
 */
export async function startCliServer(options: {
  users: string[];
  deployments?: Record<string, { owner: string; status?: string }>;
}): Promise<CliServer> {
  const run = Math.random().toString(36).slice(2, 8);
  const dataDir = await mkdtemp(join(tmpdir(), "sigyl-cli-data-"));
  const home = await mkdtemp(join(tmpdir(), "sigyl-cli-home-"));
  const cwd = await mkdtemp(join(tmpdir(), "sigyl-cli-cwd-"));
  let databaseUrl: string | undefined;
  let dropDatabase: (() => Promise<void>) | undefined;
  let db: Database;
  if (process.env.DATABASE_URL) {
    const admin = createPostgresDatabase(process.env.DATABASE_URL, { max: 1 });
    const name = `sigyl_cli_${run}`;
    await admin.query(`create database ${name}`);
    const url = new URL(process.env.DATABASE_URL);
    url.pathname = `/${name}`;
    databaseUrl = url.toString();
    dropDatabase = async () => {
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.close();
    };
    db = createPostgresDatabase(databaseUrl, { max: 2 });
  } else {
    db = await createPgliteDatabase({ dataDir });
  }
  const made: Record<string, { id: string; email: string }> = {};
  const deployments: Record<string, string> = {};
  try {
    await migrateLocal(db);
    for (const name of options.users) made[name] = await ensureUser(db, `${name}-${run}@example.com`);
    for (const [name, { owner, status = "running" }] of Object.entries(options.deployments ?? {})) {
      const [row] = await db.query<{ id: string }>(
        `insert into public.deployments (user_id, name, required_env, status) values ($1, $2, '{}', $3) returning id`,
        [made[owner].id, `${name}-${run}`, status],
      );
      deployments[name] = row.id;
    }
  } finally {
    await db.close();
  }

  let server: Started | undefined;
  try {
    const started = await startServer({ SIGYL_DATA_DIR: dataDir, DATABASE_URL: databaseUrl });
    server = started.server;
    const origin = `http://127.0.0.1:${started.port}`;
    const keys = JSON.parse(await readFile(join(dataDir, LOCAL_KEYS_FILE), "utf8"));
    const signer = await localSigner(keys);
    const users: Record<string, CliUser> = {};
    for (const [name, user] of Object.entries(made)) {
      users[name] = { ...user, token: await signUserToken(signer, user, { issuer: `${origin}/auth/v1` }) };
    }
    const s = server;
    return {
      url: `${origin}/functions/v1`, origin, keys, users, deployments, home, cwd,
      serverOutput: () => s.output() + s.stderr(),
      close: async () => {
        if (s.child.exitCode === null) await stopProcess(s);
        for (const dir of [dataDir, home, cwd]) await rm(dir, { recursive: true, force: true });
        await dropDatabase?.();
      },
    };
  } catch (err) {
    if (server && server.child.exitCode === null) await stopProcess(server);
    await dropDatabase?.();
    throw err;
  }
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Spawned {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  done: Promise<CliRun>;
}

/**
 * Spawns the CLI with only what a user's shell would hand it: PATH, the temp HOME, the server's
 * URL (unless `url: null`), and `env`. `input` is piped on stdin (else stdin is empty).
 */
export function spawnCli(
  server: Pick<CliServer, "url" | "home" | "cwd">,
  args: string[],
  options: { env?: Record<string, string | undefined>; input?: string; url?: string | null; home?: string } = {},
): Spawned {
  const env: Record<string, string> = { PATH: process.env.PATH!, HOME: options.home ?? server.home, NO_COLOR: "1" };
  if (options.url !== null) env.SIGYL_URL = options.url ?? server.url;
  for (const [k, v] of Object.entries(options.env ?? {})) if (v !== undefined) env[k] = v;
  const child = spawn(process.execPath, [BIN, ...args], { cwd: server.cwd, env, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  child.stdin!.end(options.input ?? "");
  const done = new Promise<CliRun>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal, stdout: out, stderr: err }))
  );
  return { child, stdout: () => out, stderr: () => err, done };
}

export const sigyl = (
  server: Pick<CliServer, "url" | "home" | "cwd">,
  args: string[],
  options: Parameters<typeof spawnCli>[2] = {},
): Promise<CliRun> => spawnCli(server, args, options).done;

/** Every file under `dir` (recursively) whose bytes contain `needle`, as paths. */
export async function filesContaining(dir: string, needles: string[]): Promise<string[]> {
  const hits: string[] = [];
  const walk = async (path: string) => {
    const info = await stat(path).catch(() => null);
    if (!info) return;
    if (info.isDirectory()) {
      for (const entry of await readdir(path)) await walk(join(path, entry));
      return;
    }
    const bytes = await readFile(path);
    for (const needle of needles) {
      for (const form of encodings(needle)) if (bytes.includes(form)) hits.push(`${path}: ${JSON.stringify(needle).slice(0, 40)}`);
    }
  };
  await walk(dir);
  return hits;
}

/** A value as text, hex and base64: how it could sit in a file. */
export function encodings(value: string): Buffer[] {
  const raw = Buffer.from(value, "utf8");
  return [raw, Buffer.from(raw.toString("hex")), Buffer.from(raw.toString("base64"))];
}

/** Resolves once `predicate(output)` holds, or rejects after `ms`. */
export async function waitFor(output: () => string, predicate: (text: string) => boolean, ms = 30_000, what = "output"): Promise<void> {
  const until = Date.now() + ms;
  while (!predicate(output())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; got:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
