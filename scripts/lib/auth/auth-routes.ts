/**
 * The HTTP face of the local sign-in stand-in, at Supabase Auth's paths under /auth/v1: what
 * supabase-js calls to sign up, sign in, refresh, read the user and sign out. In front of it,
 * what the hosted API gateway does before a request reaches Supabase Auth: CORS, and the
 * project's `apikey` (its publishable or secret key) required on every request.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import type { z } from "zod";
import { API_VERSION_HEADER, AuthError, authErrorResponse } from "./auth-errors.ts";
import { LogoutScope, PasswordGrantBody, RefreshTokenGrantBody, SignupBody } from "./auth-schemas.ts";
import type { ClientInfo, LocalAuthService } from "./auth-service.ts";

export const AUTH_PREFIX = "/auth/v1";

/** GoTrue's request body limit. */
const MAX_BODY_BYTES = 1 << 20;

export interface LocalAuthRoutesDeps {
  auth: LocalAuthService;
  /** Keys the gateway lets through: the project's publishable and secret keys. */
  apiKeys: string[];
  corsOrigins: string[];
  /** Where unexpected failures are reported: never a password, token or request body. */
  log?: (message: string) => void;
}

/** The body as GoTrue reads it: JSON, with the fields the route needs. */
async function params<S extends z.ZodType>(req: Request, schema: S): Promise<z.output<S>> {
  let body: unknown;
  try {
    body = JSON.parse(await req.text() || "{}");
  } catch (err) {
    throw new AuthError(400, "bad_json", `Could not parse request body as JSON: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new AuthError(400, "bad_json", `Could not parse request body as JSON: ${issue.path.join(".") || "body"}: ${issue.message}`);
  }
  return parsed.data;
}

/** Stored on the session, as GoTrue stores them; the peer address is the gateway's last hop. */
function clientInfo(req: Request): ClientInfo {
  const forwarded = req.headers.get("x-forwarded-for")?.split(",").at(-1)?.trim();
  return { userAgent: req.headers.get("user-agent"), ip: forwarded || null };
}

export function createLocalAuthRoutes(deps: LocalAuthRoutesDeps) {
  const { auth } = deps;
  const log = deps.log ?? ((message: string) => console.error(message));
  const app = new Hono().basePath(AUTH_PREFIX);

  app.use(cors({
    origin: deps.corsOrigins.includes("*") ? "*" : deps.corsOrigins,
    allowHeaders: ["authorization", "apikey", "content-type", "accept", "x-client-info", "x-jwt-aud", API_VERSION_HEADER.toLowerCase()],
    allowMethods: ["GET", "POST", "PUT", "DELETE", "OPTIONS"],
    exposeHeaders: [API_VERSION_HEADER],
    maxAge: 600,
  }));
  // The gateway's answers, not Supabase Auth's: no key, or one that is not the project's.
  app.use(async (c, next) => {
    const key = c.req.header("apikey") ?? c.req.query("apikey");
    if (!key) return c.json({ message: "No API key found in request", hint: "No `apikey` request header or url param was found." }, 401);
    if (!deps.apiKeys.includes(key)) return c.json({ message: "Invalid API key", hint: "Double check your Supabase `anon` or `service_role` API key." }, 401);
    await next();
  });
  app.use(bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: () => {
      throw new AuthError(413, "request_entity_too_large", `Request body too large (max ${MAX_BODY_BYTES} bytes)`);
    },
  }));

  app.post("/signup", async (c) => c.json(await auth.signUp(await params(c.req.raw, SignupBody), clientInfo(c.req.raw))));

  app.post("/token", async (c) => {
    const grant = c.req.query("grant_type");
    const client = clientInfo(c.req.raw);
    if (grant === "password") return c.json(await auth.signInWithPassword(await params(c.req.raw, PasswordGrantBody), client));
    if (grant === "refresh_token") return c.json(await auth.refresh(await params(c.req.raw, RefreshTokenGrantBody), client));
    // GoTrue's answer to a grant it does not know; the local stand-in knows these two only.
    throw new AuthError(400, "invalid_credentials", "unsupported_grant_type");
  });

  app.get("/user", async (c) => {
    const caller = await auth.authenticate(c.req.header("authorization") ?? null);
    return c.json(auth.getUser(caller, c.req.header("x-jwt-aud") ?? null));
  });

  app.post("/logout", async (c) => {
    const caller = await auth.authenticate(c.req.header("authorization") ?? null);
    const scope = LogoutScope.safeParse(c.req.query("scope") || "global");
    if (!scope.success) throw new AuthError(400, "validation_failed", `Unsupported logout scope ${JSON.stringify(c.req.query("scope"))}`);
    await auth.logout(caller, scope.data);
    return c.body(null, 204);
  });

  app.onError((err, c) => {
    if (!(err instanceof AuthError)) log(`sigyl: local auth: ${c.req.method} ${c.req.path} failed: ${err.message}`);
    return authErrorResponse(err, c.req.header(API_VERSION_HEADER));
  });
  // What GoTrue's router answers for a path it does not serve; the stand-in serves only these.
  app.notFound((c) => c.text("404 page not found", 404));
  return app;
}
