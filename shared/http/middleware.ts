import { createMiddleware } from "hono/factory";
import type { Authenticator } from "../auth/authenticate.ts";
import { callerContext } from "../auth/caller-context.ts";
import type { AppEnv } from "./app-env.ts";

/** Authenticates the request and prepares the database context the services act as. */
export function authenticate(authenticator: Authenticator) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const caller = await authenticator(c.req.raw.headers);
    c.set("caller", caller);
    c.set("ctx", callerContext(caller, {
      requestId: c.get("requestId"),
      ip: c.req.header("x-forwarded-for")?.split(",")[0]?.trim() || null,
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
