/**
 * Holds a PGlite data dir's lock without serving it, as a script working on the database
 * would: `deno run --allow-all tests/helpers/hold-data-dir.ts DIR`. Prints "held" once it
 * holds the lock, then waits to be killed.
 */
import { lockDataDir } from "../../scripts/lib/data-dir-lock.ts";

Deno.mkdirSync(Deno.args[0], { recursive: true });
lockDataDir(Deno.args[0]);
console.log("held");
setInterval(() => {}, 60_000);
