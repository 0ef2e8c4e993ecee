/**
 * The API's OpenAPI 3.1 description, declared beside each route. `defineRoute` records a
 * route's operation (parameters, body, answers, the error codes it can give, who may call it)
 * and mounts the very same zod schemas as the route's validators, so the document served at
 * `GET /secrets/openapi.json` is the code, not a copy of it.
 *
 * Nothing of the document is built at start: a route only keeps its declaration, found again
 * from the root app's routing table by its handler, and the generator (`@hono/zod-openapi`'s
 * registry and 3.1 generator, with the YAML and OpenAPI model packages under it) is imported on
 * the first request for the document. Building every operation's schemas and loading the
 * generator at start added about 100 ms to every cold start, for a document few instances serve.
 *
 * Validation stays the project's own (`validate`: 400 `invalid_request` with `details`, and
 * the marker `strictBody` reads to know which routes take a body), in the order every route
 * has always used: path, then query, then body. `@hono/zod-openapi`'s `app.openapi()` would
 * mount validators of its own, with another order, another answer to a body of another type
 * and no defaults for an absent optional body, so only its registry and generator are used.
 */
import type { RouteConfig } from "@hono/zod-openapi";
import { type Env, type Handler, Hono, type MiddlewareHandler } from "hono";
import { z } from "zod";
import type { CallerKind } from "../auth/authenticate.ts";
import { type ErrorCode, ERRORS, type ErrorStatus } from "../errors.ts";
import type { AppEnv } from "./app-env.ts";
import { validate } from "./validation.ts";

/** The security schemes of the document: who may present which credential, and how. */
export const SECURITY_SCHEMES = {
  userJwt: {
    type: "http", scheme: "bearer", bearerFormat: "JWT",
    description: "A Supabase Auth user access token (role `authenticated`).",
  },
  serviceRoleBearer: {
    type: "http", scheme: "bearer",
    description: "The project's secret API key (`sb_secret_…`, or the legacy service_role key or JWT) as a bearer token.",
  },
  serviceRoleApiKey: {
    type: "apiKey", in: "header", name: "apikey",
    description: "The project's secret API key in the `apikey` header, as supabase-js sends it.",
  },
  deploymentToken: {
    type: "http", scheme: "bearer", bearerFormat: "sgd_…",
    description: "A deployment token (`sgd_` + 256 random bits) from `POST /secrets/deployments/{id}/tokens`; only the env route takes it.",
  },
} as const;

type SchemeName = keyof typeof SECURITY_SCHEMES;
const SCHEMES_OF: Record<CallerKind, SchemeName[]> = {
  user: ["userJwt"],
  service: ["serviceRoleBearer", "serviceRoleApiKey"],
  deployment: ["deploymentToken"],
};

/** The envelope of every successful JSON answer. */
export const successEnvelope = <T extends z.ZodType>(data: T) => z.strictObject({ success: z.literal(true), data });

/** `details` of a 400 `invalid_request`: the fields at fault, never the values sent. */
export const issueDetail = z.strictObject({ path: z.string(), message: z.string() });

/** The envelope of every error answer, its `code` one of `codes` (all from the one catalogue). */
export const errorEnvelope = (codes: readonly [ErrorCode, ...ErrorCode[]]) =>
  z.strictObject({
    success: z.literal(false),
    error: z.strictObject({
      code: z.enum(codes),
      message: z.string(),
      /** Validation failures (`invalid_request`) name the fields at fault. */
      details: z.array(issueDetail).optional(),
      /** 5xx answers: the id that finds the server's log line. */
      requestId: z.string().optional(),
    }),
  });

type Header = { description: string; schema: { type: "string"; enum?: string[] } };
const header = (description: string, values?: string[]): Header =>
  ({ description, schema: values ? { type: "string", enum: values } : { type: "string" } });

/** Response headers a route may declare; `X-Request-Id` is on every answer. */
export const RESPONSE_HEADERS = {
  "X-Request-Id": header("This request's id, as the audit trail records it."),
  ETag: header('A strong ETag. A secret\'s is its current version, e.g. `"3"`: send it back in `If-Match`. A deployment\'s bindings and env carry a fingerprint: send it back in `If-None-Match`.'),
  Location: header("The URL path of the created resource."),
  "Idempotent-Replayed": header("`true` when this is the stored answer of an earlier request with the same `Idempotency-Key`.", ["true"]),
  "Cache-Control": header("`no-store`: the answer holds a secret or a credential.", ["no-store"]),
  "X-Next-Cursor": header("The cursor of the next page (`since`)."),
} as const;
/** A header a route's success answer may declare. */
export type ResponseHeader = Exclude<keyof typeof RESPONSE_HEADERS, "X-Request-Id">;

const WRITE_METHODS = new Set(["post", "put", "patch", "delete"]);

/**
 * Errors any route can answer: a body where none is taken or a bad path/query (400), a body
 * over the limit (413), and the server's own failures. The database's login check and
 * unavailability apply to every route that reaches it.
 */
