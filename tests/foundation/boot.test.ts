/**
 * Boot: the function serves before the database answers. While the runtime cannot be built
 * (database or Vault down at cold start) every request gets 503 database_unavailable in the
 * envelope; later requests retry, no faster than the backoff, and the first success serves
 * everything after it, without a restart. And the database URL: TLS unless the host is local.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLazyRuntime, type Servable } from "../../shared/boot.ts";
import { ConfigError } from "../../shared/config.ts";
import type { Database } from "../../shared/db/database.ts";
import { createPostgresDatabase, databaseTls, isLocalHost, isTransactionPoolerUrl, urlHosts } from "../../shared/db/postgres.ts";
import { ensureUser, signUserToken } from "../../scripts/lib/local.ts";
import { eventually, freePort, type Started, startDeno, stopProcess } from "../helpers/processes.ts";
import { describeOrSkip, needsPostgres } from "../helpers/skip.ts";
import { createTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.ts";

const servable = (body = "served"): Servable => ({ app: { fetch: () => new Response(body) } });
const refused = () => Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });

/** A lazy runtime over a build that fails `failures` times, on a clock the test moves. */
function lazy(options: { failures?: number; hang?: boolean; waitMs?: number } = {}) {
  let clock = 0;
  let builds = 0;
  const logs: { event: string; fields: Record<string, unknown> }[] = [];
  const runtime = createLazyRuntime({
    build: async () => {
      builds++;
      if (options.hang) return await new Promise<Servable>(() => {});
      await new Promise((r) => setTimeout(r, 5));
      if (builds <= (options.failures ?? 0)) throw refused();
      return servable();
    },
    corsOrigins: ["https://console.example.com"],
    log: (event, fields) => logs.push({ event, fields }),
    now: () => clock,
    backoffMs: 500,
    maxBackoffMs: 4000,
    waitMs: options.waitMs,
  });
  return {
    runtime,
    logs,
    builds: () => builds,
    advance: (ms: number) => (clock += ms),
    get: (path = "/secrets/health", init: RequestInit = {}) => runtime.fetch(new Request(`http://function${path}`, init)),
  };
}

const UNAVAILABLE = { success: false, error: { code: "database_unavailable", message: "The database is unavailable. Retry shortly." } };

describe("boot", () => {
  it("answers 503 database_unavailable in the envelope, through the usual headers, while the runtime cannot be built", async () => {
    const t = lazy({ failures: 1 });
    const res = await t.get("/secrets/health", { headers: { origin: "https://console.example.com" } });
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual(UNAVAILABLE);
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get("access-control-allow-origin")).toBe("https://console.example.com");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(t.logs.map((l) => l.event)).toEqual(["boot_failed"]);
    expect(t.logs[0].fields).toMatchObject({ attempt: 1, retryInMs: 500, code: "ECONNREFUSED" });
  });

  it("any route, authenticated or not, gets the same 503 while the database is down", async () => {
    const t = lazy({ failures: 1 });
    for (const [path, init] of [["/secrets", { method: "POST", body: "{}" }], ["/secrets/x/value", {}], ["/nowhere", {}]] as const) {
      const res = await t.get(path, { ...init, headers: { authorization: "Bearer x" } });
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual(UNAVAILABLE);
    }
  });

  it("a flood during an outage makes one attempt, not one per request, until the backoff has passed", async () => {
    const t = lazy({ failures: 100 });
    const first = await Promise.all(Array.from({ length: 50 }, () => t.get()));
    expect(first.every((r) => r.status === 503)).toBe(true);
    expect(t.builds()).toBe(1);
    await Promise.all(Array.from({ length: 50 }, () => t.get()));
    expect(t.builds()).toBe(1);
    t.advance(499);
    await t.get();
    expect(t.builds()).toBe(1);
    t.advance(1);
    await t.get();
    expect(t.builds()).toBe(2);
  });

  it("the backoff doubles with each failure up to its ceiling", async () => {
    const t = lazy({ failures: 100 });
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      await t.get();
      const wait = t.logs.at(-1)!.fields.retryInMs as number;
      waits.push(wait);
      t.advance(wait);
    }
    expect(waits).toEqual([500, 1000, 2000, 4000, 4000, 4000]);
  });

  it("recovers without a restart: once built, every request reaches the app and nothing is built again", async () => {
    const t = lazy({ failures: 2 });
    expect((await t.get()).status).toBe(503);
    t.advance(500);
    expect((await t.get()).status).toBe(503);
    t.advance(1000);
    const ok = await t.get();
    expect([ok.status, await ok.text()]).toEqual([200, "served"]);
    for (let i = 0; i < 5; i++) expect(await (await t.get()).text()).toBe("served");
    expect(t.builds()).toBe(3);
    expect(t.runtime.current()).not.toBeNull();
    expect(t.logs.map((l) => l.event)).toEqual(["boot_failed", "boot_failed", "boot_recovered"]);
  });

  it("requests arriving during an attempt wait for it and are served when it succeeds", async () => {
    const t = lazy();
    const replies = await Promise.all(Array.from({ length: 20 }, () => t.get()));
    expect(replies.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(t.builds()).toBe(1);
  });

  it("a database that hangs gets 503 after the wait, not a request held open until the platform kills it", async () => {
    const t = lazy({ hang: true, waitMs: 50 });
    const started = Date.now();
    const res = await t.get();
    expect(res.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(2000);
    // The attempt goes on: the next request joins it rather than starting another.
    await t.get();
    expect(t.builds()).toBe(1);
  });
});

