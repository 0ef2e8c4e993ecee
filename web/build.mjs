/**
 * Builds the console into web/dist and reports its initial JavaScript (the entry and what it
 * preloads) gzipped; fails over the budget. `--if-stale` builds only when a source is newer
 * than the last build (what `npm start` runs first).
 *   node web/build.mjs [--if-stale]
 */
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

export const BUDGET_GZIP_BYTES = 150 * 1024;
const web = dirname(fileURLToPath(import.meta.url));
const dist = join(web, "dist");
const stamp = join(dist, "build-report.json");
const SOURCES = [join(web, "src"), join(web, "index.html"), join(web, "vite.config.ts"), fileURLToPath(import.meta.url),
  join(web, "..", "shared", "client"), join(web, "..", "package-lock.json")];

async function newestMtime(path) {
  const s = await stat(path).catch(() => null);
  if (!s) return 0;
  if (!s.isDirectory()) return s.mtimeMs;
  let newest = s.mtimeMs;
  for (const e of await readdir(path)) newest = Math.max(newest, await newestMtime(join(path, e)));
  return newest;
}

/** The scripts index.html loads at once: its module entry and the chunks it preloads. */
export async function initialScripts(dir = dist) {
  const html = await readFile(join(dir, "index.html"), "utf8");
  const refs = [...html.matchAll(/<(?:script[^>]*\ssrc|link[^>]*rel="modulepreload"[^>]*\shref)="([^"]+)"/g)].map((m) => m[1]);
  const out = [];
  for (const ref of refs) {
    const bytes = await readFile(join(dir, ref.replace(/^\.\//, "")));
    out.push({ file: ref, bytes: bytes.byteLength, gzip: gzipSync(bytes, { level: 9 }).byteLength });
  }
  return out;
}

async function main() {
  if (process.argv.includes("--if-stale")) {
    const built = (await stat(stamp).catch(() => null))?.mtimeMs ?? 0;
    const newest = Math.max(...(await Promise.all(SOURCES.map(newestMtime))));
    const within = await readFile(stamp, "utf8").then((r) => JSON.parse(r).initialJsGzipBytes <= BUDGET_GZIP_BYTES, () => false);
    if (built > newest && within) {
      console.log(`sigyl: console build is current (${join("web", "dist")})`);
      return;
    }
  }
  // A production build whatever the caller's NODE_ENV (vitest sets "test", which would bundle
  // React's development build).
  process.env.NODE_ENV = "production";
  const { build } = await import("vite");
  await build({ configFile: join(web, "vite.config.ts"), mode: "production", logLevel: "warn" });
  const scripts = await initialScripts();
  const gzip = scripts.reduce((n, s) => n + s.gzip, 0);
  const report = { initialJsGzipBytes: gzip, budgetGzipBytes: BUDGET_GZIP_BYTES, scripts };
  await writeFile(stamp, JSON.stringify(report, null, 2) + "\n");
  const kb = (n) => `${(n / 1024).toFixed(1)} kB`;
  console.log(`sigyl: console built in web/dist: initial JavaScript ${kb(gzip)} gzip (budget ${kb(BUDGET_GZIP_BYTES)})`);
  if (gzip > BUDGET_GZIP_BYTES) {
    console.error(`sigyl: the console's initial JavaScript is over budget: ${kb(gzip)} > ${kb(BUDGET_GZIP_BYTES)}`);
    process.exitCode = 1;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
