/**
 * The console's browser harness: the built console served by a real `npm start` (embedded
 * PGlite in a temp data dir, or the suites' PostgreSQL when DATABASE_URL is set), driven in
 * Debian's headless Chromium through playwright-core (never a downloaded browser). Records
 * every request and console message of each page, checks pages with axe and writes their
 * screenshots to tests/web/screenshots/.
 */
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import AxeBuilder from "@axe-core/playwright";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { LOCAL_KEYS_FILE, ROOT } from "../../scripts/lib/local.ts";
import { createSigylClient } from "../../shared/client/client.ts";
import { eventually, freePort, type Started, startDeno, stopProcess } from "../helpers/processes.ts";

export const CHROMIUM = "/usr/bin/chromium";
export const chromiumMissing = existsSync(CHROMIUM) ? null : `needs ${CHROMIUM} (sudo bash scripts/setup-browser.sh)`;
export const SCREENSHOTS = join(ROOT, "tests", "web", "screenshots");

/** `node web/build.mjs --if-stale`, as `npm start` runs it first. */
export function buildConsole(): string {
  return execFileSync(process.execPath, [join(ROOT, "web", "build.mjs"), "--if-stale"], { cwd: ROOT, encoding: "utf8" });
}

export interface ConsoleServer {
  origin: string;
  dataDir: string;
  server: Started;
  /** Stops the server and starts it again on the same port and data (PGlite's data dir is then free meanwhile). */
  restart: (between?: () => Promise<void>) => Promise<void>;
  stop: () => Promise<void>;
}

async function startOn(port: number, env: Record<string, string | undefined>): Promise<Started> {
  const server = startDeno("scripts/serve.ts", [], { PORT: String(port), ...env });
  await eventually(async () => {
    if (server.child.exitCode !== null) throw new Error(`server exited: ${server.stderr()}`);
    const res = await fetch(`http://127.0.0.1:${port}/functions/v1/secrets/health`);
    return res.status === 200 ? true : undefined;
  }, 110_000);
  return server;
}

export async function startConsoleServer(): Promise<ConsoleServer> {
  const dataDir = await mkdtemp(join(tmpdir(), "sigyl-web-"));
  const port = await freePort();
  const env = { SIGYL_DATA_DIR: dataDir, DATABASE_URL: process.env.DATABASE_URL || undefined };
  const handle: ConsoleServer = {
    origin: `http://127.0.0.1:${port}`,
    dataDir,
    server: await startOn(port, env),
    async restart(between) {
      await stopProcess(handle.server);
      await between?.();
      handle.server = await startOn(port, env);
    },
    async stop() {
      if (handle.server.child.exitCode === null) await stopProcess(handle.server);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return handle;
}

export async function publishableKey(dataDir: string): Promise<string> {
  return JSON.parse(await readFile(join(dataDir, LOCAL_KEYS_FILE), "utf8")).publishableKey;
}

export async function launchChromium(): Promise<Browser> {
  return await chromium.launch({
    executablePath: CHROMIUM,
    // A fresh profile each launch (playwright makes a temporary user-data-dir).
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

export interface Seen {
  method: string;
  url: string;
  body: string | null;
}

/** One person's browser: a context of its own, with what its pages sent and logged. */
export interface Person {
  context: BrowserContext;
  page: Page;
  requests: Seen[];
  console: string[];
  /** The API as this person, with the session's token from the page. */
  api: () => Promise<ReturnType<typeof createSigylClient>>;
}

export async function openPerson(browser: Browser, origin: string, viewport = { width: 1280, height: 900 }): Promise<Person> {
  const context = await browser.newContext({ viewport, baseURL: origin });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin });
  const page = await context.newPage();
  const requests: Seen[] = [];
  const logged: string[] = [];
  page.on("request", (r) => requests.push({ method: r.method(), url: r.url(), body: r.postData() }));
  page.on("console", (m) => logged.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => logged.push(`pageerror: ${e.message}`));
  const api = async () => {
    const token = await page.evaluate(() => {
      const key = Object.keys(localStorage).find((k) => /^sb-.*-auth-token$/.test(k));
      return key ? (JSON.parse(localStorage.getItem(key)!) as { access_token: string }).access_token : null;
    });
    if (!token) throw new Error("no session in the page");
    return createSigylClient({ url: `${origin}/functions/v1`, token });
  };
  return { context, page, requests, console: logged, api };
}

/** Axe's serious and critical violations of the page as it is now (WCAG 2.x A and AA). */
export async function seriousViolations(page: Page): Promise<string[]> {
  const result = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/**
 * Everything the page keeps in the browser, as text: localStorage, sessionStorage, every
 * IndexedDB database's records, Cache Storage entries, service workers, the URL and the DOM.
 */
export async function browserState(page: Page): Promise<string> {
  return await page.evaluate(async () => {
    const parts: string[] = [location.href, document.documentElement.outerHTML];
    for (const store of [localStorage, sessionStorage]) {
      for (let i = 0; i < store.length; i++) parts.push(store.key(i)!, store.getItem(store.key(i)!) ?? "");
    }
    for (const info of await indexedDB.databases()) {
      const db = await new Promise<IDBDatabase>((ok, ko) => {
        const open = indexedDB.open(info.name!);
        open.onsuccess = () => ok(open.result);
        open.onerror = () => ko(open.error);
      });
      for (const name of Array.from(db.objectStoreNames)) {
        const all = await new Promise<unknown[]>((ok, ko) => {
          const req = db.transaction(name).objectStore(name).getAll();
          req.onsuccess = () => ok(req.result);
          req.onerror = () => ko(req.error);
        });
        parts.push(info.name!, name, JSON.stringify(all));
      }
      db.close();
    }
    if ("caches" in self) {
      for (const key of await caches.keys()) {
        for (const req of await (await caches.open(key)).keys()) parts.push(req.url);
      }
    }
    const workers = await navigator.serviceWorker?.getRegistrations() ?? [];
    parts.push(`service workers: ${workers.length}`);
    return parts.join("\n");
  });
}
