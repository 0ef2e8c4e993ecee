/**
 * A TCP proxy to PostgreSQL that a test takes down and brings back up, to play an outage:
 * down, nothing listens on its port (connections are refused) and open connections are cut;
 * up, it forwards to the target again on the same port. Stalled, it accepts connections and
 * keeps them open but forwards nothing (a database that never answers) until `resume`.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { freePort } from "./processes.ts";

export interface TcpProxy {
  readonly port: number;
  /** `url` with its host and port replaced by the proxy's. */
  urlFor(url: string): string;
  up(): Promise<void>;
  down(): Promise<void>;
  /** Holds every byte, both ways, on open and new connections. */
  stall(): void;
  /** Sends what was held, in order, and forwards again. */
  resume(): void;
}

/** A proxy to `target` (host and port of a URL), up unless `startDown`. */
export async function createTcpProxy(target: string, options: { startDown?: boolean } = {}): Promise<TcpProxy> {
  const upstream = new URL(target);
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  let held: (() => void)[] | null = null;
  const forward = (from: Socket, to: Socket) => {
    from.on("data", (chunk) => held ? held.push(() => to.write(chunk)) : to.write(chunk));
    from.on("end", () => held ? held.push(() => to.end()) : to.end());
  };

  const up = () =>
    new Promise<void>((resolve, reject) => {
      if (server) return resolve();
      const s = createServer((client) => {
        const conn = createConnection(Number(upstream.port || 5432), upstream.hostname);
        sockets.add(client).add(conn);
        forward(client, conn);
        forward(conn, client);
        const drop = () => {
          client.destroy();
          conn.destroy();
          sockets.delete(client);
          sockets.delete(conn);
        };
        client.on("error", drop);
        conn.on("error", drop);
        client.on("close", drop);
        conn.on("close", drop);
      });
      s.once("error", reject);
      s.listen(port, "127.0.0.1", () => {
        server = s;
        resolve();
      });
    });

  const down = () =>
    new Promise<void>((resolve) => {
      const s = server;
      server = null;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
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
  const stall = () => {
    held ??= [];
  };
  const resume = () => {
    const queued = held ?? [];
    held = null;
    for (const send of queued) send();
  };

  return { port, urlFor, up, down, stall, resume };
}