describe("the database URL's TLS", () => {
  it("local hosts connect as the URL says, plaintext by default", () => {
    for (
      const url of [
        "postgresql://postgres@127.0.0.1:5432/db",
        "postgresql://postgres@localhost/db?sslmode=disable",
        "postgresql://postgres@[::1]:6432/db",
        "postgresql://postgres@127.0.0.2/db",
        "postgresql://postgres@%2Fvar%2Frun%2Fpostgresql/db",
        "postgresql:///db",
      ]
    ) expect(databaseTls(url), url).toBe(false);
    expect(databaseTls("postgresql://postgres@127.0.0.1/db?sslmode=require")).toBe("require");
    expect(databaseTls("postgresql://postgres@localhost/db?sslmode=verify-full")).toBe("verify-full");
  });

  it("any other host gets TLS: require by default, and a fallback to plaintext is not allowed", () => {
    const host = "postgresql://postgres.ref:pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres";
    expect(databaseTls(host)).toBe("require");
    expect(databaseTls(`${host}?sslmode=prefer`)).toBe("require");
    expect(databaseTls(`${host}?sslmode=allow`)).toBe("require");
    expect(databaseTls(`${host}?sslmode=require`)).toBe("require");
    expect(databaseTls(`${host}?sslmode=verify-ca`)).toBe("verify-full");
    expect(databaseTls(`${host}?sslmode=verify-full`)).toBe("verify-full");
    expect(databaseTls(`${host}?sslrootcert=system`)).toBe("verify-full");
    expect(databaseTls("postgresql://u:p@db.abcd.supabase.co:5432/postgres")).toBe("require");
    expect(databaseTls("postgresql://u:p@10.0.0.5/postgres")).toBe("require");
    // One remote host among local ones is enough to need TLS.
    expect(databaseTls("postgresql://u@127.0.0.1:5432,db.example.com:5432/postgres")).toBe("require");
  });

  it("refuses sslmode=disable for a remote host, naming the host and the fix, never the password", () => {
    const url = "postgresql://postgres:hunter2-password@db.example.com:5432/postgres?sslmode=disable";
    expect(() => databaseTls(url)).toThrow(ConfigError);
    expect(() => databaseTls(url)).toThrow(/db\.example\.com.*TLS is required.*sslmode=require/);
    try {
      databaseTls(url);
    } catch (err) {
      expect((err as Error).message).not.toContain("hunter2");
    }
    expect(() => databaseTls("postgresql://u@db.example.com/db?ssl=false")).toThrow(/TLS is required/);
    expect(() => createPostgresDatabase(url)).toThrow(/TLS is required/);
  });

  it("refuses an sslmode it does not know rather than guessing", () => {
    expect(() => databaseTls("postgresql://u@db.example.com/db?sslmode=on")).toThrow(/sslmode=on/);
  });

  it("reads hosts and ports as the driver does", () => {
    expect(urlHosts("postgresql://u:p%40ss@h1:5432,[::1]:6432,h3/db?x=1")).toEqual([
      { host: "h1", port: "5432" }, { host: "::1", port: "6432" }, { host: "h3", port: "" },
    ]);
    expect(isLocalHost("LOCALHOST")).toBe(true);
    expect(isLocalHost("127.0.0.1.example.com")).toBe(false);
    expect(isLocalHost("db")).toBe(false);
  });

  it("knows Supabase's transaction pooler, where prepared statements are always off", () => {
    expect(isTransactionPoolerUrl("postgresql://postgres.ref:pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres")).toBe(true);
    expect(isTransactionPoolerUrl("postgresql://postgres.ref:pw@aws-0-eu-west-1.pooler.supabase.com:5432/postgres")).toBe(false);
    expect(isTransactionPoolerUrl("postgresql://postgres@127.0.0.1:6543/postgres")).toBe(false);
  });
});

