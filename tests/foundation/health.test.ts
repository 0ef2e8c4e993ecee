/**
 * GET /secrets/health: 200 with the database's state; 503 with a JSON error while the
 * database is unreachable; back to 200 by itself when it returns.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { createApp } from "../../shared/app.ts";
import { createAuthenticator } from "../../shared/auth/authenticate.ts";
import { systemClock } from "../../shared/clock.ts";
import { createKeyring } from "../../shared/crypto/keyring.ts";
import type { Database } from "../../shared/db/database.ts";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";
import { eventually, freePort } from "../helpers/processes.ts";
import { JWT_SECRET } from "../helpers/harness.ts";
import { describeOrSkip, needsPostgres } from "../helpers/skip.ts";

async function appOver(db: Database) {
  const keyring = await createKeyring([{ version: 1, status: "active", material: Buffer.alloc(32, 1).toString("base64") }]);
  return createApp({ db, keyring, clock: systemClock, authenticator: createAuthenticator({ jwtSecret: JWT_SECRET }, systemClock), log: () => {} });
}

const health = async (app: Awaited<ReturnType<typeof appOver>>) => {
  const res = await app.request("/secrets/health");
  return { status: res.status, body: await res.json() };
};

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
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describeOrSkip("health against PostgreSQL through a proxy that goes down and up", needsPostgres, () => {
  it("turns 503 while the database is unreachable and recovers by itself", async () => {
    const target = new URL(process.env.DATABASE_URL!);
    const port = await freePort();
    const sockets = new Set<Socket>();
    let proxy: Server;
    const listen = () => new Promise<void>((resolve) => {
      proxy = createServer((client) => {
        const upstream = createConnection(Number(target.port || 5432), target.hostname);
        sockets.add(client).add(upstream);
        client.pipe(upstream).pipe(client);
        const drop = () => { client.destroy(); upstream.destroy(); };
        client.on("error", drop); upstream.on("error", drop); client.on("close", drop); upstream.on("close", drop);
      }).listen(port, "127.0.0.1", () => resolve());
    });
    const down = () => new Promise<void>((resolve) => {
      proxy.close(() => resolve());
      for (const s of sockets) s.destroy();
      sockets.clear();
    });
    await listen();
    const url = new URL(target);
    url.port = String(port);
    const db = createPostgresDatabase(url.toString(), { max: 2 });
    const app = await appOver(db);
    try {
      expect((await health(app)).status).toBe(200);
      await down();
      await eventually(async () => ((await health(app)).status === 503 ? true : undefined), 20_000);
      const during = await health(app);
      expect(during.body.error.code).toBe("database_unavailable");
      await listen();
      const back = await eventually(async () => {
        const h = await health(app);
        return h.status === 200 ? h : undefined;
      }, 20_000);
      expect(back.body.data.database.reachable).toBe(true);
    } finally {
      await down();
      await db.close();
    }
  });
});
