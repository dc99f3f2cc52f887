/**
 * Closing the HTTP server without waiting on clients. `server.close()` stops accepting and Node closes
 * the keep-alive connections that sit idle between requests, but not a connection that never sent a
 * request (an HTTP client's spare socket, a port scanner) nor one that goes idle after the close began:
 * each held `tally serve`'s shutdown until its headers or keep-alive timeout (a minute or more).
 *
 * So, once closing: a connection with no request in flight is destroyed at once, and a response still
 * in flight is sent with `Connection: close`, so its socket ends with it. No request in flight is cut.
 */
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

export function drainOnClose(app: FastifyInstance): void {
  const busy = new Map<Socket, number>();
  const sockets = new Set<Socket>();
  let closing = false;
  app.server.on('connection', (socket: Socket) => {
    if (closing) return void socket.destroy();
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      busy.delete(socket);
    });
  });
  app.server.on('request', (req, res) => {
    const socket = req.socket;
    busy.set(socket, (busy.get(socket) ?? 0) + 1);
    if (closing && !res.headersSent) res.setHeader('connection', 'close');
    res.once('close', () => {
      const n = (busy.get(socket) ?? 1) - 1;
      if (n > 0) busy.set(socket, n);
      else busy.delete(socket);
      if (closing && n <= 0) socket.destroy();
    });
  });
  app.addHook('preClose', async () => {
    closing = true;
    for (const socket of sockets) if (!busy.has(socket)) socket.destroy();
  });
  app.addHook('onSend', async (_request, reply) => {
    if (closing) void reply.header('connection', 'close');
  });
}
