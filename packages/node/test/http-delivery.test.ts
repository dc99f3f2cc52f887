/**
 * The http sink and the tracker's retry logic against a real HTTP server on an ephemeral port that
 * fails, stalls, throttles and refuses on command.
 */
import { defineCatalog, t } from '@tally/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpSink, createTracker, type TrackerOptions } from '../src/index.js';
import { freePort, tempDir } from './support/helpers.js';
import { type Receiver, startReceiver } from './support/receiver.js';

const catalog = defineCatalog({ hit: { properties: { i: t.integer() }, required: ['i'] } });
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(opts: Partial<TrackerOptions<typeof catalog>> = {}, sinkOpts: { timeoutMs?: number } = {}) {
  const receiver = await startReceiver();
  const tmp = tempDir();
  const tracker = createTracker({
    catalog,
    sink: createHttpSink({ url: `${receiver.url}/v1/events`, writeKey: 'wk_test', ...sinkOpts }),
    spool: tmp.dir,
    retry: { initialMs: 10, maxMs: 100 },
    onError: () => {},
    ...opts,
  });
  cleanups.push(receiver.close, tmp.cleanup, () => tracker.shutdown({ timeoutMs: 500 }));
  return { receiver, tracker, dir: tmp.dir };
}

function trackN(tracker: { track: (n: 'hit', p: { i: number }) => void }, n: number) {
  for (let i = 0; i < n; i++) tracker.track('hit', { i });
}

function expectExactlyOnce(receiver: Receiver, n: number) {
  expect(receiver.ids.size).toBe(n);
  const is = new Set(receiver.events.map((e) => (e.properties as { i: number }).i));
  expect(is.size).toBe(n);
}

