/**
 * Interactive API docs for `npm start`, at /docs/: Swagger UI (the `swagger-ui-dist` package,
 * its prebuilt bundle and stylesheet, served from node_modules) over the document the function
 * serves at /functions/v1/secrets/openapi.json, with this server as the document's server so
 * "Try it out" calls it. Local only: hosted, Supabase serves function answers as text, and the
 * document is the thing to hand to a viewer.
 *
 * No inline script: the page loads the bundle and ./docs.js, both from this origin. Swagger UI
 * writes style attributes, so styles allow 'unsafe-inline'; scripts do not. It is told not to
 * keep a token it is given (`persistAuthorization: false`): nothing goes to localStorage.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";

export const DOCS_PATH = "/docs/";

export const DOCS_CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:",
  "connect-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
].join("; ");

const HEADERS = { "content-security-policy": DOCS_CSP, "x-content-type-options": "nosniff", "referrer-policy": "no-referrer" };

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sigyl Secrets API</title>
<link rel="stylesheet" href="swagger-ui.css">
</head>
<body>
<div id="docs"></div>
<script src="swagger-ui-bundle.js"></script>
<script src="docs.js"></script>
</body>
</html>
`;

/** Loads the document, names this server as its server, and renders it. */
const INIT = `"use strict";
const base = location.origin + "/functions/v1";
fetch(base + "/secrets/openapi.json")
  .then((res) => res.json())
  .then((spec) => {
    spec.servers = [{ url: base, description: "this server" }];
    SwaggerUIBundle({ spec, dom_id: "#docs", deepLinking: true, persistAuthorization: false, displayRequestDuration: true });
  })
  .catch((err) => { document.getElementById("docs").textContent = "Could not load the API document: " + err.message; });
`;

/** The files of the package this page serves, by their name under /docs/. */
const VENDOR: Record<string, string> = {
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "swagger-ui.css": "text/css; charset=utf-8",
};

/** A handler for /docs and /docs/…, or null for any other request (the caller answers it). */
export function createApiDocsHandler(root: string) {
  const dist = join(root, "node_modules", "swagger-ui-dist");
  const answer = (body: BodyInit, type: string, status = 200) =>
    new Response(body, { status, headers: { ...HEADERS, "content-type": type, "cache-control": "no-cache" } });

  return (req: Request): Promise<Response> | null => {
    if (req.method !== "GET" && req.method !== "HEAD") return null;
    const { pathname } = new URL(req.url);
    if (pathname === "/docs") return Promise.resolve(Response.redirect(new URL(DOCS_PATH, req.url), 301));
    if (!pathname.startsWith(DOCS_PATH)) return null;
    const name = pathname.slice(DOCS_PATH.length);
    if (name === "" || name === "index.html") return Promise.resolve(answer(PAGE, "text/html; charset=utf-8"));
    if (name === "docs.js") return Promise.resolve(answer(INIT, "text/javascript; charset=utf-8"));
    const type = VENDOR[name];
    if (!type) return Promise.resolve(answer("No such file.", "text/plain; charset=utf-8", 404));
    return readFile(join(dist, name)).then(
      (bytes) => answer(new Uint8Array(bytes), type),
      () => answer("swagger-ui-dist is not installed: run npm ci.", "text/plain; charset=utf-8", 503),
    );
  };
}
