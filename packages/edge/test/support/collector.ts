/**
 * What the edge SDK's tests deliver to: a real `tally serve` (PGlite), a port with nothing listening, and
 * a proxy in front of the collector that can be taken down and brought back, or answer late.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { serveFor, type TestServer } from '../../../server/test/support/services.js';

export { serveFor, type TestServer };

/** A port nothing listens on (yet): connections are refused, as when the collector is down. */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** Stored rows of the collector's tenant `default`, by event name. */
export async function storedCounts(s: TestServer): Promise<{ events: number; distinct: number; logs: number }> {
  const [e] = await s.server.store.sql.query<{ n: number; d: number }>(
    `SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM events`,
  );
  const [l] = await s.server.store.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM request_logs`);
  return { events: e?.n ?? 0, distinct: e?.d ?? 0, logs: l?.n ?? 0 };
}

/** Waits until the collector stored at least `events` events and `logs` request logs (writes are batched). */
export async function waitForStored(s: TestServer, events: number, logs = 0, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const t = await storedCounts(s);
    if (t.events >= events && t.logs >= logs) return t;
    if (Date.now() > deadline) throw new Error(`stored ${JSON.stringify(t)}, waiting for ${events} + ${logs}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A proxy in front of the collector, which a test can take down (its port refuses connections, as a
 * collector that is down does) and bring back on the same port, and which can hold the answers to the
 * next requests for a while after the collector gave them (the batch is stored, the sender gives up).
 */
export async function collectorProxy(target: string) {
  const upstream = new URL(target);
  let late = 0;
  let delayMs = 0;
  const answers: number[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const held = late > 0 ? (late--, delayMs) : 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const fwd = httpRequest(
        { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
        (up) => {
          const body: Buffer[] = [];
          up.on('data', (c: Buffer) => body.push(c));
          up.on('end', () => {
            answers.push(up.statusCode ?? 0);
            setTimeout(() => {
              if (res.destroyed) return;
              res.writeHead(up.statusCode ?? 502, up.headers);
              res.end(Buffer.concat(body));
            }, held);
          });
        },
      );
      fwd.on('error', () => res.destroy());
      fwd.end(Buffer.concat(chunks));
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const listen = (port: number) => new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  await listen(0);
  const { port } = server.address() as AddressInfo;
  const stop = async () => {
    const closed = new Promise((r) => server.close(r));
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  return {
    url: `http://127.0.0.1:${port}`,
    /** Status of each answer the collector gave, in order. */
    answers,
    /** Holds the next `count` answers for `ms` after the collector gave them. */
    answerLate(count: number, ms: number) {
      late = count;
      delayMs = ms;
    },
    /** The collector is down: connections to the proxy's port are refused. */
    stop,
    /** Back up, on the same port. */
    start: () => listen(port),
    close: () => (server.listening ? stop() : undefined),
  };
}