describe('http sink delivery', () => {
  it('posts the batch JSON with the write key, gzipped when large', async () => {
    const { receiver, tracker } = await setup({ maxBatchEvents: 100 });
    trackN(tracker, 250);
    expect(await tracker.flush()).toMatchObject({ delivered: 250, spooled: 0, dropped: {} });
    expect(receiver.requests).toHaveLength(3);
    const [first] = receiver.requests;
    expect(first?.path).toBe('/v1/events');
    expect(first?.headers.authorization).toBe('Bearer wk_test');
    expect(first?.headers['content-encoding']).toBe('gzip');
    expectExactlyOnce(receiver, 250);
  });

  it('retries 5xx with backoff and delivers once, with the same ids', async () => {
    const { receiver, tracker } = await setup({ maxBatchEvents: 10 });
    receiver.behave = (_r, n) => (n < 3 ? { status: 503, discard: true } : { status: 200 });
    trackN(tracker, 10);
    expect(await tracker.flush()).toMatchObject({ delivered: 10 });
    expect(tracker.stats().retries).toBe(3);
    expect(receiver.events).toHaveLength(10);
    expectExactlyOnce(receiver, 10);
  });

  it('honours Retry-After on 429', async () => {
    const { receiver, tracker } = await setup();
    const times: number[] = [];
    receiver.behave = (_r, n) => {
      times.push(Date.now());
      return n === 0 ? { status: 429, headers: { 'retry-after': '1' }, discard: true } : { status: 200 };
    };
    trackN(tracker, 5);
    expect(await tracker.flush()).toMatchObject({ delivered: 5 });
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(950);
    expectExactlyOnce(receiver, 5);
  });

  it('a late answer (timeout) is retried with the same ids: the receiver sees no new event', async () => {
    const { receiver, tracker } = await setup({ maxBatchEvents: 50 }, { timeoutMs: 100 });
    // The first request is stored but answered after the client gave up; the retry carries the same batch.
    receiver.behave = (_r, n) => (n === 0 ? { status: 200, delayMs: 400 } : { status: 200 });
    trackN(tracker, 50);
    expect(await tracker.flush()).toMatchObject({ delivered: 50 });
    expect(receiver.requests.length).toBeGreaterThanOrEqual(2);
    expect(receiver.events.length).toBeGreaterThanOrEqual(100);
    expect(receiver.requests[1]?.events.map((e) => e.id)).toEqual(receiver.requests[0]?.events.map((e) => e.id));
    expectExactlyOnce(receiver, 50);
  });

  it('does not retry a 400 validation refusal: the batch is dropped with a count', async () => {
    const { receiver, tracker } = await setup();
    receiver.behave = () => ({
      status: 400,
      discard: true,
      body: { error: { code: 'TALLY_INVALID_TYPE', message: 'nope' } },
    });
    trackN(tracker, 4);
    const report = await tracker.flush();
    expect(receiver.requests.length + 0).toBe(0);
    expect(report).toMatchObject({ delivered: 0, spooled: 0, dropped: { TALLY_SINK_REJECTED: 4 } });
    expect(tracker.stats().retries).toBe(0);
  });

  it('counts per-event rejections of a partially accepted batch', async () => {
    const { receiver, tracker } = await setup();
    receiver.behave = () => ({
      status: 200,
      body: {
        accepted: 2,
        rejected: [{ index: 1, code: 'TALLY_UNKNOWN_EVENT', message: 'not in the tenant catalog' }],
      },
    });
    trackN(tracker, 3);
    expect(await tracker.flush()).toMatchObject({ delivered: 2, dropped: { TALLY_UNKNOWN_EVENT: 1 } });
    expect(receiver.events).toHaveLength(3);
  });

  it('splits a batch the receiver finds too large (413)', async () => {
    const { receiver, tracker } = await setup({ maxBatchEvents: 40 });
    receiver.behave = (r) => (r.events.length > 10 ? { status: 413, discard: true } : { status: 200 });
    trackN(tracker, 40);
    expect(await tracker.flush()).toMatchObject({ delivered: 40, dropped: {} });
    expect(receiver.requests.every((r) => r.events.length <= 10)).toBe(true);
    expectExactlyOnce(receiver, 40);
  });

  it('spools on 401 (bad key): the events are fine, the credentials are not', async () => {
    const { receiver, tracker } = await setup();
    receiver.behave = () => ({ status: 401, discard: true });
    trackN(tracker, 6);
    expect(await tracker.flush()).toMatchObject({ delivered: 0, spooled: 6, dropped: {} });
  });

  it('retries connection refused, then spools after the retry budget', async () => {
    const port = await freePort();
    const tmp = tempDir();
    const tracker = createTracker({
      catalog,
      sink: createHttpSink({ url: `http://127.0.0.1:${port}/v1/events` }),
      spool: tmp.dir,
      retry: { initialMs: 5, maxMs: 20, maxAttempts: 4 },
      resendSpoolOnStart: false,
      onError: () => {},
    });
    cleanups.push(tmp.cleanup, () => tracker.shutdown({ timeoutMs: 200 }));
    trackN(tracker, 7);
    expect(await tracker.flush()).toMatchObject({ delivered: 0, spooled: 7, dropped: {} });
    expect(tracker.stats().retries).toBe(3);
  });

  it('spooled events are resent when the receiver is back, each stored once', async () => {
    const { receiver, tracker } = await setup({ retry: { initialMs: 5, maxMs: 10, maxAttempts: 2 } });
    receiver.behave = () => ({ status: 503, discard: true });
    trackN(tracker, 20);
    expect(await tracker.flush()).toMatchObject({ spooled: 20 });
    receiver.behave = () => ({ status: 200 });
    const report = await tracker.replaySpool();
    expect(report).toMatchObject({ delivered: 20, spooled: 0 });
    expect(tracker.stats().replayed).toBe(20);
    expectExactlyOnce(receiver, 20);
  });

  it('refuses a malformed URL at creation', () => {
    expect(() => createHttpSink({ url: 'not a url' })).toThrow(/not a URL/);
    expect(() => createHttpSink({ url: 'ftp://x/y' })).toThrow(/protocol/);
  });
});