describe("the function's entry refuses a remote database without TLS", () => {
  it("exits at boot with the reason, before serving", async () => {
    const port = await freePort();
    const fn = startDeno("functions/secrets/index.ts", [], {
      DENO_SERVE_ADDRESS: `tcp:127.0.0.1:${port}`,
      SIGYL_ENV: "production",
      SUPABASE_JWT_SECRET: "t".repeat(40),
      DATABASE_URL: "postgresql://postgres:pw@db.example.com:5432/postgres?sslmode=disable",
    });
    const code = await fn.exited;
    expect(code).not.toBe(0);
    expect(fn.stderr()).toMatch(/TLS is required/);
    expect(fn.stderr()).not.toContain(":pw@");
  }, 60_000);
});

describeOrSkip("the function's entry with the database down at boot", needsPostgres, () => {
  const secret = `boot-test-${crypto.randomUUID()}`;
  let proxy: TcpProxy;
  let fn: Started;
  let base: string;
  let direct: Database;

  beforeAll(async () => {
    direct = createPostgresDatabase(process.env.DATABASE_URL!, { max: 1, prepare: process.env.SIGYL_DB_PREPARE !== "false" });
    proxy = await createTcpProxy(process.env.DATABASE_URL!, { startDown: true });
    const port = await freePort();
    base = `http://127.0.0.1:${port}/secrets`;
    // Hosted-shaped: production, a JWT secret, the database URL; nothing else of ours.
    fn = startDeno("functions/secrets/index.ts", [], {
      DENO_SERVE_ADDRESS: `tcp:127.0.0.1:${port}`,
      SIGYL_ENV: "production",
      SUPABASE_JWT_SECRET: secret,
      DATABASE_URL: proxy.urlFor(process.env.DATABASE_URL!),
      SUPABASE_DB_URL: undefined,
      SB_REGION: undefined,
    });
  });

  afterAll(async () => {
    if (fn) await stopProcess(fn, "SIGTERM");
    await proxy?.down();
    await direct?.close();
  });

  it("serves 503 in the envelope while the database is unreachable, then recovers without a restart", async () => {
    const first = await eventually(async () => {
      if (fn.child.exitCode !== null) throw new Error(`the function exited: ${fn.stderr()}`);
      return await fetch(`${base}/health`).catch(() => undefined);
    }, 60_000);
    expect(first.status).toBe(503);
    expect(await first.json()).toEqual(UNAVAILABLE);
    expect(first.headers.get("retry-after")).toMatch(/^\d+$/);

    const user = await ensureUser(direct, `boot-${crypto.randomUUID()}@test.sigyl.dev`);
    const token = await signUserToken(secret, user);
    const during = await fetch(base, {
      method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "BOOT_TEST", value: "v" }),
    });
    expect(during.status).toBe(503);
    expect((await during.json()).error.code).toBe("database_unavailable");
    expect(fn.child.exitCode).toBeNull();

    await proxy.up();
    const health = await eventually(async () => {
      const res = await fetch(`${base}/health`);
      return res.status === 200 ? await res.json() : undefined;
    }, 30_000, 250);
    expect(health.data.database).toMatchObject({ kind: "postgres", reachable: true });
    // The edge function runs no timer: without pg_cron here, health says the jobs are missing.
    expect(["pg_cron", "missing"]).toContain(health.data.jobs.scheduler);

    const value = `boot-value-${crypto.randomUUID()}`;
    const created = await fetch(base, {
      method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ name: `BOOT_${Date.now()}`, value }),
    });
    expect(created.status).toBe(201);
    const { data } = await created.json();
    const read = await fetch(`${base}/${data.id}/value`, { headers: { authorization: `Bearer ${token}` } });
    expect(read.status).toBe(200);
    expect((await read.json()).data.value).toBe(value);
    expect(fn.stderr()).toContain('"event":"boot_failed"');
    expect(fn.stderr()).toContain('"event":"boot_recovered"');
  }, 120_000);
});
