/**
 * `npm run token -- alice@example.com` prints an access token for a local user, shaped like
 * Supabase Auth's (ES256 under the `kid` of the key set `npm start` serves; role/aud
 * authenticated, sub, email, session_id, iat, exp), after creating the auth.users row if
 * missing. `npm run token -- --service` prints the service role's secret key (`sb_secret_…`),
 * which is what a hosted project's backend holds: send it as `apikey` (or as
 * `Authorization: Bearer`). Both come from the local keys in the data dir (made there if
 * missing; scripts/lib/local.ts). Only the token goes to stdout:
 * `TOKEN=$(npm run -s token -- alice@example.com)`.
 * Options: --expires-in SECONDS (default 3600); --wait SECONDS (default 60), how long to
 * wait for a server that holds the data dir but does not answer yet (it is starting).
 *
 * The user is created in the database the token will be used against:
 * - with DATABASE_URL, in that PostgreSQL, directly;
 * - otherwise through the server holding the PGlite data dir, whatever its PORT (the data
 *   dir's lock file names its URL), or else the server at HOST:PORT (one on PostgreSQL);
 * - with no server at all, in the PGlite data dir itself, under its lock.
 * It never opens a data dir another process holds: it waits for a server that is still
 * starting, and otherwise refuses in one line.
 */
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "../shared/config.ts";
import { type DataDirLock, DataDirInUse } from "./lib/data-dir-lock.ts";
import {
  dataDirPath,
  ensureUser,
  localKeys,
  localSigner,
  lockLocalDataDir,
  migrateLocal,
  openDatabase,
  readLocalKeys,
  signUserToken,
} from "./lib/local.ts";

type User = { id: string; email: string };

function fail(message: string): never {
  console.error(`sigyl token: ${message}`);
  Deno.exit(1);
}

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    service: { type: "boolean", default: false },
    "expires-in": { type: "string", default: "3600" },
    wait: { type: "string", default: "60" },
  },
});
const expiresInSeconds = Number(values["expires-in"]);
if (!Number.isInteger(expiresInSeconds) || expiresInSeconds < 1) fail("--expires-in must be a positive number of seconds");
const waitSeconds = Number(values.wait);
if (!Number.isInteger(waitSeconds) || waitSeconds < 0) fail("--wait must be a number of seconds");

const config = (() => {
  try {
    return loadConfig(Deno.env.toObject());
  } catch (err) {
    fail(err instanceof ConfigError ? err.message : String(err));
  }
})();

/** The local platform's keys (made now if the data dir has none), or one line saying why not. */
const keys = () => localKeys(config).catch((err) => fail((err as Error).message));

if (values.service) {
  console.error("sigyl token: the service role's secret key (send it as apikey, or Authorization: Bearer; it does not expire)");
  console.log((await keys()).secretKey);
  Deno.exit(0);
}

const email = positionals[0];
if (!email || !/^[^@\s]+@[^@\s]+$/.test(email)) fail("usage: npm run token -- EMAIL [--expires-in SECONDS] [--wait SECONDS] | --service");

/** Asks the local server at `origin` to create the user; null when nothing listens there. */
async function viaServer(origin: string): Promise<User | null> {
  // Read now, not once: a server starting meanwhile makes the keys before it answers.
  const headers: Record<string, string> = { "content-type": "application/json" };
  const secretKey = (await readLocalKeys(config).catch(() => null))?.secretKey;
  if (secretKey) headers.apikey = secretKey;
  let res: Response;
  try {
    res = await fetch(`${origin}/auth/v1/admin/users`, { method: "POST", headers, body: JSON.stringify({ email }) });
  } catch (err) {
    if (err instanceof TypeError) return null; // nothing listening
    throw err;
  }
  if (!res.ok) fail(`the server at ${origin} refused to create the user (${res.status})`);
  return await res.json();
}

async function inDatabase(lock?: DataDirLock): Promise<User> {
  const db = await openDatabase(config, { lock });
  try {
    await migrateLocal(db);
    return await ensureUser(db, email);
  } finally {
    await db.close();
  }
}

const host = config.host.includes(":") ? `[${config.host}]` : config.host;
const origin = `http://${host}:${config.port}`;

async function createUser(): Promise<{ user: User; where: string; server?: string }> {
  // PostgreSQL takes any number of clients: no server needed to share it.
  if (config.databaseUrl) return { user: await inDatabase(), where: "in the database at DATABASE_URL" };

  const waitUntil = Date.now() + waitSeconds * 1000;
  let waitingSaid = false;
  for (;;) {
    let lock: DataDirLock | undefined;
    let busy: DataDirInUse | undefined;
    try {
      // No directory, no database to share: nobody holds it yet.
      if (existsSync(dataDirPath(config))) lock = await lockLocalDataDir(config);
    } catch (err) {
      if (!(err instanceof DataDirInUse)) throw err;
      busy = err;
    }
    try {
      // The holder first: it serves this very database. Then HOST:PORT, which may serve PostgreSQL.
      for (const url of new Set([busy?.holder?.url, origin])) {
        const user = url ? await viaServer(url) : null;
        if (user) return { user, where: `through the server at ${url}`, server: url };
      }
      if (!busy) return { user: await inDatabase(lock), where: `in the embedded PGlite at ${config.dataDir} (no server is running)` };
    } catch (err) {
      if (!(err instanceof DataDirInUse)) throw err;
      busy = err; // a server took the directory meanwhile
    } finally {
      lock?.release();
    }
    if (Date.now() >= waitUntil) {
      fail(`the PGlite database at ${config.dataDir} is in use by ${busy?.holder ? `process ${busy.holder.pid}` : "another process"}, ` +
        `and no server answers for it; stop that process, or give this command the server's PORT (or DATABASE_URL if it uses PostgreSQL)`);
    }
    if (!waitingSaid) {
      waitingSaid = true;
      console.error(`sigyl token: waiting for the process holding ${config.dataDir} to start serving…`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const { user, where, server } = await createUser();
// Keys only now: a run that fails makes nothing in the data dir.
const signer = await localSigner(await keys());
console.error(`sigyl token: ${user.email} (${user.id}) ${where}, expires in ${expiresInSeconds}s`);
console.log(await signUserToken(signer, user, { expiresInSeconds, issuer: `${server ?? origin}/auth/v1` }));
