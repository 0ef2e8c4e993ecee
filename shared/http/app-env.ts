import type { Caller } from "../auth/authenticate.ts";
import type { CallerContext } from "../db/database.ts";

/** Variables the middleware puts on the Hono context. */
export type AppEnv = {
  Variables: {
    requestId: string;
    caller: Caller;
    ctx: CallerContext;
  };
};
