import { connect, type Socket } from 'node:net';
import Fastify from 'fastify';
import { expect, it } from 'vitest';
import { drainOnClose } from '../src/http-drain.js';

function rawRequest(port: number, path: string): { socket: Socket; answer: Promise<string> } {
  const socket = connect(port, '127.0.0.1');
  socket.write(`GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: keep-alive\r\n\r\n`);
  let text = '';
  socket.on('data', (d) => (text += d));
  return { socket, answer: new Promise((resolve) => socket.once('close', () => resolve(text))) };
}

it('close neither waits on silent or idle keep-alive sockets nor cuts a request in flight', async () => {
  const app = Fastify({ keepAliveTimeout: 60_000, http: { headersTimeout: 60_000 } });
  drainOnClose(app);
  app.get('/slow', async () => {
    await new Promise((r) => setTimeout(r, 300));
    return { ok: true };
  });
  app.get('/fast', async () => ({ ok: true }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };

  // A socket that never sends a request, and one left idle after a keep-alive request.
  const silent = connect(port, '127.0.0.1');
  await new Promise((r) => silent.once('connect', r));
  const silentClosed = new Promise((r) => silent.once('close', r));
  const idle = rawRequest(port, '/fast');
  await new Promise((r) => setTimeout(r, 50));
  const slow = rawRequest(port, '/slow');
  await new Promise((r) => setTimeout(r, 50));

  const started = Date.now();
  await app.close();
  expect(Date.now() - started).toBeLessThan(5_000);
  await silentClosed;
  expect(await idle.answer).toMatch(/^HTTP\/1.1 200/);
  const slowAnswer = await slow.answer;
  expect(slowAnswer).toMatch(/^HTTP\/1.1 200/);
  expect(slowAnswer.toLowerCase()).toContain('connection: close');
  expect(slowAnswer).toContain('{"ok":true}');
});
