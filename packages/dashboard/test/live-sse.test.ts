/**
 * The Live page's event-stream parser (src/app/pages/live/sse.ts), fed as a network would: frames split
 * anywhere, every line ending the standard allows, a multi-byte character cut between chunks; and the
 * rows it makes of the frames docs/query.md lists (live/rows.ts), `dropped` and `shutdown` included,
 * which a browser reading a local server fast never provokes. The page itself reads a real server's
 * stream in live.browser.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { rowOf } from '../src/app/pages/live/rows.js';
import { readSse, type SseMessage, SseParser } from '../src/app/pages/live/sse.js';

const STREAM =
  'retry: 5000\nevent: ready\ndata: {"tenantId":"acme"}\n\n' +
  ': heartbeat\n\n' +
  'id: 01968a3e-1\nevent: event\ndata: {"name":"signup","userId":"u-ü"}\n\n' +
  'event: dropped\ndata: {"count":312}\n\n';

const EXPECTED: SseMessage[] = [
  { event: 'ready', data: '{"tenantId":"acme"}', id: '' },
  { event: 'event', data: '{"name":"signup","userId":"u-ü"}', id: '01968a3e-1' },
  // An id carries over to later frames that have none.
  { event: 'dropped', data: '{"count":312}', id: '01968a3e-1' },
];

function feed(parser: SseParser, parts: string[]): SseMessage[] {
  return parts.flatMap((p) => parser.push(p));
}

describe('SseParser', () => {
  it('parses whole frames: event, data, id, retry, comments', () => {
    const p = new SseParser();
    expect(p.push(STREAM)).toEqual(EXPECTED);
    expect(p.retry).toBe(5000);
    expect(p.comments).toBe(1);
    expect(p.lastEventId).toBe('01968a3e-1');
  });

  it('gives the same frames however the text is split', () => {
    for (let size = 1; size <= 7; size++) {
      const parts: string[] = [];
      for (let i = 0; i < STREAM.length; i += size) parts.push(STREAM.slice(i, i + size));
      expect(feed(new SseParser(), parts), `chunks of ${size}`).toEqual(EXPECTED);
    }
  });

  it('takes CRLF and CR line ends, a CRLF split between chunks as one line end', () => {
    for (const eol of ['\r\n', '\r']) {
      const text = STREAM.replaceAll('\n', eol);
      expect(new SseParser().push(text), JSON.stringify(eol)).toEqual(EXPECTED);
      const parts = text.split('\r').flatMap((s, i, all) => (i < all.length - 1 ? [s, '\r'] : [s]));
      expect(feed(new SseParser(), parts), `${JSON.stringify(eol)} split at CR`).toEqual(EXPECTED);
    }
  });

  it('joins data lines with LF, defaults the event to message, drops a data-less frame, ignores unknown fields', () => {
    const p = new SseParser();
    expect(p.push('data: a\ndata:b\ndata\nfoo: bar\n\nevent: x\n\nid\ndata: y\n\n')).toEqual([
      { event: 'message', data: 'a\nb\n', id: '' },
      { event: 'message', data: 'y', id: '' },
    ]);
  });

  it('keeps an unended frame until its blank line; a retry that is not a number is ignored; a leading BOM is skipped', () => {
    const p = new SseParser();
    expect(p.push('\uFEFFretry: soon\nevent: event\ndata: {"a":1}')).toEqual([]);
    expect(p.retry).toBeUndefined();
    expect(p.push('\n')).toEqual([]);
    expect(p.push('\n')).toEqual([{ event: 'event', data: '{"a":1}', id: '' }]);
  });
});

describe('readSse', () => {
  it('decodes UTF-8 across chunk boundaries and yields frames as they complete', async () => {
    const bytes = new TextEncoder().encode(STREAM);
    // Cut inside the two bytes of "ü".
    const cut = bytes.indexOf(0xc3) + 1;
    const chunks = [bytes.slice(0, cut), bytes.slice(cut, cut + 3), bytes.slice(cut + 3)];
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const c of chunks) controller.enqueue(c);
        // The last frame is not ended: the stream stopped mid-frame, so it is not dispatched.
        controller.enqueue(new TextEncoder().encode('event: event\ndata: {"cut":true}\n'));
        controller.close();
      },
    });
    const got: SseMessage[] = [];
    for await (const m of readSse(body)) got.push(m);
    expect(got).toEqual(EXPECTED);
  });

  it('lets the stream go when the reader stops early', async () => {
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new TextEncoder().encode('data: tick\n\n'));
      },
      cancel() {
        cancelled = true;
      },
    });
    let n = 0;
    for await (const m of readSse(body)) {
      expect(m.data).toBe('tick');
      if (++n === 3) break;
    }
    expect(cancelled).toBe(true);
  });
});

describe('Live rows', () => {
  const frame = (event: string, data: unknown): SseMessage => ({ event, data: JSON.stringify(data), id: '' });

  it('an event, a request log, a dropped count and a shutdown each make a row; ready, heartbeats and junk none', () => {
    expect(
      rowOf(
        frame('event', {
          id: 'e1',
          name: 'signup',
          userId: null,
          anonymousId: 'a1',
          properties: { plan: 'pro' },
          timestamp: '2026-03-01T10:00:00.000Z',
        }),
      ),
    ).toMatchObject({
      kind: 'event',
      id: 'e1',
      name: 'signup',
      userId: null,
      anonymousId: 'a1',
      timestamp: '2026-03-01T10:00:00.000Z',
      details: '{"plan":"pro"}',
    });
    expect(
      rowOf(
        frame('log', {
          id: 'l1',
          method: 'POST',
          route: '/v1/chat',
          url: '/v1/chat?x=1',
          status: 502,
          durationMs: 31.5,
          userId: 'u-42',
          error: 'upstream timed out',
          timestamp: '2026-03-01T10:00:01.000Z',
        }),
      ),
    ).toMatchObject({
      kind: 'log',
      name: 'POST /v1/chat',
      status: 502,
      durationMs: 31.5,
      url: '/v1/chat?x=1',
      details: 'upstream timed out',
    });
    expect(rowOf(frame('log', { method: 'GET', route: null, url: '/x', status: 200, aborted: true }))).toMatchObject({
      name: 'GET /x',
      details: 'aborted by the client',
    });
    expect(rowOf(frame('dropped', { count: 312 }))).toMatchObject({
      kind: 'dropped',
      count: 312,
      details: '312 not sent: this tab fell behind the stream',
    });
    expect(rowOf(frame('shutdown', {}))).toMatchObject({ kind: 'gap' });
    expect(rowOf(frame('ready', { tenantId: 'acme' }))).toBeUndefined();
    expect(rowOf({ event: 'event', data: 'not json', id: '' })).toBeUndefined();
    expect(rowOf({ event: 'message', data: '{}', id: '' })).toBeUndefined();
  });
});