const ALWAYS: ErrorCode[] = ["invalid_request", "payload_too_large", "internal_error", "api_role_required", "database_unavailable"];
/** A route with a JSON body: not JSON, not declared JSON, not UTF-8. */
const WITH_BODY: ErrorCode[] = ["invalid_json", "unsupported_media_type"];
/**
 * Writes under the idempotency middleware: a bad key, a key reused with another request, an
 * answer sealed under a retired KEK (or one that does not decrypt), and a concurrent change
 * the database refuses.
 */
const WRITES: ErrorCode[] = ["idempotency_key_invalid", "idempotency_key_reused", "idempotency_answer_unavailable", "decryption_failed", "conflict"];

/**
 * A route as its feature declares it: what it takes (validated, and documented), what it
 * answers, which catalogued errors it gives and who may call it.
 */
export interface RouteSpec<
  P extends z.ZodType | undefined = undefined,
  Q extends z.ZodType | undefined = undefined,
  B extends z.ZodType | undefined = undefined,
> {
  method: "get" | "post" | "put" | "patch" | "delete";
  /** As Hono writes it, relative to where the feature is mounted: `/:id/value`. */
  path: string;
  summary: string;
  description?: string;
  tag: string;
  /** Who may call it (none: no credential at all); the general authentication refuses deployment tokens. */
  callers: readonly CallerKind[];
  params?: P;
  query?: Q;
  body?: B;
  /** The body may be left out altogether (its schema's defaults apply). */
  bodyOptional?: boolean;
  /** Request headers the handler reads, documented (`Idempotency-Key` is added to every write). */
  requestHeaders?: readonly ("If-Match" | "If-None-Match")[];
  /** The success answer: its status, `data` (wrapped in the success envelope) and headers. */
  status?: 200 | 201;
  data?: z.ZodType;
  /** An answer that is not the JSON envelope: media type → schema (e.g. dotenv as text/plain). */
  content?: Record<string, z.ZodType>;
  headers?: readonly ResponseHeader[];
  /** Catalogued errors this route itself gives; the ones every route can give are added. */
  errors: readonly ErrorCode[];
  /** Middleware before the validators (authentication, caller kinds, `noStore`, `refuseHead`). */
  middleware?: readonly MiddlewareHandler<AppEnv>[];
  /** Writes only: not under the idempotency middleware (health, the env route, read-only POSTs). */
  noIdempotency?: boolean;
}

type AnyRouteSpec = RouteSpec<z.ZodType | undefined, z.ZodType | undefined, z.ZodType | undefined>;

type Part<S, Target extends string> = S extends z.ZodType
  ? { in: { [K in Target]: z.input<S> }; out: { [K in Target]: z.output<S> } }
  : Record<never, never>;
/** What `c.req.valid(…)` holds in a route's handler. */
export type RouteInput<P, Q, B> = Part<P, "param"> & Part<Q, "query"> & Part<B, "json">;

const toOpenApiPath = (path: string) => path.replace(/:([^/]+)/g, "{$1}");

