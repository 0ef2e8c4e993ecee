import { createMiddleware } from "hono/factory";
import { type Authenticator, unauthenticated } from "../auth/authenticate.ts";

const ENV_ROUTE = /^\/secrets\/deployments\/[0-9a-fA-F-]{36}\/env$/;
import { callerContext } from "../auth/caller-context.ts";
import type { AppEnv } from "./app-env.ts";

/**
 * The client address: the `x-forwarded-for` entry written by the outermost trusted proxy,
 * counted from the right (entries further left are whatever the client claimed).
 */
export function clientIp(forwardedFor: string | undefined, trustedHops: number): string | null {
  const hops = (forwardedFor ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  return hops.length >= trustedHops && trustedHops > 0 ? hops[hops.length - trustedHops] : null;
}

/** Authenticates the request and prepares the database context the services act as. */
export function authenticate(authenticator: Authenticator, trustedProxyHops = 1) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const caller = await authenticator(c.req.raw.headers);
    // A deployment token opens exactly one route: the env of its deployment.
    if (caller.kind === "deployment" && !(c.req.method === "GET" && ENV_ROUTE.test(c.req.path))) {
      throw unauthenticated();
    }
    c.set("caller", caller);
    c.set("ctx", callerContext(caller, {
      requestId: c.get("requestId"),
      ip: clientIp(c.req.header("x-forwarded-for"), trustedProxyHops),
      userAgent: c.req.header("user-agent") ?? null,
    }));
    await next();
  });
}

/** Marks a response as never to be stored by a cache (value reads, env resolution). */
export const noStore = createMiddleware(async (c, next) => {
  await next();
  c.header("Cache-Control", "no-store");
  c.header("Pragma", "no-cache");
});
