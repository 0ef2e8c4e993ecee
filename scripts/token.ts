/**
 * `npm run token -- alice@example.com` prints an access token for a local user, shaped like
 * Supabase Auth's (HS256, role/aud authenticated, sub, email, session_id, iat, exp), after
 * creating the auth.users row if missing. `npm run token -- --service` prints a service-role
 * token. Only the token goes to stdout: `TOKEN=$(npm run -s token -- alice@example.com)`.
 * Options: --expires-in SECONDS (default 3600).
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../shared/config.ts";
import { ensureUser, migrateLocal, openDatabase, signServiceToken, signUserToken } from "./lib/local.ts";

function fail(message: string): never {
  console.error(`sigyl token: ${message}`);
  Deno.exit(1);
}

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: { service: { type: "boolean", default: false }, "expires-in": { type: "string", default: "3600" } },
});
const expiresInSeconds = Number(values["expires-in"]);
if (!Number.isInteger(expiresInSeconds) || expiresInSeconds < 1) fail("--expires-in must be a positive number of seconds");

const config = loadConfig(Deno.env.toObject());
if (!config.auth.jwtSecret) fail("local tokens need SUPABASE_JWT_SECRET (this project uses JWKS)");
const secret = config.auth.jwtSecret;

if (values.service) {
  console.log(await signServiceToken(secret, { expiresInSeconds }));
  Deno.exit(0);
}

const email = positionals[0];
if (!email || !/^[^@\s]+@[^@\s]+$/.test(email)) fail("usage: npm run token -- EMAIL [--expires-in SECONDS] | --service");

/** Through the running local server when there is one (it holds the PGlite data open). */
async function viaServer(): Promise<{ id: string; email: string } | null> {
  try {
    const res = await fetch(`http://${config.host}:${config.port}/auth/v1/admin/users`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${await signServiceToken(secret)}` },
      body: JSON.stringify({ email }),
    });
    if (!res.ok) fail(`the local server refused to create the user (${res.status})`);
    return await res.json();
  } catch (err) {
    if (err instanceof TypeError) return null; // nothing listening
    throw err;
  }
}

let user = await viaServer();
if (!user) {
  const db = await openDatabase(config).catch((err) => fail((err as Error).message));
  try {
    await migrateLocal(db);
    user = await ensureUser(db, email);
  } finally {
    await db.close();
  }
}
console.error(`sigyl token: ${user.email} (${user.id}), expires in ${expiresInSeconds}s`);
console.log(await signUserToken(secret, user, { expiresInSeconds }));
