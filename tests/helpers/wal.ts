/**
 * Reads what a PostgreSQL server on this machine wrote to its WAL, straight from the segment
 * files under its data directory, to check that a key never reached it in any encoding.
 * Whole segment files are scanned (every record, full-page images included, uncompressed when
 * `wal_compression` is off), so a scan covers at least the records between two LSNs.
 */
import { access, readdir, readFile } from "node:fs/promises";
import { constants } from "node:fs";
import { join } from "node:path";
import type { Queryable } from "../../shared/db/database.ts";

/** Why this process cannot read the server's WAL, or null when it can. Needs a superuser connection. */
export async function walUnreadableReason(db: Queryable): Promise<string | null> {
  const [row] = await db.query<{ super: boolean }>(`select rolsuper as super from pg_roles where rolname = current_user`);
  if (!row?.super) return "needs a superuser connection (to find the data directory)";
  const dir = await walDir(db);
  try {
    await access(dir, constants.R_OK | constants.X_OK);
    const [{ name }] = await db.query<{ name: string }>(`select pg_walfile_name(pg_current_wal_lsn()) as name`);
    await access(join(dir, name), constants.R_OK);
    return null;
  } catch (err) {
    return `cannot read the server's WAL at ${dir} from this process (${(err as { code?: string }).code ?? err}); ` +
      "run the tests on the database machine as root or postgres";
  }
}

async function walDir(db: Queryable): Promise<string> {
  const [{ dir }] = await db.query<{ dir: string }>(`select current_setting('data_directory') as dir`);
  return join(dir, "pg_wal");
}

/** The server's current WAL insert position. */
export async function currentLsn(db: Queryable): Promise<string> {
  const [{ lsn }] = await db.query<{ lsn: string }>(`select pg_current_wal_lsn()::text as lsn`);
  return lsn;
}

/**
 * The WAL segment files that hold the records from `from` to `to`, once they are flushed to
 * disk (a commit flushes its own records, an asynchronous one within moments).
 */
export async function walBetween(db: Queryable, from: string, to: string): Promise<Buffer[]> {
  for (let i = 0; ; i++) {
    const [{ flushed }] = await db.query<{ flushed: boolean }>(
      `select pg_current_wal_flush_lsn() >= $1::pg_lsn as flushed`, [to]);
    if (flushed) break;
    if (i > 50) throw new Error(`the WAL up to ${to} was not flushed`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const [names] = await db.query<{ first: string; last: string }>(
    `select pg_walfile_name($1::pg_lsn) as first, pg_walfile_name($2::pg_lsn) as last`, [from, to]);
  const dir = await walDir(db);
  const timeline = names.first.slice(0, 8);
  const segments = (await readdir(dir))
    .filter((f) => /^[0-9A-F]{24}$/.test(f) && f.startsWith(timeline) && f >= names.first && f <= names.last)
    .sort();
  if (segments[0] !== names.first || segments.at(-1) !== names.last) {
    throw new Error(`WAL segments ${names.first}..${names.last} are not all in ${dir} (recycled?)`);
  }
  return Promise.all(segments.map((f) => readFile(join(dir, f))));
}

/** A key in the encodings it could be written in: its bytes, base64 (standard and URL-safe) and hex. */
export function keyEncodings(keyBase64: string): Record<string, Buffer> {
  const raw = Buffer.from(keyBase64, "base64");
  return {
    raw,
    base64: Buffer.from(raw.toString("base64")),
    base64url: Buffer.from(raw.toString("base64url")),
    hex: Buffer.from(raw.toString("hex")),
    HEX: Buffer.from(raw.toString("hex").toUpperCase()),
  };
}

/**
 * The encodings of a key found in the WAL. A record that crosses a WAL page boundary has a
 * page header in the middle, so a key written whole may lie there in two parts, the longer
 * at least half of it: windows of 16 characters (12 bytes of the raw key) every 4 positions
 * always fit whole in that half.
 */
export function keyTraces(wal: Buffer[], keyBase64: string): string[] {
  return Object.entries(keyEncodings(keyBase64))
    .filter(([name, encoded]) => walHolds(wal, encoded, name === "raw" ? 12 : 16))
    .map(([name]) => name);
}

/**
 * Whether the WAL holds `bytes`, allowing for a page header in the middle: true when any
 * window of `width` bytes, taken every 4 positions, is there whole.
 */
export function walHolds(wal: Buffer[], bytes: Buffer, width = 16): boolean {
  const windows: Buffer[] = [];
  for (let i = 0; i + width <= bytes.length; i += 4) windows.push(bytes.subarray(i, i + width));
  if (windows.length === 0) windows.push(bytes);
  return wal.some((segment) => windows.some((w) => segment.includes(w)));
}
