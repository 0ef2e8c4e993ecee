/**
 * `npm run audit:verify`: recomputes the audit trail's hash chains and reports the first broken
 * link (a row deleted, edited, moved, or the newest rows or the whole table gone), as JSON on
 * stdout: `{ ok, checkedRows, firstBroken, broken, brokenCount, heads, checkpointHeads }`.
 * Exit status 0 when the trail verifies, 1 when a link is broken, 2 when it could not verify.
 *
 * `--checkpoint FILE`: FILE is an earlier run's output (or `{ "heads": [...] }`); every head it
 * holds must still be in the trail, unchanged. That catches an owner who rewrote a chain and
 * its head consistently, which the database alone cannot. Keep the output of a clean run
 * somewhere the database's owner cannot write (a SIEM, another host) and pass it next time.
 *
 * Where it runs: PGlite is one process at a time, so with `npm start` holding the data dir it
 * asks that server (POST /admin/audit/verify, as the service role, found through the data
 * dir's lock file); otherwise it opens the database the configuration names (the PGlite data
 * dir, or DATABASE_URL) and runs the same service in-process, as the service role. Either way
 * in bounded parts, following `nextCursor` until the walk is finished, and the output joins
 * them (the heads and the checkpoint comparison are the first part's).
 *
 * It changes nothing: no migration, no role altered, no data dir created. A database without
 * the audit trail's schema (never migrated, or not this project's) is exit 2.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { createAuditService } from "../shared/audit/audit-service.ts";
import { chainHead, MAX_CHECKPOINT_HEADS, type VerifyResultDto } from "../shared/audit/audit-schemas.ts";
import { ConfigError, loadConfig } from "../shared/config.ts";
import type { CallerContext } from "../shared/db/database.ts";
import { dataDirHolder } from "./lib/data-dir-lock.ts";
import { dataDirPath, openDatabase, readLocalKeys, signServiceToken } from "./lib/local.ts";

function fail(message: string): never {
  console.error(`sigyl audit: ${message}`);
  Deno.exit(2);
}

const { values } = parseArgs({ args: Deno.args, options: { checkpoint: { type: "string" } } });

const config = (() => {
  try {
    return loadConfig(Deno.env.toObject());
  } catch (err) {
    fail(err instanceof ConfigError ? err.message : String(err));
  }
})();

/** The heads of the checkpoint file, checked as the route checks them. */
async function readCheckpoint(path: string) {
  const text = await readFile(path, "utf8").catch((err) => fail(`cannot read ${path}: ${(err as Error).message}`));
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    fail(`${path} is not JSON (pass an earlier run's output)`);
  }
  const parsed = z.object({ heads: z.array(chainHead.strip()) }).safeParse(json);
  if (!parsed.success) fail(`${path} holds no valid "heads" (pass an earlier run's output)`);
  return parsed.data.heads;
}

const checkpoint = values.checkpoint ? await readCheckpoint(values.checkpoint) : undefined;

/** Calls `part` with each `nextCursor` until the walk is finished, and joins the parts. */
async function wholeRun(part: (cursor: string | undefined) => Promise<VerifyResultDto>): Promise<VerifyResultDto> {
  const first = await part(undefined);
  const result: VerifyResultDto = { ...first, broken: [...first.broken] };
  let next = first;
  while (!next.finished) {
    next = await part(next.nextCursor!);
    result.checkedRows += next.checkedRows;
    result.brokenCount += next.brokenCount;
    result.broken.push(...next.broken);
    result.ok &&= next.ok;
  }
  result.broken.sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : BigInt(a.id) > BigInt(b.id) ? 1 : 0));
  result.broken = result.broken.slice(0, 100);
  result.firstBroken = result.broken[0] ?? null;
  result.finished = true;
  result.nextCursor = null;
  return result;
}

