/**
 * One run's resources: its own database `sigyl_bench_<tag>` on the DATABASE_URL server (so the
 * role must be able to create databases and set session_replication_role, e.g. postgres), the
 * bench server and the load generator. `cleanup()` stops whatever was started and drops the
 * database, once, however the run ends: success, crash, signal or time limit.
 */
import type { Database } from "../../shared/db/database.ts";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";
import { migrateLocal } from "../../scripts/lib/local.ts";
import { exportJWK, generateKeyPair } from "jose";
import type { LocalSigner } from "../../scripts/lib/local.ts";
import { type BenchServer, FLOOR, type Loader, startLoader, startServer } from "./children.ts";
import { toBase64 as b64 } from "../../shared/bytes.ts";

export interface BenchRun {
  /** Random, lowercase alphanumeric; names the database and the run's fixtures. */
  tag: string;
  /** Creates the run's database and applies the platform stand-in and the migrations. */
  openDatabase(): Promise<{ db: Database; pgVersion: string; url: string }>;
  /**
   * Starts bench/server.ts and bench/floor-server.ts on the run's database, and bench/load.mjs.
   * Both servers verify user tokens as a hosted project's functions do: ES256 against the key
   * set in SUPABASE_JWKS, here a key pair made for the run (`signer` signs the tokens).
   */
  startChildren(): Promise<{ server: BenchServer; floor: BenchServer; loader: Loader; seedMaster: string; signer: LocalSigner; jwks: string }>;
  /** The bench server's output so far, for the report of a crash; null before it started. */
  serverOutput(): string | null;
  cleanup(): Promise<void>;
  /** Whether cleanup has begun (after an interrupt or the time limit, before the run's end). */
  closing(): boolean;
}

interface Held {
  db?: Database;
  server?: BenchServer;
  floor?: BenchServer;
  loader?: Loader;
  created: boolean;
}

export function createBenchRun(databaseUrl: string, log: (msg: string) => void): BenchRun {
  const admin = createPostgresDatabase(databaseUrl, { max: 1 });
  const tag = crypto.randomUUID().replace(/-/g, "").slice(0, 10);
  const dbName = `sigyl_bench_${tag}`;
  const benchUrl = new URL(databaseUrl);
  benchUrl.pathname = `/${dbName}`;
  const held: Held = { created: false };
  let cleaning: Promise<void> | null = null;

  return {
    tag,
    async openDatabase() {
      log(`creating database ${dbName}`);
      await admin.query(`create database ${dbName}`);
      held.created = true;
      const db = held.db = createPostgresDatabase(benchUrl.toString(), { max: 4 });
      const { total } = await migrateLocal(db);
      log(`migrated (${total} migrations)`);
      const [{ version: pgVersion }] = await db.query<{ version: string }>(`select version()`);
      return { db, pgVersion, url: benchUrl.toString() };
    },
    async startChildren() {
      const seedMaster = b64(crypto.getRandomValues(new Uint8Array(32)));
      const { publicKey, privateKey } = await generateKeyPair("ES256");
      const signer: LocalSigner = { kid: crypto.randomUUID(), privateKey };
      const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: signer.kid, alg: "ES256", use: "sig" }] };
      const env: Record<string, string> = {
        ...Deno.env.toObject(), DATABASE_URL: benchUrl.toString(), SIGYL_BENCH_SEED_MASTER: seedMaster, SUPABASE_JWKS: JSON.stringify(jwks),
      };
      delete env.SUPABASE_DB_URL;
      // Each is held as soon as it runs, so a failure of the other still stops it.
      const [server, floor, loader] = await Promise.all([
        startServer(env).then((s) => (held.server = s)),
        startServer(env, FLOOR).then((s) => (held.floor = s)),
        startLoader().then((l) => (held.loader = l)),
      ]);
      log(`server on ${server.base}; floor server on ${floor.base}; load generator: Node ${loader.node}, autocannon ${loader.autocannon}`);
      return { server, floor, loader, seedMaster, signer, jwks: env.SUPABASE_JWKS };
    },
    serverOutput: () => held.server?.output() ?? null,
    cleanup() {
      cleaning ??= release(admin, dbName, held);
      return cleaning;
    },
    closing: () => cleaning !== null,
  };
}

async function release(admin: Database, dbName: string, held: Held) {
  await held.loader?.close().catch(() => {});
  await held.server?.close().catch(() => {});
  await held.floor?.close().catch(() => {});
  await held.db?.close().catch(() => {});
  if (held.created) {
    await admin.query(`drop database if exists ${dbName} with (force)`).catch((err) =>
      console.error(`bench: could not drop ${dbName}: ${(err as Error).message}`)
    );
  }
  await admin.close().catch(() => {});
}

/**
 * Cleans up and exits on SIGINT/SIGTERM (130) and when the run exceeds its time limit (1).
 * Returns the function that disarms the time limit.
 */
export function guardRun(run: BenchRun, timeLimitS: number): () => void {
  const interrupt = () => {
    console.error("bench: interrupted; cleaning up");
    run.cleanup().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", interrupt);
  Deno.addSignalListener("SIGTERM", interrupt);
  const watchdog = setTimeout(() => {
    console.error(`bench: exceeded its ${timeLimitS} s limit; cleaning up`);
    run.cleanup().finally(() => Deno.exit(1));
  }, timeLimitS * 1000);
  return () => clearTimeout(watchdog);
}
