/**
 * GET /secrets/health: 200 with the database's state and who runs the scheduled jobs
 * (`degraded`, still 200, when nobody does); 503 with a JSON error while the database is
 * unreachable; back to 200 by itself when it returns.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../shared/app.ts";
import { createAuthenticator } from "../../shared/auth/authenticate.ts";
import { systemClock } from "../../shared/clock.ts";
import { createKeyring } from "../../shared/crypto/keyring.ts";
import type { Database, Queryable } from "../../shared/db/database.ts";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";
import { SCHEDULED_JOBS } from "../../shared/health/health-dal.ts";
import { assessJobs } from "../../shared/health/health-jobs.ts";
import { MIGRATIONS_DIR } from "../../scripts/lib/local.ts";
import { eventually } from "../helpers/processes.ts";
import { JWT_SECRET, openApiTestDatabase, openTestDatabases } from "../helpers/harness.ts";
import { describeOrSkip, needsPostgres, skipNow } from "../helpers/skip.ts";
import { createTcpProxy } from "../helpers/tcp-proxy.ts";

async function appOver(db: Database, options: { localJobTimer?: boolean } = {}) {
  const keyring = await createKeyring([{ version: 1, status: "active", material: Buffer.alloc(32, 1).toString("base64") }]);
  return createApp({
    db, keyring, clock: systemClock, authenticator: createAuthenticator({ jwtSecret: JWT_SECRET }, systemClock), log: () => {},
    localJobTimer: options.localJobTimer,
  });
}

const health = async (app: Awaited<ReturnType<typeof appOver>>) => {
  const res = await app.request("/secrets/health");
  return { status: res.status, body: await res.json() };
};

const ALL_JOBS = SCHEDULED_JOBS.map((j) => j.name);
const scheduled = (overrides: Record<string, { schedule?: string; active?: boolean } | null> = {}) =>
  SCHEDULED_JOBS.flatMap((j) => {
    if (overrides[j.name] === null) return [];
    return [{ name: j.name, schedule: j.schedule, active: true, ...overrides[j.name] }];
  });

/** A database that answers the health probe as a server with pg_cron and these `cron.job` rows. */
function withCronJobs(rows: ReturnType<typeof scheduled>): Database {
  const query = ((text: string) => {
    if (!text.includes("private.health_probe")) return Promise.reject(new Error(`unexpected query: ${text}`));
    return Promise.resolve([{ migrations: 9, pg_cron: true, jobs: rows, login: "sigyl_api" }]);
  }) as Queryable["query"];
  return {
    kind: "postgres", location: "x", query, exec: async () => {},
    transaction: () => Promise.reject(new Error("unused")), close: async () => {},
  };
}

describe("health", () => {
  it("answers 503 with a JSON error, and no detail, when the database fails", async () => {
    const failing: Database = {
      kind: "postgres", location: "x",
      query: () => Promise.reject(Object.assign(new Error("connect ECONNREFUSED 10.1.2.3:5432"), { code: "ECONNREFUSED" })),
      exec: () => Promise.reject(new Error("down")),
      transaction: () => Promise.reject(new Error("down")),
      close: async () => {},
    };
    const res = await health(await appOver(failing));
    expect(res).toEqual({ status: 503, body: { success: false, error: { code: "database_unavailable", message: "The database is unavailable. Retry shortly." } } });
  });

  it("times out a database that hangs instead of waiting forever", async () => {
    const hanging: Database = {
      kind: "postgres", location: "x", query: () => new Promise(() => {}), exec: async () => {}, transaction: () => new Promise(() => {}), close: async () => {},
    };
    const started = Date.now();
    expect((await health(await appOver(hanging))).status).toBe(503);
    // The probe gives up after 3 s; the rest is room for a loaded machine.
    expect(Date.now() - started).toBeLessThan(8000);
  });
});

