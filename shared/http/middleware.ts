import { createMiddleware } from "hono/factory";
import type { Authenticator, CallerKind } from "../auth/authenticate.ts";
import { callerContext } from "../auth/caller-context.ts";
import { appError } from "../errors.ts";
import type { AppEnv } from "./app-env.ts";

/**
 * The client address: the `x-forwarded-for` entry written by the outermost trusted proxy,
 * counted from the right (entries further left are whatever the client claimed).
 */
export function clientIp(forwardedFor: string | undefined, trustedHops: number): string | null {
  const hops = (forwardedFor ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  return hops.length >= trustedHops && trustedHops > 0 ? hops[hops.length - trustedHops] : null;
}

/**
 * Authenticates the request and prepares the database context the services act as. Users and
 * the service role are accepted; deployment tokens only where `deploymentTokens` says so.
 */
export function authenticate(authenticator: Authenticator, trustedProxyHops = 1, options: { deploymentTokens?: boolean } = {}) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const caller = await authenticator(c.req.raw.headers, options);
    c.set("caller", caller);
    c.set("ctx", callerContext(caller, {
      requestId: c.get("requestId"),
      ip: clientIp(c.req.header("x-forwarded-for"), trustedProxyHops),
      userAgent: c.req.header("user-agent") ?? null,
    }));
    await next();
  });
}

/** A route for some kinds of caller only: the others get 403 with `message`. */
export function callerKinds(kinds: readonly CallerKind[], message: string) {
  return createMiddleware<AppEnv>(async (c, next) => {
    if (!kinds.includes(c.get("caller").kind)) throw appError("forbidden", message);
    await next();
  });
}

/** Marks a response as never to be stored by a cache (value reads, env resolution). */
export const noStore = createMiddleware(async (c, next) => {
  await next();
  c.header("Cache-Control", "no-store");
  c.header("Pragma", "no-cache");
});

/**
 * For an audited read: Hono answers HEAD by running the GET handler and dropping the body,
 * which would read the value and write an `accessed` row for nothing. Such a route does not
 * take HEAD: the not-found handler answers 405 with `Allow` (where HEAD is then left out).
 */
export const refuseHead = createMiddleware<AppEnv>(async (c, next) => {
  if (c.req.method === "HEAD") return c.notFound();
  await next();
});

/** Whether a route handler is `refuseHead`, so `allowedMethods` leaves HEAD out of `Allow`. */
export const refusesHead = (handler: object) => handler === refuseHead;
