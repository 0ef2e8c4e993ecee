/**
 * `npm run keys:rotate`: rotates the key-encryption key (KEK). The database creates the next
 * KEK in Vault and makes it active; every DEK is then re-wrapped under it, one batch at a
 * time, with a progress bar on stderr. Values are not re-encrypted and stay readable
 * throughout. Interrupted (Ctrl-C, a crash), run it again: it resumes the same rotation.
 *
 * With the local server running (`npm start`) it calls POST /admin/keys/rotate there as the
 * service role, one batch per call, since the server holds the database open. Otherwise it
 * runs the key service in-process against the database the configuration names (PGlite
 * under .sigyl/, or DATABASE_URL). Key material never passes through this script.
 *
 * Options: --batch-size N (1-5000, default 500). The outcome goes to stdout as JSON.
 */
import { parseArgs } from "node:util";
import { systemClock } from "../shared/clock.ts";
import { ConfigError, loadConfig } from "../shared/config.ts";
import { loadKeyringFromVault } from "../shared/crypto/vault-keyring.ts";
import { createKeyService } from "../shared/keys/key-service.ts";
import { DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, type RotationDto } from "../shared/keys/key-schemas.ts";
import { dataDirHolder } from "./lib/data-dir-lock.ts";
import { dataDirPath, migrateLocal, openDatabase, readLocalKeys, signServiceToken } from "./lib/local.ts";

const encoder = new TextEncoder();
const isTty = Deno.stderr.isTerminal();
const say = (text: string) => Deno.stderr.writeSync(encoder.encode(text));

function fail(message: string): never {
  if (isTty) say("\n");
  console.error(`sigyl keys: ${message}`);
  Deno.exit(1);
}

const { values } = parseArgs({
  args: Deno.args,
  options: { "batch-size": { type: "string", default: String(DEFAULT_BATCH_SIZE) } },
});
const batchSize = Number(values["batch-size"]);
if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH_SIZE) {
  fail(`--batch-size must be a whole number from 1 to ${MAX_BATCH_SIZE}`);
}

const config = (() => {
  try {
    return loadConfig(Deno.env.toObject());
  } catch (err) {
    fail(err instanceof ConfigError ? err.message : String(err));
  }
})();

/** One rotation step: at most one batch re-wrapped, as the route or the service reports it. */
type Step = () => Promise<RotationDto>;

/** Through the running local server, or null when nothing listens at HOST:PORT. */
async function serverStep(): Promise<{ step: Step; where: string } | null> {
  // As the service role: the local platform's secret key, sent as hosted callers send theirs.
  const headers: Record<string, string> = { "content-type": "application/json" };
  const secretKey = (await readLocalKeys(config).catch(() => null))?.secretKey ?? config.auth.serviceKeys[0];
  if (secretKey) headers.apikey = secretKey;
  else if (config.auth.jwtSecret) headers.authorization = `Bearer ${await signServiceToken(config.auth.jwtSecret)}`;
  else return null;
  // The server holding the PGlite data dir (whatever its PORT), else whatever serves HOST:PORT.
  const origin = await firstListening([
    config.databaseUrl ? undefined : dataDirHolder(dataDirPath(config))?.url,
    `http://${config.host}:${config.port}`,
  ]);
  if (!origin) return null;
  const url = `${origin}/functions/v1/secrets/admin/keys/rotate`;
  const step: Step = async () => {
    const res = await fetch(url, { method: "POST", headers, body: JSON.stringify({ batchSize, maxBatches: 1 }) });
    const body = await res.json().catch(() => null);
    if (!res.ok || !body?.success) {
      fail(`the server refused the rotation (${res.status} ${body?.error?.code ?? "no JSON body"})`);
    }
    return body.data as RotationDto;
  };
  return { step, where: `the server at ${origin}` };
}

/** The first origin whose health route answers at all. */
async function firstListening(origins: (string | undefined)[]): Promise<string | null> {
  for (const origin of origins) {
    if (!origin) continue;
    try {
      await fetch(`${origin}/functions/v1/secrets/health`).then((r) => r.body?.cancel());
      return origin;
    } catch (err) {
      if (!(err instanceof TypeError)) throw err; // TypeError: nothing listening there
    }
  }
  return null;
}

async function inProcessStep(): Promise<{ step: Step; where: string; close: () => Promise<void> }> {
  const db = await openDatabase(config).catch((err) => fail((err as Error).message));
  try {
    await migrateLocal(db);
    const keyring = await loadKeyringFromVault(db);
    const keys = createKeyService({
      db, keyring, clock: systemClock,
      log: (event, fields) => {
        if (isTty) say("\n");
        console.error(JSON.stringify({ level: "error", event, ...fields }));
      },
    });
    return { step: () => keys.rotate(null, { batchSize, maxBatches: 1 }), where: db.location, close: () => db.close() };
  } catch (err) {
    await db.close().catch(() => {});
    throw err;
  }
}

function draw(r: RotationDto, done: number) {
  const total = done + r.remaining;
  const ratio = total === 0 ? 1 : done / total;
  const width = 30;
  const filled = Math.round(ratio * width);
  const line = `KEK v${r.fromVersion} -> v${r.toVersion} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ` +
    `${String(Math.floor(ratio * 100)).padStart(3)}% ${done}/${total} DEKs re-wrapped`;
  say(isTty ? `\r${line}\x1b[K` : `${line}\n`);
}

const runner: { step: Step; where: string; close?: () => Promise<void> } = await serverStep() ?? await inProcessStep();
console.error(`sigyl keys: rotating through ${runner.where}, ${batchSize} DEKs per batch`);

let done = 0;
let idle = 0;
let last: RotationDto | undefined;
try {
  while (!last?.completed) {
    last = await runner.step();
    done += last.rewrapped;
    draw(last, done);
    // Nothing moved: rows held by another rotator (wait), or DEKs that do not unwrap (give up).
    idle = last.completed || last.rewrapped > 0 ? 0 : idle + 1;
    if (idle >= 5) break;
    if (idle > 0) await new Promise((r) => setTimeout(r, 200 * idle));
  }
} finally {
  await runner.close?.();
}
if (!last?.completed) {
  fail(`${last?.remaining} DEKs could not be re-wrapped (the log names them: rewrap_failed); ` +
    `the rotation stays open and resumes on the next run`);
}
if (isTty) say("\n");
console.error(`sigyl keys: KEK v${last.toVersion} is active; v${last.fromVersion} and older are retired (${done} DEKs re-wrapped)`);
console.log(JSON.stringify({ ...last, rewrapped: done }));
