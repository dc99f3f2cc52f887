/**
 * The request logger on real Fastify apps: `inject` for the plain paths, a real port and a real client
 * for streaming and aborts (inject cannot abort a socket).
 */
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BodyCapture,
  maskIp,
  type PendingRequestLog,
  quotaExceeded,
  type RequestLog,
  tallyRequestLog,
  type RequestLogOptions,
} from '../src/index.js';
import { supportBotCatalog } from '@tally/core';
import { createMemorySink, createTracker } from '@tally/node';
import { tempDir, waitFor } from '../../node/test/support/helpers.js';

const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

async function makeApp(options: Partial<RequestLogOptions> = {}) {
  const records: PendingRequestLog[] = [];
  const app = Fastify();
  apps.push(app);
  await app.register(tallyRequestLog, { onRecord: (r) => records.push(r), bodyLimit: 1000, ...options });
  app.addHook('preHandler', async (request) => {
    const user = request.headers['x-user'];
    if (typeof user === 'string')
      (request as unknown as { user: object }).user = { id: user, apiKeyId: 'key-1', tenantId: 'acme' };
  });
  app.post('/users/:id', async (request, reply) => {
    reply.header('set-cookie', 'session=secret');
    return { ok: true, echo: request.body };
  });
  app.get('/big', async () => 'x'.repeat(10_000));
  app.get('/big-lines', async () => `${'y'.repeat(99)}\n`.repeat(100));
  app.get('/boom', async () => {
    throw new Error('kaput');
  });
  app.get('/healthz', async () => 'ok');
  app.get('/limited', {
    preHandler: (request, reply, done) => {
      quotaExceeded(request, reply, { quota: 'messages', limit: 100, usage: 100, retryAfterSeconds: 60 });
      done();
    },
    handler: async () => 'never',
  });
  app.get('/sse-raw', (_request, reply) => {
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
    let i = 0;
    const tick = setInterval(() => {
      reply.raw.write(`data: chunk ${i}\n\n`);
      if (++i === 200) {
        clearInterval(tick);
        reply.raw.end('data: [DONE]\n\n');
      }
    }, 1);
    reply.raw.on('close', () => clearInterval(tick));
  });
  app.get('/sse-stream', (_request, reply) => {
    const chunks = Array.from({ length: 100 }, (_, i) => `data: part ${i}\n\n`);
    reply.header('content-type', 'text/event-stream').send(Readable.from(chunks));
  });
  return { app, records, logs: () => records.map((r) => r.finish()) };
}

