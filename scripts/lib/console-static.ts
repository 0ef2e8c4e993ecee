/**
 * The web console as `npm start` serves it: the static build in web/dist (made by
 * `node web/build.mjs`, which `npm start` runs first) at `/`, and `/config.json`, its two
 * settings. Every answer carries the Content-Security-Policy a host of the console should
 * send: scripts, styles and API calls from this origin only, no inline script, no framing.
 */
import { join } from "node:path";

/** What a static host serving the console should send too (README "Web console"). */
export const CONSOLE_CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "font-src 'self'",
  "connect-src 'self'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
].join("; ");

const SECURITY_HEADERS = {
  "content-security-policy": CONSOLE_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
};

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

/** Hashed build outputs: the only files served besides index.html. */
const ASSET = /^\/assets\/[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.(?:js|css|svg|png)$/;

export interface ConsoleOptions {
  /** The build folder (web/dist). */
  dir: string;
  /** The project's publishable key, handed to the console in config.json. */
  publishableKey: string;
}

/**
 * A handler for the console's paths, or null for any other request (the caller answers it).
 * config.json names the origin the browser used, so `connect-src 'self'` holds whether the
 * page was opened as 127.0.0.1 or localhost.
 */
export function createConsoleHandler({ dir, publishableKey }: ConsoleOptions) {
  const file = async (path: string, cache: string): Promise<Response> => {
    try {
      const body = await Deno.readFile(join(dir, path));
      const type = TYPES[path.slice(path.lastIndexOf("."))] ?? "application/octet-stream";
      return new Response(body, { headers: { ...SECURITY_HEADERS, "content-type": type, "cache-control": cache } });
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      const message = path === "index.html"
        ? "The console is not built: run `node web/build.mjs` (npm start does it first)."
        : "No such file.";
      return new Response(message, { status: path === "index.html" ? 503 : 404, headers: { ...SECURITY_HEADERS, "content-type": "text/plain; charset=utf-8" } });
    }
  };

  return (req: Request): Promise<Response> | null => {
    if (req.method !== "GET" && req.method !== "HEAD") return null;
    const url = new URL(req.url);
    if (url.pathname === "/" || url.pathname === "/index.html") return file("index.html", "no-cache");
    if (url.pathname === "/config.json") {
      return Promise.resolve(Response.json({ url: url.origin, publishableKey }, {
        headers: { ...SECURITY_HEADERS, "cache-control": "no-store" },
      }));
    }
    if (ASSET.test(url.pathname)) return file(url.pathname.slice(1), "public, max-age=31536000, immutable");
    return null;
  };
}
