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
  // Only a verified deployment token may speak as a deployment; a JWT naming itself one is not.
  const { sigyl_actor: _actor, deployment_id: _deployment, ...rest } = caller.claims as Record<string, unknown>;
  const claims = caller.kind === "deployment" ? caller.claims as Record<string, unknown> : rest;
  return { role: caller.kind === "service" ? "service_role" : "authenticated", claims, headers };
}
