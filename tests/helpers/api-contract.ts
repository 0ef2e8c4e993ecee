/**
 * The API's answers checked against its own OpenAPI document. `request()` of the harness runs
 * every answer the API suites receive through `check`, which throws (failing the test) when
 * the answer is not one the document describes for that operation: a status it does not list,
 * another content type, a body its schema refuses (compiled with Ajv, JSON Schema 2020-12, the
 * dialect of OpenAPI 3.1), a header it promises missing, or a header that matters sent where
 * it is not described.
 */
import Ajv2020, { type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { ERRORS } from "../../shared/errors.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

/** What was answered, as the harness has it. */
export interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

/**
 * Headers that carry meaning for a client: each must be described where it is sent.
 * (`X-Request-Id` is on every answer; the security and CORS headers belong to no operation.)
 */
const MEANINGFUL = ["etag", "location", "idempotent-replayed", "x-next-cursor", "cache-control"];
const METHODS = ["get", "post", "put", "patch", "delete"] as const;

interface CompiledResponse {
  /** Described headers: always sent (`required`) or not, and the schema of their value. */
  headers: Map<string, { required: boolean; validate: ValidateFunction | null }>;
  content: Map<string, ValidateFunction>;
}

interface Operation {
  id: string;
  pattern: RegExp;
  /** Literal segments outrank parameters, as the router registers `/audit` before `/:id`. */
  params: number;
  responses: Map<string, CompiledResponse>;
}

export class ContractViolation extends Error {
  override name = "ContractViolation";
}

/** `#/components/…` references replaced by what they point at (the document has no cycles). */
function dereference(node: Json, doc: Json): Json {
  if (Array.isArray(node)) return node.map((n) => dereference(n, doc));
  if (!node || typeof node !== "object") return node;
  if (typeof node.$ref === "string" && node.$ref.startsWith("#/")) {
    const target = node.$ref.slice(2).split("/").reduce((at: Json, key: string) => at?.[key.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
    if (target === undefined) throw new ContractViolation(`dangling $ref ${node.$ref}`);
    return dereference(target, doc);
  }
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, dereference(v, doc)]));
}

const mediaTypeOf = (contentType: string | null) => contentType?.split(";")[0].trim().toLowerCase() ?? "";

function describeErrors(validate: ValidateFunction): string {
  return (validate.errors ?? []).slice(0, 5).map((e) => `${e.instancePath || "(root)"} ${e.message}${e.params ? ` ${JSON.stringify(e.params)}` : ""}`).join("; ");
}

/** The checker of answers for one OpenAPI document. */
export function apiContract(document: Json) {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  const doc = dereference({ paths: document.paths }, document);

  const operations: Operation[] = [];
  for (const [path, item] of Object.entries<Json>(doc.paths)) {
    const segments = path.split("/");
    const pattern = new RegExp(`^${segments.map((s) => /^\{.+\}$/.test(s) ? "[^/]+" : s.replace(/[.*+?^$()|[\]\\]/g, "\\$&")).join("/")}/?$`);
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const responses = new Map<string, CompiledResponse>();
      for (const [status, response] of Object.entries<Json>(op.responses)) {
        const headers = new Map<string, { required: boolean; validate: ValidateFunction | null }>();
        for (const [name, h] of Object.entries<Json>(response.headers ?? {})) {
          headers.set(name.toLowerCase(), { required: h.required === true, validate: h.schema ? ajv.compile(h.schema) : null });
        }
        const content = new Map<string, ValidateFunction>();
        for (const [type, media] of Object.entries<Json>(response.content ?? {})) content.set(type, ajv.compile(media.schema ?? {}));
        responses.set(status, { headers, content });
      }
      operations.push({ id: `${method.toUpperCase()} ${path}`, pattern, params: segments.filter((s) => s.startsWith("{")).length, responses });
    }
  }
  operations.sort((a, b) => a.params - b.params);

  const find = (method: string, path: string) => operations.find((o) => o.id.startsWith(`${method} `) && o.pattern.test(path));

  /** An answer no operation gives (unknown route, another method, refused before routing): a catalogued error. */
  function checkUnrouted(where: string, answer: Answer, body: Json) {
    const code = body?.error?.code as keyof typeof ERRORS | undefined;
    if (body?.success !== false || !code || !Object.hasOwn(ERRORS, code)) {
      throw new ContractViolation(`${where}: no operation describes this answer and it is not a catalogued error (${answer.status})`);
    }
    if (ERRORS[code].status !== answer.status) {
      throw new ContractViolation(`${where}: ${code} answered with ${answer.status}, the catalogue says ${ERRORS[code].status}`);
    }
  }

  /**
   * Throws a `ContractViolation` unless `answer` is one the document describes for `method`
   * on `url` (a path under the base path, with or without a query string).
   */
  function check(method: string, url: string, answer: Answer): void {
    const path = url.split("?")[0];
    const where = `${method} ${path} → ${answer.status}`;
    const upper = method.toUpperCase();
    // A CORS preflight is answered by the CORS middleware, for every path alike.
    if (upper === "OPTIONS") return;
    const head = upper === "HEAD";
    const op = find(head ? "GET" : upper, path);
    const parse = () => {
      try {
        return JSON.parse(answer.text);
      } catch {
        return undefined;
      }
    };
    // HEAD of an audited read is refused: 405 naming the methods the route does take.
    if (op && head && answer.status === 405) {
      if (!answer.headers.get("allow")?.includes("GET")) throw new ContractViolation(`${where}: 405 without Allow`);
      return;
    }
    if (!op && head) {
      if (![401, 404, 405].includes(answer.status)) throw new ContractViolation(`${where}: no operation describes this answer`);
      return;
    }
    if (!op) return checkUnrouted(where, answer, parse());

    const response = op.responses.get(String(answer.status));
    if (!response) {
      throw new ContractViolation(`${where}: ${op.id} does not describe status ${answer.status} (${answer.text.slice(0, 200)})`);
    }

    for (const [name, { required, validate }] of response.headers) {
      const value = answer.headers.get(name);
      if (value === null) {
        if (required) throw new ContractViolation(`${where}: header ${name} is required but missing`);
        continue;
      }
      if (validate && !validate(value)) throw new ContractViolation(`${where}: header ${name}: ${describeErrors(validate)}`);
    }
    for (const name of MEANINGFUL) {
      if (answer.headers.has(name) && !response.headers.has(name)) {
        throw new ContractViolation(`${where}: header ${name} is sent but not described`);
      }
    }

    if (head) return;
    if (response.content.size === 0) {
      if (answer.text.length) throw new ContractViolation(`${where}: a body where none is described`);
      return;
    }
    const type = mediaTypeOf(answer.headers.get("content-type"));
    const validate = response.content.get(type);
    if (!validate) {
      throw new ContractViolation(`${where}: content type "${type}" is not one of ${[...response.content.keys()].join(", ")}`);
    }
    const body = type === "application/json" ? parse() : answer.text;
    if (body === undefined) throw new ContractViolation(`${where}: the body is not JSON`);
    if (!validate(body)) {
      throw new ContractViolation(`${where}: the body breaks ${op.id}'s schema for ${answer.status}: ${describeErrors(validate)}`);
    }
  }

  return { check, operations: operations.map((o) => o.id) };
}

export type ApiContract = ReturnType<typeof apiContract>;
