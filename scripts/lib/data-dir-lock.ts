/**
 * One process at a time per PGlite data directory: two PGlite instances writing the same
 * files corrupt them. The lock is the operating system's (an exclusive `flock` on
 * `<dataDir>/sigyl.lock`, as `postmaster.pid` guards a PostgreSQL data directory), so it
 * ends with the process however the process ends: a crash or `kill -9` leaves no stale lock
 * to clean up, only a file the next holder overwrites. The file also says who holds the
 * directory: the pid and, once it listens, the server's URL, which is how `npm run token`
 * finds a server started on another PORT.
 *
 * Deno only (Node has no flock); every script that opens a data dir runs under Deno.
 */
import { join } from "node:path";

export const LOCK_FILE = "sigyl.lock";

/** What the lock file says about its holder. */
export interface DataDirHolder {
  pid: number;
  /** Where the holder answers HTTP, when it is a server that is listening. */
  url?: string;
}

export class DataDirInUse extends Error {
  constructor(readonly label: string, readonly holder: DataDirHolder | null) {
    const who = holder ? `process ${holder.pid}` : "another process";
    super(`the PGlite database at ${label} is in use by ${who} (another npm start?); stop it or set SIGYL_DATA_DIR`);
  }
}

export interface DataDirLock {
  readonly dataDir: string;
  /** Records the URL this process serves on, for `npm run token` and friends to find. */
  advertise(url: string): void;
  /** Unlocks and removes the lock file; idempotent. */
  release(): void;
}

/**
 * Takes the lock of `dataDir` (which must exist) or throws `DataDirInUse` naming the holder.
 * `label` is how messages show the directory (as the user configured it).
 */
export function lockDataDir(dataDir: string, label = dataDir): DataDirLock {
  const path = join(dataDir, LOCK_FILE);
  let file: Deno.FsFile;
  for (;;) {
    file = Deno.openSync(path, { read: true, write: true, create: true });
    if (!file.tryLockSync(true)) {
      file.close();
      throw new DataDirInUse(label, readHolder(path));
    }
    // A holder releasing at this moment unlinks the file we may have opened just before; a
    // lock on that orphan would exclude no one. Keep the lock only on the file at the path.
    if (isSameFile(path, file)) break;
    file.close();
  }

  const write = (holder: DataDirHolder) => {
    const bytes = new TextEncoder().encode(JSON.stringify(holder) + "\n");
    file.truncateSync(0);
    file.seekSync(0, Deno.SeekMode.Start);
    for (let done = 0; done < bytes.length;) done += file.writeSync(bytes.subarray(done));
  };
  write({ pid: Deno.pid });

  let released = false;
  return {
    dataDir,
    advertise(url) {
      if (!released) write({ pid: Deno.pid, url });
    },
    release() {
      if (released) return;
      released = true;
      // Unlinked while still locked, so nobody locks the file that is going away.
      try {
        Deno.removeSync(path);
      } catch { /* already gone, or a platform that keeps open files */ }
      file.close();
    },
  };
}

function isSameFile(path: string, file: Deno.FsFile): boolean {
  try {
    const [atPath, opened] = [Deno.statSync(path), file.statSync()];
    return atPath.dev === opened.dev && atPath.ino === opened.ino;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Who holds `dataDir`, as its lock file says (null: none, or not known yet). */
export const dataDirHolder = (dataDir: string): DataDirHolder | null => readHolder(join(dataDir, LOCK_FILE));

/** The holder as the lock file names it; null while it is being written or unreadable. */
function readHolder(path: string): DataDirHolder | null {
  try {
    const parsed = JSON.parse(Deno.readTextFileSync(path));
    if (!Number.isInteger(parsed?.pid)) return null;
    return typeof parsed.url === "string" ? { pid: parsed.pid, url: parsed.url } : { pid: parsed.pid };
  } catch {
    return null;
  }
}
