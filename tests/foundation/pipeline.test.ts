/**
 * Pipelining: a transaction's statements reach the server before the first of them is
 * answered (BEGIN, the caller's context and the first statement in one go), and without it
 * each waits for the previous answer. Shown with a loopback proxy that forwards what the
 * client sends and holds what the server answers.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, expect } from "vitest";
import { createPostgresDatabase } from "../../shared/db/postgres.ts";
import { asCaller } from "../../shared/db/database.ts";
import { describeOrSkip, itOrSkip, needsPostgres } from "../helpers/skip.ts";

/** Forwards client → server at once; server → client only while `holding` is false. */
function holdingProxy(target: URL) {
  const state = { holding: false, sent: "", held: [] as (() => void)[] };
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: target.hostname, port: Number(target.port || 5432) });
    sockets.add(client).add(upstream);
    client.on("data", (d) => {
      state.sent += d.toString("latin1");
      upstream.write(d);
    });
    upstream.on("data", (d) => (state.holding ? state.held.push(() => client.write(d)) : client.write(d)));
    for (const s of [client, upstream]) s.on("error", () => {}).on("close", () => (client.destroy(), upstream.destroy()));
  });
  return {
    state,
    listen: () => new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port))),
    release() {
      state.holding = false;
      for (const send of state.held.splice(0)) send();
    },
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

const CALLER = { role: "authenticated" as const, claims: { role: "authenticated", sub: "00000000-0000-4000-8000-000000000001" }, headers: {} };
const FIRST = "select 'pipeline-marker-1' as one";
const SECOND = "select 'pipeline-marker-2' as two";

describeOrSkip("pipelined transactions", needsPostgres, () => {
  let proxy: ReturnType<typeof holdingProxy>;
  let url: string;
  beforeAll(async () => {
    proxy = holdingProxy(new URL(process.env.DATABASE_URL!));
    const u = new URL(process.env.DATABASE_URL!);
    u.host = `127.0.0.1:${await proxy.listen()}`;
    url = u.toString();
  });
  afterAll(async () => {
    await proxy?.close();
  });

  async function sentBeforeAnyAnswer(pipeline: boolean) {
    const db = createPostgresDatabase(url, { max: 1, pipeline });
    try {
      await db.query("select 1"); // connected and authenticated before anything is held
      proxy.state.sent = "";
      proxy.state.holding = true;
      const done = asCaller(db, CALLER, async (tx) => {
        await tx.query(`${FIRST} where $1::int = 1`, [1]);
        return await tx.query(`${SECOND} where $1::int = 1`, [1]);
      });
      await new Promise((r) => setTimeout(r, 300));
      const sent = proxy.state.sent;
      proxy.release();
      expect(await done).toEqual([{ two: "pipeline-marker-2" }]);
      return sent;
    } finally {
      proxy.release();
      await db.close();
    }
  }

  itOrSkip("sends BEGIN, the caller's context and the first statement before any answer", needsPostgres, async () => {
    const sent = await sentBeforeAnyAnswer(true);
    expect(sent).toContain("begin");
    expect(sent).toContain("set_config");
    expect(sent).toContain("pipeline-marker-1");
    // The second statement depends on the first's answer in the code above: it waits.
    expect(sent).not.toContain("pipeline-marker-2");
  });

  itOrSkip("without pipelining, sends BEGIN alone and waits for its answer", needsPostgres, async () => {
    const sent = await sentBeforeAnyAnswer(false);
    expect(sent).toContain("begin");
    expect(sent).not.toContain("set_config");
    expect(sent).not.toContain("pipeline-marker-1");
  });
});
