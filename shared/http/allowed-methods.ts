/**
 * The methods an app's routes take for a path, for 405 answers with `Allow`: Hono answers a
 * wrong method with its not-found handler and offers no such lookup, so it is read off the
 * app's own route table (middleware, registered for every method, does not count).
 */
import { refusesHead } from "./middleware.ts";

interface RouteEntry {
  method: string;
  path: string;
  handler?: object;
}

/** Compiled once per route table (and again if it grew). */
const compiled = new WeakMap<
  readonly RouteEntry[],
  { size: number; table: { method: string; pattern: RegExp; refusesHead: boolean }[] }
>();

/** `/secrets/:id/value` → a RegExp matching one segment per parameter, `*` anything. */
function toPattern(path: string): RegExp {
  const source = path.split("/").map((segment) =>
    segment.startsWith(":") ? "[^/]+" : segment === "*" ? ".*" : segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
  ).join("/");
  return new RegExp(`^${source}/?$`);
}

export function allowedMethods(routes: readonly RouteEntry[], path: string): string[] {
  let entry = compiled.get(routes);
  if (entry?.size !== routes.length) {
    const table = routes.filter((r) => r.method !== "ALL").map((r) => ({
      method: r.method,
      pattern: toPattern(r.path),
      refusesHead: r.handler !== undefined && refusesHead(r.handler),
    }));
    compiled.set(routes, entry = { size: routes.length, table });
  }
  const matching = entry.table.filter((r) => r.pattern.test(path));
  const methods = new Set(matching.map((r) => r.method));
  // HEAD is answered by the GET handler, unless that route refuses it (an audited read).
  if (methods.has("GET") && !matching.some((r) => r.refusesHead)) methods.add("HEAD");
  return [...methods];
}