describe('request log', () => {
  it('records one redacted, truncated log per request with the route template', async () => {
    const { app, logs } = await makeApp({
      redactHeaders: ['X-Internal-Token'],
      redactBodyPaths: ['password', 'card.number', 'echo.password', 'echo.card.number'],
    });
    const res = await app.inject({
      method: 'POST',
      url: '/users/42?tab=1',
      headers: {
        authorization: 'Bearer sk_live_123',
        cookie: 'sid=abc',
        'x-api-key': 'key',
        'proxy-authorization': 'Basic x',
        'x-internal-token': 't0ken',
        'x-user': 'user-7',
        'user-agent': 'vitest',
      },
      payload: { name: 'Ana', password: 'hunter2', card: { number: '4111', exp: '12/30' } },
    });
    expect(res.statusCode).toBe(200);
    await waitFor(() => logs().length === 1);
    const [log] = logs() as [RequestLog];
    expect(log).toMatchObject({
      tenantId: 'acme',
      method: 'POST',
      route: '/users/:id',
      url: '/users/42?tab=1',
      status: 200,
      userId: 'user-7',
      apiKeyId: 'key-1',
      userAgent: 'vitest',
      aborted: false,
      bodyTruncated: false,
    });
    expect(log.durationMs).toBeGreaterThan(0);
    const serialized = JSON.stringify(log);
    for (const secret of ['sk_live_123', 'sid=abc', 't0ken', 'Basic x', 'session=secret', 'hunter2', '4111']) {
      expect(serialized).not.toContain(secret);
    }
    expect(log.headers).toMatchObject({
      authorization: '[REDACTED]',
      cookie: '[REDACTED]',
      'x-api-key': '[REDACTED]',
      'proxy-authorization': '[REDACTED]',
      'x-internal-token': '[REDACTED]',
      'response.set-cookie': '[REDACTED]',
    });
    expect(JSON.parse(log.requestBody as string)).toEqual({
      name: 'Ana',
      password: '[REDACTED]',
      card: { number: '[REDACTED]', exp: '12/30' },
    });
    expect(log.responseBody).toContain('"ok":true');
  });

  it('truncates large bodies to head and tail, keeping the true size; a tail starts at a line', async () => {
    const { app, logs } = await makeApp();
    await app.inject({ method: 'GET', url: '/big' });
    await app.inject({ method: 'GET', url: '/big-lines' });
    await waitFor(() => logs().length === 2);
    const [log, lines] = logs() as [RequestLog, RequestLog];
    expect(log.responseBytes).toBe(10_000);
    expect(log.bodyTruncated).toBe(true);
    // No line break in the last 500 bytes: the tail might begin inside a secret, so none of it is kept.
    expect(log.responseBody).toBe(`${'x'.repeat(500)}…[9500 bytes omitted]…`);
    expect(lines.responseBytes).toBe(10_000);
    expect(lines.responseBody).toBe(
      `${'y'.repeat(99)}\n${'y'.repeat(99)}\n${'y'.repeat(99)}\n${'y'.repeat(99)}\n${'y'.repeat(99)}\n…[9100 bytes omitted]…${`${'y'.repeat(99)}\n`.repeat(4)}`,
    );
  });

  it('a JSON body cut by truncation keeps its redacted head, never a part of a secret', async () => {
    const { app, logs } = await makeApp();
    await app.inject({ method: 'POST', url: '/users/1', payload: { password: 'hunter2', pad: 'p'.repeat(5000) } });
    await app.inject({ method: 'POST', url: '/users/2', payload: { name: 'Ana', password: 'hunter2'.repeat(1000) } });
    await waitFor(() => logs().length === 2);
    const [padded, long] = logs() as [RequestLog, RequestLog];
    expect(padded.requestBody).toMatch(/^\{"password":"\[REDACTED\]","pad":"p+…\[\d+ bytes omitted\]…$/);
    expect(padded.responseBody).toMatch(
      /^\{"ok":true,"echo":\{"password":"\[REDACTED\]","pad":"p+…\[\d+ bytes omitted\]…$/,
    );
    // The cut falls inside the secret: it is redacted up to the cut, and the tail (the rest of it) dropped.
    expect(long.requestBody).toMatch(/^\{"name":"Ana","password":"\[REDACTED\]"…\[\d+ bytes omitted\]…$/);
    expect(JSON.stringify(logs())).not.toContain('hunter2');
  });

  it('404 and 500 are logged, the 500 with its error message', async () => {
    const { app, logs } = await makeApp();
    await app.inject({ method: 'GET', url: '/nope' });
    await app.inject({ method: 'GET', url: '/boom' });
    await waitFor(() => logs().length === 2);
    const [missing, boom] = logs() as [RequestLog, RequestLog];
    expect(missing).toMatchObject({ status: 404, url: '/nope' });
    expect(boom).toMatchObject({ status: 500, route: '/boom', error: 'kaput' });
  });

  it('health checks are off by default; include lists narrow the routes', async () => {
    const a = await makeApp();
    await a.app.inject({ method: 'GET', url: '/healthz' });
    await a.app.inject({ method: 'GET', url: '/big' });
    await waitFor(() => a.logs().length === 1);
    expect(a.logs()[0]?.route).toBe('/big');
    const b = await makeApp({ include: ['/boom'] });
    await b.app.inject({ method: 'GET', url: '/big' });
    await b.app.inject({ method: 'GET', url: '/boom' });
    await waitFor(() => b.logs().length === 1);
    expect(b.logs().map((l) => l.route)).toEqual(['/boom']);
  });

  it('a quota refusal answers 429 with a JSON code and the log shows it', async () => {
    const { app, logs } = await makeApp();
    const res = await app.inject({ method: 'GET', url: '/limited', headers: { 'x-user': 'u1' } });
    expect(res.statusCode).toBe(429);
    expect(res.headers['retry-after']).toBe('60');
    expect(res.json()).toMatchObject({ error: { code: 'TALLY_QUOTA_EXCEEDED' } });
    await waitFor(() => logs().length === 1);
    expect(logs()[0]).toMatchObject({ status: 429, userId: 'u1', error: 'TALLY_QUOTA_EXCEEDED: messages 100/100' });
  });

  it('through a tracker: the request log and a quota_exceeded event with tenant, user, limit and usage', async () => {
    const tmp = tempDir();
    const sink = createMemorySink();
    const tracker = createTracker({ catalog: supportBotCatalog, sink, spool: tmp.dir });
    try {
      const app = Fastify();
      apps.push(app);
      await app.register(tallyRequestLog, { tracker });
      app.addHook('preHandler', async (request) => {
        (request as unknown as { user: object }).user = { id: 'u1', tenantId: 'acme' };
      });
      app.get('/limited', {
        preHandler: (request, reply, done) => {
          quotaExceeded(request, reply, { quota: 'messages', limit: 100, usage: 100, period: 'day' });
          done();
        },
        handler: async () => 'never',
      });
      expect((await app.inject({ method: 'GET', url: '/limited' })).statusCode).toBe(429);
      await waitFor(() => tracker.stats().queued >= 2);
      expect(await tracker.flush()).toMatchObject({ delivered: 2, dropped: {} });
      const quota = sink.events.find((e) => e.name === 'quota_exceeded');
      expect(quota).toMatchObject({
        tenantId: 'acme',
        userId: 'u1',
        properties: { quota: 'messages', limit: 100, usage: 100, period: 'day', route: '/limited' },
      });
      const request = sink.events.find((e) => e.name === '$request');
      expect(request).toMatchObject({ tenantId: 'acme', userId: 'u1', properties: { status: 429, route: '/limited' } });
    } finally {
      await tracker.shutdown();
      tmp.cleanup();
    }
  });

  it('captures SSE written straight to reply.raw and streams sent with reply.send, without altering them', async () => {
    const { app, logs } = await makeApp({ bodyLimit: 200 });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as AddressInfo).port;
    const raw = await get(port, '/sse-raw');
    const stream = await get(port, '/sse-stream');
    expect(raw).toContain('data: chunk 199\n\ndata: [DONE]\n\n');
    expect(stream).toBe(Array.from({ length: 100 }, (_, i) => `data: part ${i}\n\n`).join(''));
    await waitFor(() => logs().length === 2);
    const byRoute = Object.fromEntries(logs().map((l) => [l.route, l]));
    expect(byRoute['/sse-raw']).toMatchObject({
      status: 200,
      aborted: false,
      bodyTruncated: true,
      responseBytes: Buffer.byteLength(raw),
    });
    expect(byRoute['/sse-raw']?.responseBody?.startsWith('data: chunk 0\n\n')).toBe(true);
    expect(byRoute['/sse-raw']?.responseBody?.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(byRoute['/sse-stream']).toMatchObject({ responseBytes: Buffer.byteLength(stream), bodyTruncated: true });
  });

  it('a client that aborts mid-stream is logged exactly once, as aborted', async () => {
    const { app, records } = await makeApp();
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => {
      const req = httpRequest({ port, host: '127.0.0.1', path: '/sse-raw' }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.end();
    });
    await waitFor(() => records.length === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(records).toHaveLength(1);
    const log = records[0]?.finish() as RequestLog;
    expect(log).toMatchObject({ route: '/sse-raw', aborted: true, status: 200 });
    expect(log.responseBytes).toBeLessThan(200 * 14);
  });

  it('a consumer that throws does not take the app down', async () => {
    const app = Fastify();
    apps.push(app);
    await app.register(tallyRequestLog, {
      onRecord: () => {
        throw new Error('broken consumer');
      },
    });
    app.get('/', async () => 'ok');
    // A real socket: there a throw in the response's `finish` listener is an uncaught exception.
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as AddressInfo).port;
    for (let i = 0; i < 3; i++) expect(await get(port, '/')).toBe('ok');
  });

  it('refuses a bad sample rate at registration', async () => {
    const app = Fastify();
    apps.push(app);
    await expect(app.register(tallyRequestLog, { onRecord: () => {}, sampleRate: 0 })).rejects.toThrow(/sampleRate/);
  });
});

describe('helpers', () => {
  it('masks IPs: v4 /24, v6 /48, hash, none', () => {
    expect(maskIp('203.0.113.77', 'truncate')).toBe('203.0.113.0');
    expect(maskIp('::ffff:10.1.2.3', 'truncate')).toBe('10.1.2.0');
    expect(maskIp('2001:db8:abcd:12:1:2:3:4', 'truncate')).toBe('2001:db8:abcd::');
    expect(maskIp('203.0.113.77', 'hash')).toMatch(/^[0-9a-f]{16}$/);
    expect(maskIp('203.0.113.77', 'none')).toBeUndefined();
    expect(maskIp('203.0.113.77', 'full')).toBe('203.0.113.77');
  });

  it('body capture keeps head and tail across many small and large writes', () => {
    const c = new BodyCapture(10);
    for (const part of ['ab', 'cd', 'efghijklmnop', 'q', 'rs']) c.add(part);
    expect(c.result()).toEqual({
      text: 'abcde…[9 bytes omitted]…opqrs',
      bytes: 19,
      truncated: true,
    });
    const small = new BodyCapture(100);
    small.add('hello');
    expect(small.result()).toEqual({ text: 'hello', bytes: 5, truncated: false });
  });

  it('body capture reads the same whether chunks are strings (kept as is) or bytes (copied)', () => {
    const mixed = new BodyCapture(10);
    mixed.add('héllo'); // 6 bytes: over the 5-byte head, so cut as bytes
    mixed.add(Buffer.from('wörld'));
    expect(mixed.result()).toEqual({ text: 'héll…[2 bytes omitted]…örld', bytes: 12, truncated: true });
    const strings = new BodyCapture(100);
    for (const part of ['{"a":', '"ü"', '}']) strings.add(part);
    strings.add(Buffer.from('!'));
    expect(strings.result()).toEqual({ text: '{"a":"ü"}!', bytes: 11, truncated: false });
    const odd = new BodyCapture(100);
    odd.add('\uD800x'); // a lone surrogate is U+FFFD once encoded, as the bytes on the wire are
    odd.add('6869', 'hex');
    expect(odd.result()).toEqual({ text: '\uFFFDxhi', bytes: 6, truncated: false });
    // A buffer reused by the application after write() does not change what was captured.
    const reused = Buffer.from('abc');
    const copy = new BodyCapture(100);
    copy.add(reused);
    reused.write('xyz');
    expect(copy.result().text).toBe('abc');
  });
});

function get(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    httpRequest({ port, host: '127.0.0.1', path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    })
      .on('error', reject)
      .end();
  });
}
