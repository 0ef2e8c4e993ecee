/**
 * Hash routes (`#/secrets/…`): any static host serves them with no rewrite rule. A route
 * names pages and ids only, never a value.
 */
import { useEffect, useState } from "react";

export type Route =
  | { page: "secrets" }
  | { page: "new" }
  | { page: "secret"; id: string }
  | { page: "edit"; id: string }
  | { page: "activity" }
  | { page: "deleted" }
  | { page: "deployments" }
  | { page: "deployment"; id: string }
  | { page: "unknown" };

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const [a, b, c] = parts;
  if (parts.length === 0 || (a === "secrets" && !b)) return { page: "secrets" };
  if (a === "secrets" && b === "new" && !c) return { page: "new" };
  if (a === "secrets" && b && !c) return { page: "secret", id: b };
  if (a === "secrets" && b && c === "edit") return { page: "edit", id: b };
  if (a === "activity") return { page: "activity" };
  if (a === "deleted") return { page: "deleted" };
  if (a === "deployments" && !b) return { page: "deployments" };
  if (a === "deployments" && b) return { page: "deployment", id: b };
  return { page: "unknown" };
}

export const href = {
  secrets: () => "#/secrets",
  newSecret: () => "#/secrets/new",
  secret: (id: string) => `#/secrets/${encodeURIComponent(id)}`,
  edit: (id: string) => `#/secrets/${encodeURIComponent(id)}/edit`,
  activity: () => "#/activity",
  deleted: () => "#/deleted",
  deployments: () => "#/deployments",
  deployment: (id: string) => `#/deployments/${encodeURIComponent(id)}`,
};

export const navigate = (to: string) => {
  location.hash = to;
};

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash));
    addEventListener("hashchange", onChange);
    return () => removeEventListener("hashchange", onChange);
  }, []);
  return route;
}