/** Every code a route can answer, deduplicated, grouped by status in the catalogue's order. */
export function errorCodesOf(spec: Pick<AnyRouteSpec, "method" | "callers" | "body" | "errors" | "noIdempotency">): Map<ErrorStatus, ErrorCode[]> {
  const codes = new Set<ErrorCode>([...ALWAYS, ...spec.errors]);
  if (spec.callers.length) codes.add("unauthenticated");
  if (spec.body) for (const c of WITH_BODY) codes.add(c);
  if (WRITE_METHODS.has(spec.method) && !spec.noIdempotency) for (const c of WRITES) codes.add(c);
  const byStatus = new Map<ErrorStatus, ErrorCode[]>();
  for (const code of Object.keys(ERRORS) as ErrorCode[]) {
    if (!codes.has(code)) continue;
    const status = ERRORS[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return byStatus;
}

/**
 * Header objects for an answer: `sent` always come with it, `sometimes` may (a replay's
 * `Idempotent-Replayed`; `Cache-Control` on an error the route's `noStore` did not reach).
 */
function responseHeaders(sent: readonly string[], sometimes: readonly string[] = []) {
  const entry = (name: string, required: boolean) => [name, { ...RESPONSE_HEADERS[name as keyof typeof RESPONSE_HEADERS], required }];
  return Object.fromEntries([
    ...["X-Request-Id", ...sent].map((n) => entry(n, true)),
    ...sometimes.map((n) => entry(n, false)),
  ]);
}

/** The operation `@hono/zod-openapi`'s registry records for a route. */
export function toRouteConfig(spec: AnyRouteSpec): RouteConfig {
  const write = WRITE_METHODS.has(spec.method) && !spec.noIdempotency;
  const headerFields: Record<string, z.ZodType> = {};
  if (spec.requestHeaders?.includes("If-Match")) {
    headerFields["If-Match"] = z.string().optional().meta({ description: 'The version the change expects, as the ETag this API returned (`"3"`); stale → 409 `version_conflict`.' });
  }
  if (spec.requestHeaders?.includes("If-None-Match")) {
    headerFields["If-None-Match"] = z.string().optional().meta({ description: "ETags this API returned for this URL (or `*`): while one is current, the answer is 304 with no body." });
  }
  if (write) {
    headerFields["Idempotency-Key"] = z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/).optional()
      .meta({ description: "1–255 visible ASCII characters: a retry with the same key gets the first answer again and changes nothing." });
  }
  const success = {
    description: spec.summary,
    headers: responseHeaders(spec.headers ?? [], write ? ["Idempotent-Replayed"] : []),
    content: spec.content
      ? Object.fromEntries(Object.entries(spec.content).map(([type, schema]) => [type, { schema }]))
      : { "application/json": { schema: successEnvelope(spec.data ?? z.unknown()) } },
  };
  const responses: RouteConfig["responses"] = { [spec.status ?? 200]: success };
  if (spec.requestHeaders?.includes("If-None-Match")) {
    responses[304] = {
      description: "Not Modified: the `If-None-Match` ETag is current; no body.",
      headers: responseHeaders(["ETag", ...(spec.headers ?? []).filter((h) => h === "Cache-Control")]),
    };
  }
  for (const [status, codes] of errorCodesOf(spec)) {
    responses[status] = {
      description: codes.map((c) => `\`${c}\`: ${ERRORS[c].when}`).join("; "),
      headers: responseHeaders([], spec.headers?.filter((h) => h === "Cache-Control")),
      content: { "application/json": { schema: errorEnvelope(codes as [ErrorCode, ...ErrorCode[]]) } },
    };
  }
  return {
    method: spec.method,
    path: toOpenApiPath(spec.path),
    summary: spec.summary,
    description: spec.description,
    tags: [spec.tag],
    security: spec.callers.flatMap((k) => SCHEMES_OF[k]).map((name) => ({ [name]: [] })),
    request: {
      // The registry's types want object schemas; every params and query schema is one.
      params: spec.params as never,
      query: spec.query as never,
      headers: Object.keys(headerFields).length ? z.object(headerFields) : undefined,
      body: spec.body
        ? { required: !spec.bodyOptional, content: { "application/json": { schema: spec.body } } }
        : undefined,
    },
    responses,
  };
}

/** Each declared route's handler, to its declaration: the document finds routes by handler. */
const declarations = new WeakMap<object, AnyRouteSpec>();

/**
 * Declares a route: keeps its declaration for the document and registers the route itself with
 * `spec.middleware`, then the validators of its path, query and body, then `handler`.
 */
export function defineRoute<
  P extends z.ZodType | undefined = undefined,
  Q extends z.ZodType | undefined = undefined,
  B extends z.ZodType | undefined = undefined,
>(
  // deno-lint-ignore no-explicit-any
  app: Hono<AppEnv, any, any>,
  spec: RouteSpec<P, Q, B>,
  handler: Handler<AppEnv, string, RouteInput<P, Q, B>>,
): void {
  declarations.set(handler, spec as AnyRouteSpec);
  const validators: MiddlewareHandler[] = [];
  if (spec.params) validators.push(validate("param", spec.params));
  if (spec.query) validators.push(validate("query", spec.query));
  if (spec.body) validators.push(validate("json", spec.body));
  const handlers = [...(spec.middleware ?? []), ...validators, handler] as [Handler<AppEnv>];
  app.on([spec.method.toUpperCase()], [spec.path], ...handlers);
}

/** A feature's app, whose routes are declared with `defineRoute`. */
export const featureApp = <E extends Env = AppEnv>() => new Hono<E>();

/** The document's own data: title, version, what the API is. */
const INFO = {
  title: "Sigyl Secrets",
  version: "0.1.0",
  description: "Secrets for MCP servers: envelope-encrypted, RLS-guarded, audited. Every JSON answer is an envelope: " +
    "`{success: true, data}` or `{success: false, error: {code, message, details?, requestId?}}`; the codes are " +
    "the catalogue of the README's \"Error codes\".",
};

/**
 * The OpenAPI 3.1 document of `app` (the root app, every feature mounted), with the security
 * schemes: each route of its routing table that was declared with `defineRoute`, at the full
 * path it is served under. Call it once every feature is mounted.
 */
// deno-lint-ignore no-explicit-any
export async function openApiDocument(app: Hono<AppEnv, any, any>) {
  const { OpenAPIHono } = await import("@hono/zod-openapi");
  const generator = new OpenAPIHono();
  for (const route of app.routes) {
    const spec = declarations.get(route.handler);
    if (spec) generator.openAPIRegistry.registerPath({ ...toRouteConfig(spec), path: toOpenApiPath(route.path) });
  }
  for (const [name, scheme] of Object.entries(SECURITY_SCHEMES)) {
    generator.openAPIRegistry.registerComponent("securitySchemes", name, { ...scheme });
  }
  return generator.getOpenAPI31Document({ openapi: "3.1.0", info: INFO });
}
