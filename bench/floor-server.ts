/**
 * The bare floors: what the stack alone serves on this machine, with none of the project's
 * code — Deno's server, Hono, postgres.js and jose, nothing imported from shared/ or scripts/.
 * The benchmark runs it beside the service and reports every scenario against it, so our own
 * middleware, authentication and handlers are measured as overhead, never mistaken for the
 * floor.
 *
 *   GET /b1          B1:  `select 1`
 *   GET /b1j         B1j: the caller's access token verified with jose (ES256 against the key
 *                         set, the kind of token a hosted project's users send), then `select 1`
 *   GET /b2j/:id     B2j: the token check, then one transaction that selects the secret by
 *                         primary key and inserts its audit row (the least a value read can do)
 *
 * Environment: DATABASE_URL (a `sigyl_bench_` database, as the bench server's), SUPABASE_JWKS
 * (the public key set), PORT, SIGYL_DB_POOL_SIZE (the service's pool size, so both hold as
 * many connections). Only bench/run.ts starts it.
 */
import { Hono } from "hono";
import { createLocalJWKSet, type JWTPayload, jwtVerify } from "jose";
import postgres from "postgres";

const env = Deno.env.toObject();
const url = env.DATABASE_URL ?? "";
if (!new URL(url).pathname.startsWith("/sigyl_bench_")) {
  console.error("floor server: refusing to start outside a sigyl_bench_ database");
  Deno.exit(1);
}
const sql = postgres(url, { max: Number(env.SIGYL_DB_POOL_SIZE ?? 10), onnotice: () => {} });
const keySet = createLocalJWKSet(JSON.parse(env.SUPABASE_JWKS ?? "{}"));

/** The verified claims of the request's bearer token, or null. */
async function caller(authorization: string | undefined): Promise<JWTPayload | null> {
  const token = authorization?.match(/^Bearer\s+(\S+)$/i)?.[1];
  if (!token) return null;
  try {
    const { payload } = await jwtVerify(token, keySet, {
      algorithms: ["ES256"], audience: "authenticated", requiredClaims: ["exp", "sub", "role"],
    });
    return payload;
  } catch {
    return null;
  }
}

const app = new Hono();
const unauthenticated = () => Response.json({ error: "unauthenticated" }, { status: 401 });

app.get("/b1", async (c) => {
  const [row] = await sql`select 1 as one`;
  return c.json(row);
});

app.get("/b1j", async (c) => {
  if (!await caller(c.req.header("authorization"))) return unauthenticated();
  const [row] = await sql`select 1 as one`;
  return c.json(row);
});

app.get("/b2j/:id", async (c) => {
  const claims = await caller(c.req.header("authorization"));
  if (!claims) return unauthenticated();
  const id = c.req.param("id");
  const rows = await sql.begin((tx) => tx`
    with s as (select id, name, user_id, current_version from public.secrets where id = ${id}::uuid)
    insert into public.secret_access_logs (secret_id, secret_name, owner_id, actor_id, actor_type, action, version, user_agent)
    select s.id, s.name, s.user_id, ${claims.sub!}::uuid, 'user', 'accessed', s.current_version, ${c.req.header("user-agent") ?? null} from s
    returning secret_id as id, version`);
  if (!rows.length) return c.json({ error: "not_found" }, 404);
  return c.json(rows[0]);
});

const server = Deno.serve({ hostname: "127.0.0.1", port: Number(env.PORT ?? 0), onListen: () => {} }, app.fetch);
console.log(`floor server: serving http://127.0.0.1:${server.addr.port}`);

const shutdown = async () => {
  await server.shutdown();
  await sql.end({ timeout: 5 });
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", shutdown);
Deno.addSignalListener("SIGTERM", shutdown);