/** Through the server holding the PGlite data dir, or null when none does. */
async function throughServer(): Promise<{ result: VerifyResultDto; where: string } | null> {
  if (config.databaseUrl) return null;
  const url = dataDirHolder(dataDirPath(config))?.url;
  if (!url) return null;
  const headers: Record<string, string> = { "content-type": "application/json" };
  const secretKey = (await readLocalKeys(config).catch(() => null))?.secretKey ?? config.auth.serviceKeys[0];
  if (secretKey) headers.apikey = secretKey;
  else if (config.auth.jwtSecret) headers.authorization = `Bearer ${await signServiceToken(config.auth.jwtSecret)}`;
  else fail("the local server holds the database, and there is no service key to ask it with");
  if ((checkpoint?.length ?? 0) > MAX_CHECKPOINT_HEADS) {
    fail(`a checkpoint of more than ${MAX_CHECKPOINT_HEADS} heads is compared in-process only: stop the server first`);
  }
  let reached = false;
  try {
    const result = await wholeRun(async (cursor) => {
      let res: Response;
      try {
        res = await fetch(`${url}/functions/v1/secrets/admin/audit/verify`, {
          method: "POST", headers, body: JSON.stringify(cursor ? { cursor } : { checkpoint: checkpoint ?? [] }),
        });
      } catch (err) {
        if (!reached) throw new NotListening();
        throw err;
      }
      reached = true;
      const body = await res.json().catch(() => null);
      if (!res.ok || !body?.success) fail(`the server refused the verification (${res.status} ${body?.error?.code ?? "no JSON body"})`);
      return body.data as VerifyResultDto;
    });
    return { result, where: `the server at ${url}` };
  } catch (err) {
    if (err instanceof NotListening) return null; // the lock file names a server that no longer listens
    fail(`the verification through ${url} stopped: ${(err as Error).message}`);
  }
}

class NotListening extends Error {}

/** The functions this verification calls, as the migrations define them. */
const AUDIT_SCHEMA = [
  "private.verify_audit_chain(int, bigint, text, bigint, int)", "private.audit_chain_heads()", "private.audit_chains",
];

async function inProcess(): Promise<{ result: VerifyResultDto; where: string }> {
  // Opening PGlite on a missing data dir would create an empty database there.
  if (!config.databaseUrl && !existsSync(join(dataDirPath(config), "PG_VERSION"))) {
    fail(`no database at ${dataDirPath(config)} (run npm start once to create and migrate it)`);
  }
  const db = await openDatabase(config).catch((err) => fail((err as Error).message));
  try {
    const [found] = await db.query<{ missing: string[] }>(
      `select coalesce(array_agg(f) filter (where coalesce(to_regprocedure(f)::text, to_regclass(f)::text) is null), '{}') as missing
         from unnest($1::text[]) f`,
      [AUDIT_SCHEMA],
    ).catch((err) => fail(`cannot read the schema of ${db.location}: ${(err as Error).message}`));
    if (found.missing.length) {
      fail(`${db.location} has no audit trail schema (missing ${found.missing.join(", ")}): migrate it first; this tool changes nothing`);
    }
    // As the service role, exactly as the route runs it.
    const ctx: CallerContext = { role: "service_role", claims: { role: "service_role" }, headers: {} };
    const service = createAuditService({ db });
    const result = await wholeRun((cursor) => service.verify(ctx, cursor ? { cursor } : checkpoint ? { checkpoint } : {}));
    return { result, where: db.location };
  } finally {
    await db.close().catch(() => {});
  }
}

const { result, where } = await throughServer() ?? await inProcess();
console.log(JSON.stringify(result, null, 2));
if (result.ok) {
  console.error(`sigyl audit: ${result.checkedRows} rows in ${result.heads!.length} chains verify (${where})` +
    (result.checkpointHeads !== null ? `; all ${result.checkpointHeads} checkpoint heads match` : ""));
} else {
  const b = result.firstBroken!;
  console.error(`sigyl audit: BROKEN (${where}): ${result.brokenCount} broken link(s); first: ` +
    `chain ${b.chain ?? "none"}, id ${b.id}, ${b.reason}`);
}
Deno.exit(result.ok ? 0 : 1);
