/**
 * The one client of the API, for the CLI, the web console and the tests: `openapi-fetch` typed
 * by ./schema.ts, which `openapi-typescript` generates from the document the function serves
 * (`npm run client:generate`; tests/docs/client.test.ts fails when it is stale). Paths, query
 * parameters, bodies and answers are checked by the compiler against the API itself.
 *
 * ```ts
 * const api = createSigylClient({ url: "http://127.0.0.1:54321/functions/v1", token: () => session.access_token });
 * const secret = await unwrap(api.POST("/secrets", { body: { name: "STRIPE_KEY", value, type: "api_key" } }));
 * ```
 */
import createClient, { type Client } from "openapi-fetch";
import type { paths } from "./schema.ts";

export type { components, operations, paths } from "./schema.ts";

export type SigylClient = Client<paths>;

/** A credential, or a function giving the current one (a session's access token changes). */
export type TokenSource = string | (() => string | null | undefined | Promise<string | null | undefined>);

export interface SigylClientOptions {
  /**
   * Where the functions are served: `https://<ref>.supabase.co/functions/v1` hosted,
   * `http://127.0.0.1:54321/functions/v1` for `npm start`. The API's paths start with `/secrets`.
   */
  url: string;
  /** Sent as `Authorization: Bearer …`: a user's access token, the secret key, or a deployment token. */
  token?: TokenSource;
  /** Sent as the `apikey` header (the Supabase gateway's project key), when given. */
  apikey?: string;
  /** Another fetch (tests hand the app's own `request`). */
  fetch?: (request: Request) => Promise<Response>;
  /** Headers on every request (e.g. `x-client-info`). */
  headers?: Record<string, string>;
}

export function createSigylClient(options: SigylClientOptions): SigylClient {
  const client = createClient<paths>({
    baseUrl: options.url.replace(/\/+$/, ""),
    fetch: options.fetch,
    headers: options.headers,
  });
  const { token, apikey } = options;
  if (token !== undefined || apikey !== undefined) {
    client.use({
      async onRequest({ request }) {
        const value = typeof token === "function" ? await token() : token;
        if (value) request.headers.set("Authorization", `Bearer ${value}`);
        if (apikey) request.headers.set("apikey", apikey);
        return request;
      },
    });
  }
  return client;
}

/** An error answer of the API: its status, its catalogue code and, for `invalid_request`, the fields at fault. */
export class SigylApiError extends Error {
  override readonly name = "SigylApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: { path: string; message: string }[] = [],
    readonly requestId?: string,
  ) {
    super(message);
  }
}

interface ErrorBody {
  success: false;
  error: { code: string; message: string; details?: { path: string; message: string }[]; requestId?: string };
}

const isErrorBody = (body: unknown): body is ErrorBody =>
  typeof body === "object" && body !== null && (body as ErrorBody).success === false &&
  typeof (body as ErrorBody).error?.code === "string";

/** The `error` of a failed call as a SigylApiError, whatever its shape (a gateway's answer has none of ours). */
export function apiError(response: Response, body: unknown): SigylApiError {
  if (isErrorBody(body)) {
    const { code, message, details, requestId } = body.error;
    return new SigylApiError(response.status, code, message, details, requestId ?? response.headers.get("X-Request-Id") ?? undefined);
  }
  return new SigylApiError(response.status, "unexpected_response", `HTTP ${response.status} ${response.statusText}`.trim());
}

type Outcome<D> = { data?: D; error?: unknown; response: Response };

/**
 * The `data` of a successful answer (the envelope removed); throws SigylApiError for an error
 * answer. A `204` (or `304`) gives `undefined`.
 */
export async function unwrap<D>(call: Promise<Outcome<D>>): Promise<D extends { data: infer T } ? T : undefined> {
  const { data, error, response } = await call;
  if (!response.ok && response.status !== 304) throw apiError(response, error);
  // deno-lint-ignore no-explicit-any
  return (data as any)?.data;
}