describe("health reports who runs the scheduled jobs", () => {
  let db: Database;
  beforeAll(async () => {
    db = await openApiTestDatabase();
  });
  afterAll(async () => {
    await db?.close();
  });

  it("names the same jobs, with the same schedules, as the migrations schedule", async () => {
    const files = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith(".sql"));
    const found: { name: string; schedule: string }[] = [];
    for (const file of files) {
      const sql = await readFile(join(MIGRATIONS_DIR, file), "utf8");
      for (const m of sql.matchAll(/cron\.schedule\(\s*'([^']+)'\s*,\s*'([^']+)'/g)) found.push({ name: m[1], schedule: m[2] });
    }
    expect(found).toEqual(SCHEDULED_JOBS);
  });

  it("ok with every job scheduled in pg_cron, as the migrations schedule them", () => {
    expect(assessJobs({ pgCron: true, jobs: scheduled() }, { localTimer: false })).toEqual({ scheduler: "pg_cron", missing: [] });
  });

  it("a job absent, switched off or on another schedule is missing, whether or not a local timer runs", () => {
    const jobs = scheduled({
      "sigyl-expire-secrets": null,
      "sigyl-purge-deleted": { active: false },
      "sigyl-trim-job-history": { schedule: "0 * * * *" },
    });
    for (const localTimer of [false, true]) {
      const report = assessJobs({ pgCron: true, jobs }, { localTimer });
      expect(report).toMatchObject({
        scheduler: "pg_cron", missing: ["sigyl-expire-secrets", "sigyl-purge-deleted", "sigyl-trim-job-history"],
      });
      expect(report.fix).toMatch(/schedule/);
    }
  });

  it("without pg_cron, the local timer runs them: ok", () => {
    expect(assessJobs({ pgCron: false, jobs: [] }, { localTimer: true })).toEqual({ scheduler: "local timer", missing: [] });
  });

  it("without pg_cron and without a local timer (hosted), every job is missing and the fix is named", () => {
    const report = assessJobs({ pgCron: false, jobs: [] }, { localTimer: false });
    expect(report).toMatchObject({ scheduler: "missing", missing: ALL_JOBS });
    expect(report.fix).toMatch(/pg_cron/);
  });

  it("degraded, still 200, when pg_cron is missing and nothing else runs the jobs", async (ctx) => {
    const [{ cron }] = await db.query<{ cron: boolean }>(`select exists (select 1 from pg_extension where extname = 'pg_cron') as cron`);
    if (cron) skipNow(ctx, "this database has pg_cron (the cron.job test covers it)");
    const res = await health(await appOver(db, { localJobTimer: false }));
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      status: "degraded",
      database: { reachable: true, pgCron: false },
      jobs: { scheduler: "missing", missing: ALL_JOBS },
    });
  });

  it("ok on the same database when this process runs the local timer", async (ctx) => {
    const [{ cron }] = await db.query<{ cron: boolean }>(`select exists (select 1 from pg_extension where extname = 'pg_cron') as cron`);
    if (cron) skipNow(ctx, "this database has pg_cron (the cron.job test covers it)");
    const res = await health(await appOver(db, { localJobTimer: true }));
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ status: "ok", jobs: { scheduler: "local timer", missing: [] } });
  });

  it("reads cron.job where pg_cron is installed: the migrated jobs are found", async (ctx) => {
    const [{ cron }] = await db.query<{ cron: boolean }>(`select exists (select 1 from pg_extension where extname = 'pg_cron') as cron`);
    if (!cron) skipNow(ctx, "pg_cron is not installed in this database");
    const res = await health(await appOver(db, { localJobTimer: false }));
    expect(res.body.data).toMatchObject({ status: "ok", database: { pgCron: true }, jobs: { scheduler: "pg_cron", missing: [] } });
  });

  it("degraded, still 200, when pg_cron is installed but a job is not scheduled", async () => {
    const res = await health(await appOver(withCronJobs(scheduled({ "sigyl-purge-deleted": null }))));
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({
      status: "degraded",
      jobs: { scheduler: "pg_cron", missing: ["sigyl-purge-deleted"] },
    });
  });
});

describe("health reports which login the service acts as", () => {
  let dbs: Awaited<ReturnType<typeof openTestDatabases>>;
  beforeAll(async () => {
    dbs = await openTestDatabases();
  });
  afterAll(async () => {
    await dbs?.api.close();
    await dbs?.owner.close();
  });

  it("ok as sigyl_api, the function's own login", async () => {
    const res = await health(await appOver(dbs.api, { localJobTimer: true }));
    expect(res.status).toBe(200);
    expect(res.body.data.database.login).toBe("sigyl_api");
    expect(res.body.data.database.fix).toBeUndefined();
    expect(res.body.data.status).toBe(res.body.data.jobs.missing.length ? "degraded" : "ok");
  });

  it("degraded, still 200, as the owner (hosted: SUPABASE_DB_URL only), naming the login and the fix", async () => {
    const res = await health(await appOver(dbs.owner, { localJobTimer: true }));
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ status: "degraded", database: { reachable: true, login: "postgres" } });
    expect(res.body.data.database.fix).toMatch(/sigyl_api.*DATABASE_URL/);
  });
});

describeOrSkip("health against PostgreSQL through a proxy that goes down and up", needsPostgres, () => {
  it("turns 503 while the database is unreachable and recovers by itself", async () => {
    const proxy = await createTcpProxy(process.env.DATABASE_URL!);
    const db = createPostgresDatabase(proxy.urlFor(process.env.DATABASE_URL!), { max: 2, prepare: process.env.SIGYL_DB_PREPARE !== "false" });
    const app = await appOver(db);
    try {
      expect((await health(app)).status).toBe(200);
      await proxy.down();
      await eventually(async () => ((await health(app)).status === 503 ? true : undefined), 20_000);
      const during = await health(app);
      expect(during.body.error.code).toBe("database_unavailable");
      await proxy.up();
      const back = await eventually(async () => {
        const h = await health(app);
        return h.status === 200 ? h : undefined;
      }, 20_000);
      expect(back.body.data.database.reachable).toBe(true);
    } finally {
      await proxy.down();
      await db.close();
    }
  });
});
