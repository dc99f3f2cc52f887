/**
 * Slow or stalled clients cannot hold the collector: headers sent a byte at a time, a body that stops
 * half-way, a keep-alive connection left idle are each cut within their timeout (set short here); the
 * server stays up and stores a good batch after. Connections beyond --max-connections are closed on
 * accept while the open ones go on being served.
 */
import { connect, type Socket } from 'node:net';
import { ErrorCodes, TallyConfigError } from '@tally/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { goodBody, goodEventsRequest } from './support/collector-requests.js';
import { parseResponse, RawConnection } from './support/raw-http.js';
import { serveFor, type TestServer } from './support/services.js';

const HEADERS_MS = 400;
const REQUEST_MS = 800;
const KEEP_ALIVE_MS = 400;
/** Node checks the header and request timeouts in a sweep (a quarter of the shortest here) and the
 * machine may be busy: a cut must come within this much of its timeout. */
const SLACK_MS = 1500;

interface Cut {
  /** ms from the first byte sent to the connection's close. */
  afterMs: number;
  /** What the server wrote before closing, if anything. */
  answer?: { status: number; body: unknown };
}

/** Opens a connection, runs `drive` on it, and resolves when the server closes it. */
function whenCut(port: number, drive: (socket: Socket) => void): Promise<Cut> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let start = 0;
    socket.on('data', (d: Buffer) => (data = Buffer.concat([data, d])));
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      start = Date.now();
      drive(socket);
    });
    socket.once('close', () => {
      const parsed = parseResponse(data, true);
      resolve({
        afterMs: Date.now() - start,
        answer: parsed && {
          status: parsed.response.status,
          body: JSON.parse(parsed.response.body.toString() || 'null'),
        },
      });
    });
    setTimeout(() => {
      socket.destroy();
      reject(new Error('the server did not cut the connection within 20 s'));
    }, 20_000);
  });
}

