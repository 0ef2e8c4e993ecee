import type { CallerContext } from "../db/database.ts";
import type { Caller } from "./authenticate.ts";

/** What the audit records of the request: never a credential, never a body. */
export interface RequestMeta {
  requestId: string;
  ip: string | null;
  userAgent: string | null;
}

/** The database context of a caller: role and claims as PostgREST would set them. */
export function callerContext(caller: Caller, meta: RequestMeta): CallerContext {
  const headers: Record<string, string> = { "x-request-id": meta.requestId };
  if (meta.ip) headers["x-forwarded-for"] = meta.ip;
  if (meta.userAgent) headers["user-agent"] = meta.userAgent;
  return {
    role: caller.kind === "service" ? "service_role" : "authenticated",
    claims: caller.claims as Record<string, unknown>,
    headers,
  };
}
