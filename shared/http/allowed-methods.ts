/**
 * The methods an app's routes take for a path, for 405 answers with `Allow`: Hono answers a
 * wrong method with its not-found handler and offers no such lookup, so it is read off the
 * app's own route table (middleware, registered for every method, does not count).
 */
interface RouteEntry {
  method: string;
  path: string;
}

/** Compiled once per route table (and again if it grew). */
const compiled = new WeakMap<readonly RouteEntry[], { size: number; table: { method: string; pattern: RegExp }[] }>();

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
    const table = routes.filter((r) => r.method !== "ALL").map((r) => ({ method: r.method, pattern: toPattern(r.path) }));
    compiled.set(routes, entry = { size: routes.length, table });
  }
  const methods = new Set(entry.table.filter((r) => r.pattern.test(path)).map((r) => r.method));
  if (methods.has("GET")) methods.add("HEAD");
  return [...methods];
}
