/**
 * The soak's resources: a database of its own, `sigyl_soak_<tag>`, on the DATABASE_URL server
 * (created, migrated, dropped at the end), a scratch data dir for the local platform's keys, and
 * `npm start` (scripts/serve.ts) on a free loopback port against them, as a user runs it. Only
 * loopback servers are accepted: the soak creates and drops a database and floods the server.
 */
import { join } from "node:path";
import type { Database } from "../../shared/db/database.ts";
import { createPostgresDatabase, isLocalHost, urlHosts } from "../../shared/db/postgres.ts";
import { migrateLocal, ROOT } from "./local.ts";
import { eventually } from "./poll.ts";

/** Why DATABASE_URL cannot be soaked, or null when it can (set, PostgreSQL, loopback only). */
export function refuseTarget(url: string | undefined): string | null {
  if (!url) {
    return "needs a local PostgreSQL server (set DATABASE_URL, e.g. postgresql://postgres@127.0.0.1:5432/postgres); " +
      "embedded PGlite serves one connection inside the server process, so a soak on it would describe nothing that runs in production";
  }
  if (!/^postgres(ql)?:\/\//.test(url)) return "DATABASE_URL must be a postgresql:// URL";
  let hosts;
  try {
    hosts = urlHosts(url);
  } catch (err) {
    return (err as Error).message;
  }
  const remote = hosts.map((h) => h.host).filter((h) => !isLocalHost(h));
  if (remote.length) return `refusing ${remote.join(", ")}: the soak runs against loopback addresses only`;
  return null;
}

/** Keeps the last `limit` characters of a stream, for the message of a crash. */
function tail(stream: ReadableStream<Uint8Array>, limit = 20_000) {
  let text = "";
  (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) text = (text + decoder.decode(chunk, { stream: true })).slice(-limit);
  })().catch(() => {});
  return () => text;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

export interface SoakServer {
  origin: string;
  base: string;
  pid: number;
  output(): string;
  exited(): boolean;
  /** Resident memory of the server process, in MB, from /proc (null where there is none). */
  rssMb(): number | null;
}

export interface SoakRun {
  tag: string;
  url: string;
  dataDir: string;
  db: Database;
  pgVersion: string;
  server: SoakServer;
  cleanup(): Promise<void>;
}

/** Reads VmRSS of a process, in MB. */
export function rssOf(pid: number): number | null {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kb = status.match(/^VmRSS:\s+(\d+)\s+kB/m);
    return kb ? Number(kb[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** Creates the database and data dir, starts the server; `cleanup()` undoes all of it, once. */
export async function startSoak(databaseUrl: string, log: (msg: string) => void): Promise<SoakRun> {
  const tag = crypto.randomUUID().replace(/-/g, "").slice(0, 10);
  const name = `sigyl_soak_${tag}`;
  const admin = createPostgresDatabase(databaseUrl, { max: 1 });
  const url = new URL(databaseUrl);
  url.pathname = `/${name}`;
  let db: Database | null = null;
  let child: Deno.ChildProcess | null = null;
  let exited = false;
  let created = false;
  const dataDir = await Deno.makeTempDir({ prefix: "sigyl-soak-" });
  let cleaning: Promise<void> | null = null;
  const cleanup = () =>
    cleaning ??= (async () => {
      if (child && !exited) {
        child.kill("SIGINT");
        const stopped = await Promise.race([child.status.then(() => true), new Promise((r) => setTimeout(() => r(false), 10_000))]);
        if (!stopped) child.kill("SIGKILL");
        await child.status.catch(() => {});
      }
      await db?.close().catch(() => {});
      if (created) {
        await admin.query(`drop database if exists ${name} with (force)`).catch((err) =>
          console.error(`soak: could not drop ${name}: ${(err as Error).message}`)
        );
      }
      await admin.close().catch(() => {});
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    })();

  try {
    log(`creating database ${name}`);
    await admin.query(`create database ${name}`);
    created = true;
    db = createPostgresDatabase(url.toString(), { max: 4 });
    const { total } = await migrateLocal(db);
    const [{ version }] = await db.query<{ version: string }>(`select version()`);
    log(`migrated (${total} migrations); starting npm start's server`);

    const port = freePort();
    const origin = `http://127.0.0.1:${port}`;
    child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", join(ROOT, "scripts", "serve.ts")],
      cwd: ROOT,
      env: { ...Deno.env.toObject(), DATABASE_URL: url.toString(), SIGYL_DATA_DIR: dataDir, HOST: "127.0.0.1", PORT: String(port), NO_COLOR: "1" },
      stdin: "null", stdout: "piped", stderr: "piped",
    }).spawn();
    child.status.then(() => exited = true);
    const out = tail(child.stdout);
    const err = tail(child.stderr);
    const output = () => `${out()}${err()}`;
    const base = `${origin}/functions/v1/secrets`;
    await eventually(async () => {
      if (exited) throw new Error(`the server exited: ${output().slice(-2000)}`);
      const res = await fetch(`${base}/health`);
      await res.body?.cancel();
      return res.status === 200 ? true : undefined;
    }, 90_000, 200, "the server did not answer /health");
    const pid = child.pid;
    const server: SoakServer = { origin, base, pid, output, exited: () => exited, rssMb: () => rssOf(pid) };
    return { tag, url: url.toString(), dataDir, db, pgVersion: version, server, cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
