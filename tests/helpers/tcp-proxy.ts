/**
 * A TCP proxy to PostgreSQL that a test uses to play database faults, on one loopback port:
 *
 * - `down`: nothing listens (connections are refused) and open connections are cut; `up`
 *   forwards to the target again on the same port;
 * - `cut`: every open connection is cut at once, new ones are forwarded (a failover, a pooler
 *   restart); `drop`: the same, and until `resume` every new connection is reset as soon as it
 *   is accepted;
 * - `stall`: connections are accepted and kept open but nothing is forwarded, either way (a
 *   database that never answers), until `resume` sends what was held, in order;
 * - `loseCommitAnswers`: until `resume`, a connection is cut as soon as the database answers a
 *   COMMIT, which never reaches the client: the transaction is committed and its client cannot
 *   know it (the case a retry with an idempotency key exists for).
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { freePort } from "./processes.ts";

export interface TcpProxy {
  readonly port: number;
  /** `url` with its host and port replaced by the proxy's. */
  urlFor(url: string): string;
  up(): Promise<void>;
  down(): Promise<void>;
  /** Cuts every open connection, both ways; new ones are forwarded. */
  cut(): void;
  /** Cuts every open connection and resets each new one on accept, until `resume`. */
  drop(): void;
  /** Holds every byte, both ways, on open and new connections. */
  stall(): void;
  /** Cuts a connection when the database answers a COMMIT, before the client hears it, until `resume`. */
  loseCommitAnswers(): void;
  /** Ends `drop`, `stall` and `loseCommitAnswers`: sends what was held, in order, and forwards again. */
  resume(): void;
  /** Client connections open now. */
  connections(): number;
  /** Commits whose answer was lost, since the proxy started. */
  lostCommits(): number;
}

/**
 * PostgreSQL's CommandComplete for a COMMIT that committed ('C', length 11, "COMMIT\0"): a
 * failed transaction's COMMIT answers "ROLLBACK" instead.
 */
const COMMIT_DONE = Buffer.from([0x43, 0, 0, 0, 11, ...Buffer.from("COMMIT"), 0]);

/** A proxy to `target` (host and port of a URL), up unless `startDown`. */
export async function createTcpProxy(target: string, options: { startDown?: boolean } = {}): Promise<TcpProxy> {
  const upstream = new URL(target);
  const port = await freePort();
  /** Each open client connection, with the function that cuts it and its database side. */
  const open = new Map<Socket, () => void>();
  let server: Server | null = null;
  let held: (() => void)[] | null = null;
  let dropping = false;
  let losingCommits = false;
  let lost = 0;

  const accept = (client: Socket) => {
    if (dropping) {
      client.on("error", () => {});
      client.resetAndDestroy();
      return;
    }
    const conn = createConnection(Number(upstream.port || 5432), upstream.hostname);
    const drop = () => {
      client.destroy();
      conn.destroy();
      open.delete(client);
    };
    open.set(client, drop);
    client.on("data", (chunk) => held ? held.push(() => conn.write(chunk)) : conn.write(chunk));
    client.on("end", () => held ? held.push(() => conn.end()) : conn.end());
    conn.on("data", (chunk: Buffer) => {
      if (losingCommits && chunk.includes(COMMIT_DONE)) {
        lost++;
        return drop();
      }
      held ? held.push(() => client.write(chunk)) : client.write(chunk);
    });
    conn.on("end", () => held ? held.push(() => client.end()) : client.end());
    for (const socket of [client, conn]) {
      socket.on("error", drop);
      socket.on("close", drop);
    }
  };

  const up = () =>
    new Promise<void>((resolve, reject) => {
      if (server) return resolve();
      const s = createServer(accept);
      s.once("error", reject);
      s.listen(port, "127.0.0.1", () => {
        server = s;
        resolve();
      });
    });

  const cut = () => {
    for (const drop of [...open.values()]) drop();
  };

  const down = () =>
    new Promise<void>((resolve) => {
      const s = server;
      server = null;
      cut();
      if (!s) return resolve();
      s.close(() => resolve());
    });

  const urlFor = (url: string) => {
    const u = new URL(url);
    u.hostname = "127.0.0.1";
    u.port = String(port);
    return u.toString();
  };

  if (!options.startDown) await up();
  const drop = () => {
    dropping = true;
    cut();
  };
  const stall = () => {
    held ??= [];
  };
  const loseCommitAnswers = () => {
    losingCommits = true;
  };
  const resume = () => {
    dropping = false;
    losingCommits = false;
    const queued = held ?? [];
    held = null;
    for (const send of queued) send();
  };

  return {
    port, urlFor, up, down, cut, drop, stall, loseCommitAnswers, resume,
    connections: () => open.size,
    lostCommits: () => lost,
  };
}
