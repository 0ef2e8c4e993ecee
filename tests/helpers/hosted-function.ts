/**
 * Hosted conditions, reproduced from what a deploy uploads: the file set unpacked into an
 * empty directory; Deno's own tools run on it with an empty DENO_DIR (so npm packages come
 * from the registry, as on the platform, never from our node_modules); the function started
 * with only the variables the hosted runtime hands every function; a database prepared as a
 * hosted project is (the platform stand-in, then the migrations with `supabase db push`).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, normalize } from "node:path";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";
import type { Database } from "../../shared/db/database.ts";
import { apiRoleUrl, ROOT, STAND_IN_PATH } from "../../scripts/lib/local.ts";
import { API_ROLE } from "../../shared/config.ts";
import type { Upload } from "./management-api-mock.ts";
import { DENO, eventually, freePort } from "./processes.ts";

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], options: { cwd: string; env: Record<string, string | undefined>; timeoutMs?: number }): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 180_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Writes every uploaded file under a new empty directory, refusing paths that would leave it. */
export async function unpackUpload(upload: Upload): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "sigyl-upload-"));
  for (const [path, bytes] of upload.files) {
    const clean = normalize(path);
    if (isAbsolute(clean) || clean.startsWith("..")) throw new Error(`upload path leaves its directory: ${path}`);
    await mkdir(dirname(join(dir, clean)), { recursive: true });
    await writeFile(join(dir, clean), bytes);
  }
  return dir;
}

/** Where an unpacked function's tools start: its import map (a deno.json) and its entry. */
function configAndEntry(upload: Upload): string[] {
  const importMap = upload.metadata.import_map_path;
  return [...(importMap ? ["--config", importMap] : []), upload.metadata.entrypoint_path];
}

/**
 * A Deno tool (`check`, `info`, `bundle`) on the unpacked set, with `denoDir` as its cache.
 * These are the commands that download npm packages, so they (and only they) trust the
 * system's certificate store (DENO_TLS_CA_STORE=system), which this machine's network needs.
 */
export function denoTool(dir: string, denoDir: string, args: string[]): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("DENO_")));
  return run(DENO, args, { cwd: dir, env: { ...env, DENO_DIR: denoDir, DENO_TLS_CA_STORE: "system", NO_COLOR: "1" } });
}

/** `deno check` of the uploaded entry with the uploaded import map. */
export function checkUpload(dir: string, denoDir: string, upload: Upload): Promise<Run> {
  return denoTool(dir, denoDir, ["check", ...configAndEntry(upload)]);
}

async function treeBytes(path: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(path, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
  }
  return total;
}

export interface ModuleGraph {
  /** What `deno info` reports as the graph's size: local modules plus every npm package whole. */
  totalBytes: number;
  /** `deno info`'s own summary line, e.g. `7.76MB`. */
  reported: string;
  /** The graph's local files, relative to the unpacked directory. */
  localFiles: { path: string; bytes: number }[];
  npmPackages: { name: string; version: string; bytes: number }[];
}

/**
 * `deno info --json` of the uploaded entry. The JSON gives local module sizes and where each
 * npm package sits in the cache; like `deno info` itself, a package counts whole, whatever
 * is imported from it.
 */
export async function moduleGraph(dir: string, denoDir: string, upload: Upload): Promise<ModuleGraph> {
  const info = await denoTool(dir, denoDir, ["info", "--json", ...configAndEntry(upload)]);
  if (info.code !== 0) throw new Error(`deno info failed: ${info.stderr}`);
  const graph = JSON.parse(info.stdout) as {
    modules: { specifier: string; kind?: string; size?: number; error?: string }[];
    npmPackages?: Record<string, { name: string; version: string; localPath?: string }>;
  };
  const broken = graph.modules.filter((m) => m.error);
  if (broken.length) throw new Error(`unresolved modules: ${broken.map((m) => `${m.specifier}: ${m.error}`).join("; ")}`);
  const prefix = new URL(`file://${dir}/`).href;
  const localFiles = graph.modules
    .filter((m) => m.specifier.startsWith("file://"))
    .map((m) => ({ path: decodeURIComponent(m.specifier.slice(prefix.length)), bytes: m.size ?? 0 }));
  const npmPackages = await Promise.all(Object.values(graph.npmPackages ?? {}).map(async (p) => ({
    name: p.name, version: p.version, bytes: p.localPath ? await treeBytes(p.localPath) : 0,
  })));
  const totalBytes = localFiles.reduce((n, f) => n + f.bytes, 0) + npmPackages.reduce((n, p) => n + p.bytes, 0);
  const text = await denoTool(dir, denoDir, ["info", ...configAndEntry(upload)]);
  const reported = text.stdout.match(/^size:\s*(\S+)/m)?.[1] ?? "?";
  return { totalBytes, reported, localFiles, npmPackages };
}

