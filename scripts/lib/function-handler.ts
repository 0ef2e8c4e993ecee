/**
 * The HTTP front of the local server, shared by `npm start` (scripts/serve.ts) and the
 * benchmark server (bench/server.ts) so both answer exactly alike: the function under
 * /functions/v1/secrets with the prefix stripped and the peer address appended to
 * x-forwarded-for (as the hosted gateway does); and stand-ins for Supabase Auth: its key set,
 * GET /auth/v1/.well-known/jwks.json (public keys only), POST /auth/v1/admin/users (service
 * role), and the sign-in routes supabase-js uses (scripts/lib/auth/), the last two never in
 * production.
 */
import type { JSONWebKeySet } from "jose";
import type { Authenticator } from "../../shared/auth/authenticate.ts";
import type { Database } from "../../shared/db/database.ts";
import { ensureUser } from "./local.ts";

export const FUNCTION_PREFIX = "/functions/v1";

export interface FunctionHandlerOptions {
  /** The function's app (anything with Hono's `fetch`). */
  app: { fetch(req: Request): Response | Promise<Response> };
  authenticate: Authenticator;
  db: Database;
  production: boolean;
  /** The public key set local user tokens are signed under, served where Supabase Auth serves it. */
  jwks?: JSONWebKeySet;
  /** The local sign-in stand-in (scripts/lib/auth/auth-routes.ts), answering the rest of /auth/v1. */
  auth?: { fetch(req: Request): Response | Promise<Response> };
}

export const JWKS_PATH = "/auth/v1/.well-known/jwks.json";

export function createFunctionHandler(options: FunctionHandlerOptions) {
  const { app, authenticate, db } = options;

  const adminUsers = async (req: Request): Promise<Response> => {
    const authenticated = await authenticate(req.headers).catch(() => null);
    if (authenticated?.kind !== "service") {
      return Response.json({ code: 401, msg: "This endpoint requires a service role token" }, { status: 401 });
    }
    const body = await req.json().catch(() => null) as { email?: unknown } | null;
    if (typeof body?.email !== "string" || !/^[^@\s]+@[^@\s]+$/.test(body.email)) {
      return Response.json({ code: 400, msg: "email is required" }, { status: 400 });
    }
    const user = await ensureUser(db, body.email);
    return Response.json({ id: user.id, email: user.email, aud: "authenticated", role: "authenticated" });
  };

  /**
   * The request as the hosted gateway passes it on: the address it really came from appended
   * to x-forwarded-for. Built from its parts: `new Request(url, req)` would copy `req.signal`,
   * and reading a served request's signal makes Deno warn about its legacy abort on the first
   * request.
   */
  const forward = (req: Request, url: URL, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => {
    const forwarded = new Request(url, { method: req.method, headers: req.headers, body: req.body });
    const xff = req.headers.get("x-forwarded-for");
    forwarded.headers.set("x-forwarded-for", xff ? `${xff}, ${info.remoteAddr.hostname}` : info.remoteAddr.hostname);
    return forwarded;
  };

  return (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Response | Promise<Response> => {
    const url = new URL(req.url);
    if (url.pathname === `${FUNCTION_PREFIX}/secrets` || url.pathname.startsWith(`${FUNCTION_PREFIX}/secrets/`)) {
      url.pathname = url.pathname.slice(FUNCTION_PREFIX.length);
      return app.fetch(forward(req, url, info));
    }
    if (url.pathname === JWKS_PATH && req.method === "GET" && options.jwks) {
      // Public keys, readable from any page: supabase-js's getClaims() fetches them from the browser.
      return Response.json(options.jwks, { headers: { "cache-control": "public, max-age=600", "access-control-allow-origin": "*" } });
    }
    if (url.pathname === "/auth/v1/admin/users" && req.method === "POST" && !options.production) {
      return adminUsers(req);
    }
    if (options.auth && url.pathname.startsWith("/auth/v1/") && !options.production) {
      return options.auth.fetch(forward(req, url, info));
    }
    return Response.json({ success: false, error: { code: "not_found", message: "No such route." } }, { status: 404 });
  };
}