async function goodBatchStored(s: TestServer, tag: string): Promise<void> {
  const res = await fetch(`${s.server.url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${s.key}` },
    body: JSON.stringify(goodBody('/v1/events', tag)),
  });
  expect(await res.json()).toMatchObject({ accepted: 1 });
  const rows = await s.server.store.sql.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM events WHERE properties->>'source' = $1`,
    [tag],
  );
  expect(Number(rows[0]?.n)).toBe(1);
}

describe('the settings', () => {
  it('have sane defaults, take flags and environment, and refuse what would not bound anything', () => {
    expect(loadConfig({}, {}).http).toEqual({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      keepAliveTimeoutMs: 72_000,
      maxConnections: 10_000,
    });
    expect(
      loadConfig({ 'headers-timeout-ms': '500', 'max-connections': '50' }, { TALLY_REQUEST_TIMEOUT_MS: '900' }).http,
    ).toMatchObject({ headersTimeoutMs: 500, requestTimeoutMs: 900, maxConnections: 50 });
    const refused = (flags: Record<string, string>, pattern: RegExp) => {
      expect(() => loadConfig(flags, {})).toThrow(TallyConfigError);
      expect(() => loadConfig(flags, {})).toThrow(pattern);
    };
    refused({ 'headers-timeout-ms': '0' }, /TALLY_HEADERS_TIMEOUT_MS must be an integer from 100/);
    refused({ 'request-timeout-ms': 'soon' }, /TALLY_REQUEST_TIMEOUT_MS/);
    refused({ 'keep-alive-timeout-ms': '-1' }, /TALLY_KEEP_ALIVE_TIMEOUT_MS/);
    refused({ 'max-connections': '0' }, /TALLY_MAX_CONNECTIONS must be an integer from 1/);
    refused({ 'headers-timeout-ms': '5000', 'request-timeout-ms': '1000' }, /must not exceed TALLY_REQUEST_TIMEOUT_MS/);
  });
});

describe('timeouts', () => {
  let s: TestServer;
  let port: number;
  beforeAll(async () => {
    s = await serveFor('pglite', {
      'headers-timeout-ms': String(HEADERS_MS),
      'request-timeout-ms': String(REQUEST_MS),
      'keep-alive-timeout-ms': String(KEEP_ALIVE_MS),
    });
    port = Number(new URL(s.server.url).port);
  }, 60_000);
  afterAll(() => s?.dispose());

  it('slowloris: headers sent a byte every 50 ms are cut at the headers timeout (408 TALLY_TIMEOUT)', async () => {
    const head = `POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Slow: ${'a'.repeat(1000)}`;
    let timer: NodeJS.Timeout | undefined;
    const cut = await whenCut(port, (socket) => {
      let i = 0;
      timer = setInterval(() => {
        if (!socket.destroyed && i < head.length) socket.write(head[i++] as string);
      }, 50);
    });
    clearInterval(timer);
    expect(cut.afterMs).toBeGreaterThanOrEqual(HEADERS_MS - 50);
    expect(cut.afterMs).toBeLessThan(HEADERS_MS + SLACK_MS);
    if (cut.answer) expect(cut.answer).toMatchObject({ status: 408, body: { error: { code: ErrorCodes.TIMEOUT } } });
    await goodBatchStored(s, 'after-slowloris');
  });

  it('a body that stops half-way is cut at the request timeout (408 TALLY_TIMEOUT)', async () => {
    const body = JSON.stringify(goodBody('/v1/events', 'never-finished'));
    const cut = await whenCut(port, (socket) => {
      socket.write(
        `POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ${s.key}\r\n` +
          `Content-Length: ${body.length}\r\n\r\n${body.slice(0, body.length >> 1)}`,
      );
    });
    expect(cut.afterMs).toBeGreaterThanOrEqual(REQUEST_MS - 50);
    expect(cut.afterMs).toBeLessThan(REQUEST_MS + SLACK_MS);
    expect(cut.answer).toMatchObject({ status: 408, body: { error: { code: ErrorCodes.TIMEOUT } } });
    await goodBatchStored(s, 'after-stalled-body');
  });

  it('a body trickled in time chunk by chunk is still cut when the whole request takes too long', async () => {
    const body = JSON.stringify(goodBody('/v1/events', 'trickled'));
    let timer: NodeJS.Timeout | undefined;
    const cut = await whenCut(port, (socket) => {
      socket.write(
        `POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ${s.key}\r\n` +
          `Content-Length: ${body.length}\r\n\r\n`,
      );
      let i = 0;
      timer = setInterval(() => {
        if (!socket.destroyed && i < body.length) socket.write(body[i++] as string);
      }, 100);
    });
    clearInterval(timer);
    expect(cut.afterMs).toBeLessThan(REQUEST_MS + SLACK_MS);
    expect(cut.answer).toMatchObject({ status: 408 });
    await goodBatchStored(s, 'after-trickle');
  });

  it('an idle keep-alive connection is closed after the keep-alive timeout, having been served', async () => {
    const body = JSON.stringify(goodBody('/v1/events', 'keep-alive'));
    let served: number | undefined;
    const cut = await whenCut(port, (socket) => {
      socket.write(
        `POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ${s.key}\r\n` +
          `Content-Length: ${body.length}\r\n\r\n${body}`,
      );
      socket.once('data', () => (served = Date.now()));
    });
    expect(cut.answer).toMatchObject({ status: 200, body: { accepted: 1 } });
    expect(served).toBeDefined();
    expect(cut.afterMs).toBeGreaterThanOrEqual(KEEP_ALIVE_MS - 50);
    expect(cut.afterMs).toBeLessThan(KEEP_ALIVE_MS + SLACK_MS);
    await goodBatchStored(s, 'after-idle');
  });

  it('many slow clients at once are all cut, and a good client is served meanwhile', async () => {
    const slow = Array.from({ length: 50 }, () =>
      whenCut(port, (socket) => socket.write('POST /v1/events HTTP/1.1\r\nHost: x\r\n')),
    );
    await goodBatchStored(s, 'during-slow-clients');
    const cuts = await Promise.all(slow);
    for (const cut of cuts) expect(cut.afterMs).toBeLessThan(HEADERS_MS + SLACK_MS);
  });
});

describe('connection cap', () => {
  const CAP = 4;
  let s: TestServer;
  let port: number;
  beforeAll(async () => {
    s = await serveFor('pglite', { 'max-connections': String(CAP) });
    port = Number(new URL(s.server.url).port);
  }, 60_000);
  afterAll(() => s?.dispose());

  const send = (c: RawConnection, tag: string) => c.send(goodEventsRequest(s.key, tag));

  it('connections beyond --max-connections are closed on accept; the open ones are served', async () => {
    const open = Array.from({ length: CAP }, () => new RawConnection(port));
    try {
      for (const c of open)
        expect(await send(c, 'cap-open')).toMatchObject({ kind: 'response', response: { status: 200 } });
      // All CAP connections are open (kept alive): the next one is dropped.
      const extra = new RawConnection(port);
      const refused = await send(extra, 'cap-extra').catch((e: Error) => ({ kind: 'closed', error: e.message }));
      expect(refused.kind).toBe('closed');
      extra.close();
      // The open ones still work.
      for (const c of open)
        expect(await send(c, 'cap-open')).toMatchObject({ kind: 'response', response: { status: 200 } });
      const metrics = await new Promise<string>((resolve, reject) => {
        // Through one of the open connections: a new one would be dropped too.
        (open[0] as RawConnection)
          .send({ method: 'GET', path: '/metrics', headers: [['host', 'x']] })
          .then(
            (o) => (o.kind === 'response' ? resolve(o.response.body.toString()) : reject(new Error(o.error))),
            reject,
          );
      });
      expect(metrics).toMatch(/^tally_connections_dropped_total [1-9]/m);
      // One closes: a new connection is accepted again.
      (open.pop() as RawConnection).close();
      await new Promise((r) => setTimeout(r, 100));
      const again = new RawConnection(port);
      open.push(again);
      expect(await send(again, 'cap-again')).toMatchObject({ kind: 'response', response: { status: 200 } });
    } finally {
      for (const c of open) c.close();
    }
  });
});