/** `deno bundle` of the uploaded entry into one file (plain and minified); their sizes in bytes. */
export async function bundledSizes(dir: string, denoDir: string, upload: Upload): Promise<{ bytes: number; minifiedBytes: number }> {
  const out = await mkdtemp(join(tmpdir(), "sigyl-bundle-"));
  try {
    const sizes: number[] = [];
    for (const extra of [[], ["--minify"]]) {
      const file = join(out, `bundle${extra.length ? ".min" : ""}.js`);
      const bundled = await denoTool(dir, denoDir, ["bundle", "--platform", "deno", ...extra, "-o", file, ...configAndEntry(upload)]);
      if (bundled.code !== 0) throw new Error(`deno bundle failed: ${bundled.stderr}`);
      sizes.push((await stat(file)).size);
    }
    return { bytes: sizes[0], minifiedBytes: sizes[1] };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

/** A PostgreSQL database prepared as a hosted project is: the platform stand-in, then `supabase db push`. */
export interface HostedDatabase {
  name: string;
  /** The database's URL, as the platform hands it over in SUPABASE_DB_URL. */
  url: string;
  /**
   * The URL of the function's own login, sigyl_api, after the README's hosted step (`alter
   * role sigyl_api with login password …`; no password here: the server trusts loopback):
   * what `supabase secrets set DATABASE_URL=…` gives the function.
   */
  apiUrl: string;
  /** A superuser connection, for what the platform itself writes (auth.users, deployments). */
  db: Database;
  push: Run;
  drop(): Promise<void>;
}

export async function prepareHostedDatabase(adminUrl: string): Promise<HostedDatabase> {
  const admin = createPostgresDatabase(adminUrl, { max: 1 });
  const name = `sigyl_deploy_${randomBytes(5).toString("hex")}`;
  await admin.query(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  url.search = "";
  const db = createPostgresDatabase(url.toString(), { max: 2 });
  const drop = async () => {
    await db.close().catch(() => {});
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.close();
  };
  try {
    await db.exec(await readFile(STAND_IN_PATH, "utf8"));
    const pushUrl = new URL(url);
    pushUrl.searchParams.set("sslmode", "disable");
    const push = await run(join(ROOT, "node_modules", ".bin", "supabase"), ["db", "push", "--yes", "--db-url", pushUrl.toString()], {
      cwd: ROOT,
      env: { ...process.env, DO_NOT_TRACK: "1", SUPABASE_TELEMETRY_DISABLED: "1" },
    });
    if (push.code !== 0) throw new Error(`supabase db push failed: ${push.stderr}`);
    await db.exec(`alter role ${API_ROLE} with login`);
    return { name, url: url.toString(), apiUrl: apiRoleUrl(url.toString()), db, push, drop };
  } catch (err) {
    await drop();
    throw err;
  }
}

/** A Supabase project's keys, as the platform holds them, and tokens signed the way Supabase Auth signs them. */
export interface HostedProject {
  projectRef: string;
  url: string;
  /** The project's key set: public keys only. */
  jwks: { keys: JWK[] };
  secretKey: string;
  publishableKey: string;
  /** Legacy API keys: JWTs signed with the project's legacy HS256 secret (never given to functions). */
  anonKey: string;
  serviceRoleKey: string;
  /** An access token for a user, ES256 with the project's signing key. */
  userToken(user: { id: string; email: string }): Promise<string>;
  /** The same token shape signed by a key the project does not hold (same `kid`, or its own). */
  foreignUserToken(user: { id: string; email: string }, options?: { sameKid?: boolean }): Promise<string>;
  /** Exactly the variables the hosted edge runtime sets for every function. */
  env(databaseUrl: string): Record<string, string>;
}

const randomKey = (prefix: string) => `${prefix}${randomBytes(24).toString("base64url")}`;

export async function createHostedProject(options: { projectRef: string; url: string }): Promise<HostedProject> {
  const kid = randomUUID();
  const signing = await generateKeyPair("ES256", { extractable: true });
  const foreign = await generateKeyPair("ES256", { extractable: true });
  const publicJwk = { ...await exportJWK(signing.publicKey), kid, alg: "ES256", use: "sig", key_ops: ["verify"], ext: true };
  const legacySecret = new TextEncoder().encode(randomBytes(32).toString("base64url"));
  const legacyKey = (role: string) => {
    const iat = Math.floor(Date.now() / 1000);
    return new SignJWT({ iss: "supabase", ref: options.projectRef, role })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" }).setIssuedAt(iat).setExpirationTime(iat + 10 * 365 * 86_400)
      .sign(legacySecret);
  };
  const [anonKey, serviceRoleKey] = await Promise.all([legacyKey("anon"), legacyKey("service_role")]);
  const secretKey = randomKey("sb_secret_");
  const publishableKey = randomKey("sb_publishable_");

  const sign = (key: CryptoKey, keyId: string, user: { id: string; email: string }) => {
    const iat = Math.floor(Date.now() / 1000);
    return new SignJWT({
      email: user.email, role: "authenticated", aal: "aal1", session_id: randomUUID(), is_anonymous: false,
      app_metadata: { provider: "email", providers: ["email"] }, user_metadata: {},
    })
      .setProtectedHeader({ alg: "ES256", kid: keyId, typ: "JWT" })
      .setSubject(user.id).setAudience("authenticated").setIssuer(`${options.url}/auth/v1`)
      .setIssuedAt(iat).setExpirationTime(iat + 3600)
      .sign(key);
  };

  return {
    projectRef: options.projectRef,
    url: options.url,
    jwks: { keys: [publicJwk] },
    secretKey,
    publishableKey,
    anonKey,
    serviceRoleKey,
    userToken: (user) => sign(signing.privateKey, kid, user),
    foreignUserToken: (user, o = {}) => sign(foreign.privateKey, o.sameKid ? kid : randomUUID(), user),
    env: (databaseUrl) => ({
      SUPABASE_URL: options.url,
      SUPABASE_DB_URL: databaseUrl,
      SUPABASE_JWKS: JSON.stringify({ keys: [publicJwk] }),
      SUPABASE_SECRET_KEYS: JSON.stringify({ default: secretKey }),
      SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: publishableKey }),
      SUPABASE_ANON_KEY: anonKey,
      SUPABASE_SERVICE_ROLE_KEY: serviceRoleKey,
      SB_REGION: "us-east-1",
      SB_EXECUTION_ID: randomUUID(),
      DENO_DEPLOYMENT_ID: `${options.projectRef}_${randomUUID()}_1`,
    }),
  };
}

export interface HostedFunction {
  /** Where the runtime would route `/functions/v1/secrets`: the function sees paths from `/secrets`. */
  base: string;
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/**
 * `deno run` of the uploaded entry, in the unpacked directory, with exactly `env` (the hosted
 * variables) and two settings read by Deno itself, never by the function: DENO_DIR (the cache
 * `deno check` filled; `--cached-only` proves nothing is fetched at start) and
 * DENO_SERVE_ADDRESS, which makes the entry's plain `Deno.serve(app.fetch)` listen on a free
 * loopback port instead of 8000, as the edge runtime decides where a function listens.
 * Network and environment access only, as on the platform.
 */
export async function startHostedFunction(dir: string, denoDir: string, upload: Upload, env: Record<string, string>): Promise<HostedFunction> {
  const port = await freePort();
  const child = spawn(DENO, ["run", "--cached-only", "--allow-net", "--allow-env", ...configAndEntry(upload)], {
    cwd: dir,
    env: { ...env, DENO_DIR: denoDir, DENO_SERVE_ADDRESS: `tcp:127.0.0.1:${port}` },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await exited;
    }
  };
  const base = `http://127.0.0.1:${port}/secrets`;
  try {
    // Up once it answers at all (a failing boot exits, and says why).
    await Promise.race([
      eventually(() => fetch(`${base}/health`).then(() => true, () => undefined), 60_000, 200, "the function did not listen"),
      exited.then(() => Promise.reject(new Error(`the function exited (code ${child.exitCode}):\n${out}`))),
    ]);
  } catch (err) {
    await stop();
    throw err;
  }
  return { base, child, output: () => out, stop };
}
