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
 * Options: --batch-size N (1-5000, default 500). The outcome goes to stdout as JSON. The loop
 * and its progress bar are `sigyl keys rotate`'s (cli/keys-rotation.ts), which does the same
 * through any server's API.
 */
import { parseArgs } from "node:util";
import { createSigylClient, SigylApiError } from "../shared/client/client.ts";
import {
  apiRotationStep,
  completedMessage,
  incompleteMessage,
  rotateInBatches,
  type RotationStep,
} from "../cli/keys-rotation.ts";
import { systemClock } from "../shared/clock.ts";
import { ConfigError, loadConfig } from "../shared/config.ts";
import { loadKeyringFromVault } from "../shared/crypto/vault-keyring.ts";
import { createKeyService } from "../shared/keys/key-service.ts";
import { DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE } from "../shared/keys/key-schemas.ts";
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

/** Through the running local server, or null when nothing listens at HOST:PORT. */
async function serverStep(): Promise<{ step: RotationStep; where: string } | null> {
  // As the service role: the local platform's secret key, sent as hosted callers send theirs.
  const secretKey = (await readLocalKeys(config).catch(() => null))?.secretKey ?? config.auth.serviceKeys[0];
  const token = secretKey ? undefined : config.auth.jwtSecret ? await signServiceToken(config.auth.jwtSecret) : null;
  if (token === null) return null;
  // The server holding the PGlite data dir (whatever its PORT), else whatever serves HOST:PORT.
  const origin = await firstListening([
    config.databaseUrl ? undefined : dataDirHolder(dataDirPath(config))?.url,
    `http://${config.host}:${config.port}`,
  ]);
  if (!origin) return null;
  const api = createSigylClient({ url: `${origin}/functions/v1`, apikey: secretKey, token });
  const batch = apiRotationStep(api, batchSize);
  const step: RotationStep = async () => {
    try {
      return await batch();
    } catch (err) {
      if (!(err instanceof SigylApiError)) throw err;
      fail(`the server refused the rotation (${err.status} ${err.code})`);
    }
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

async function inProcessStep(): Promise<{ step: RotationStep; where: string; close: () => Promise<void> }> {
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

const runner: { step: RotationStep; where: string; close?: () => Promise<void> } = await serverStep() ?? await inProcessStep();
console.error(`sigyl keys: rotating through ${runner.where}, ${batchSize} DEKs per batch`);

let last;
try {
  last = await rotateInBatches(runner.step, { write: say, isTty });
} finally {
  await runner.close?.();
}
if (!last.completed) fail(incompleteMessage(last));
console.error(`sigyl keys: ${completedMessage(last)}`);
console.log(JSON.stringify(last));
