/**
 * The edge tracker on Node's fetch against a real `tally serve`: what a flush delivers is stored once,
 * what it cannot deliver is counted and kept for the next flush, a late answer is resent and deduped,
 * and nothing a caller passes makes track() throw or flush() reject.
 */
import { readFileSync } from 'node:fs';
import { ErrorCodes, productCatalog, TallyError } from '@tally/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEdgeTracker, EDGE_LIBRARY_NAME, type EdgeTrackerOptions, VERSION } from '../src/index.js';
import {
  closedPort,
  collectorProxy,
  serveFor,
  storedCounts,
  type TestServer,
  waitForStored,
} from './support/collector.js';

type Options = Partial<EdgeTrackerOptions<typeof productCatalog>>;

describe('the edge tracker', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await serveFor('pglite');
  }, 60_000);
  afterAll(() => s?.dispose());

  const tracker = (url: string, options: Options = {}) =>
    createEdgeTracker({ catalog: productCatalog, url: `${url}/v1/events`, writeKey: s.key, ...options });

  it('delivers what is tracked, once, with the scope context and its own library name', async () => {
    const before = await storedCounts(s);
    const t = tracker(s.server.url, { context: { service: 'edge-test' } });
    const scope = t.withContext({ requestId: 'req-1', userId: 'u-1' });
    for (let i = 0; i < 120; i++) scope.track('user_signed_up', { method: 'email' });
    t.track('asset_uploaded', { assetId: 'a1', kind: 'image', bytes: 10 }, { userId: 'u-2' });
    expect(t.stats()).toMatchObject({ tracked: 121, queued: 121, delivered: 0 });
    const report = await t.flush();
    expect(report).toEqual({ delivered: 121, dropped: {}, undelivered: 0, pending: 0, timedOut: false });
    expect(await t.flush()).toEqual({ delivered: 0, dropped: {}, undelivered: 0, pending: 0, timedOut: false });
    const after = await waitForStored(s, before.events + 121);
    expect(after.events - before.events).toBe(121);
    expect(after.distinct).toBe(after.events);
    const [row] = await s.server.store.sql.query<{ user_id: string; context: Record<string, unknown> }>(
      `SELECT user_id, context FROM events WHERE context->>'requestId' = 'req-1' LIMIT 1`,
    );
    expect(row?.user_id).toBe('u-1');
    expect(row?.context).toMatchObject({
      service: 'edge-test',
      requestId: 'req-1',
      library: { name: EDGE_LIBRARY_NAME },
    });
  });

  it('counts what a flush cannot deliver and keeps it, through a refused write key too', async () => {
    const port = await closedPort();
    const errors: string[] = [];
    const t = createEdgeTracker({
      catalog: productCatalog,
      url: `http://127.0.0.1:${port}/v1/events`,
      retry: { initialMs: 10, maxMs: 20, maxAttempts: 2 },
      onError: (e) => errors.push(e.code),
    });
    for (let i = 0; i < 30; i++) t.track('user_signed_up', { method: 'github' });
    const down = await t.flush();
    expect(down).toMatchObject({ delivered: 0, undelivered: 30, pending: 30, dropped: {} });
    expect(t.stats()).toMatchObject({ undelivered: 30, queued: 0, delivered: 0, retries: 1 });
    expect(errors).toContain(ErrorCodes.RETRIES_EXHAUSTED);

    // The collector comes up on that port: the next flush sends the kept events first, then the new one.
    const up = await serveFor('pglite', { port: String(port) });
    try {
      // The kept events were sent without a write key: the collector answers 401, which keeps them again
      // (the events are fine; the key is what to fix) rather than dropping them.
      t.track('user_signed_up', { method: 'sso' });
      expect(await t.flush()).toMatchObject({ delivered: 0, undelivered: 31, dropped: {} });
      expect(t.stats().undelivered).toBe(31);
    } finally {
      await up.dispose();
    }
  }, 60_000);

  it('sends the kept events first when the collector is back, each stored once', async () => {
    const proxy = await collectorProxy(s.server.url);
    try {
      const before = await storedCounts(s);
      const t = tracker(proxy.url, { retry: { initialMs: 10, maxMs: 20, maxAttempts: 2 }, onError: () => undefined });
      await proxy.stop();
      for (let i = 0; i < 40; i++) t.track('user_signed_up', { method: 'email' });
      expect(await t.flush()).toMatchObject({ delivered: 0, undelivered: 40, pending: 40 });
      await proxy.start();
      t.track('user_signed_up', { method: 'sso' });
      expect(await t.flush()).toEqual({ delivered: 41, dropped: {}, undelivered: 0, pending: 0, timedOut: false });
      const after = await waitForStored(s, before.events + 41);
      expect(after.events - before.events).toBe(41);
      expect(after.distinct).toBe(after.events);
      expect(t.stats()).toMatchObject({ undelivered: 0, delivered: 41 });
    } finally {
      await proxy.close();
    }
  });

  it('resends a batch whose answer came too late, and the collector stores it once', async () => {
    const proxy = await collectorProxy(s.server.url);
    proxy.answerLate(1, 1500);
    try {
      const before = await storedCounts(s);
      const t = tracker(proxy.url, {
        requestTimeoutMs: 300,
        retry: { initialMs: 50, maxMs: 100, maxAttempts: 5 },
        onError: () => undefined,
      });
      for (let i = 0; i < 50; i++) t.track('user_signed_up', { method: 'google' });
      const report = await t.flush();
      expect(report).toMatchObject({ delivered: 50, undelivered: 0 });
      expect(t.stats().retries).toBeGreaterThanOrEqual(1);
      // Both attempts reached the collector and were answered 200: the second found every id stored.
      expect(proxy.answers.length).toBeGreaterThanOrEqual(2);
      expect(proxy.answers.every((status) => status === 200)).toBe(true);
      const after = await waitForStored(s, before.events + 50);
      expect(after.events - before.events).toBe(50);
      expect(after.distinct).toBe(after.events);
    } finally {
      await proxy.close();
    }
  }, 30_000);

  it('never throws on bad calls, and counts each refusal under its code', async () => {
    const errors: TallyError[] = [];
    const t = tracker(s.server.url, { maxPropertiesBytes: 64, onError: (e) => errors.push(e) });
    const circular: Record<string, unknown> = { method: 'email' };
    circular.self = circular;
    const hostile = {
      get method() {
        throw new Error('getter');
      },
    };
    const any = t.track as unknown as (...args: unknown[]) => void;
    expect(() => {
      any('no_such_event', {});
      any(42);
      any('user_signed_up', { method: 'fax' });
      any('user_signed_up', circular);
      any('user_signed_up', hostile);
      any('user_signed_up', { method: 'email', referrer: 'x'.repeat(500) });
      any('user_signed_up', { method: 'email' }, { timestamp: 'not a time' });
    }).not.toThrow();
    // Refused at the call: not a string, a throwing getter, too large. At the flush, by the catalog: the
    // unknown name, the value outside the enum, the cycle. The bad timestamp becomes now and is delivered.
    expect(await t.flush()).toEqual({
      delivered: 1,
      dropped: {
        [ErrorCodes.UNKNOWN_EVENT]: 1,
        [ErrorCodes.INVALID_TYPE]: 1,
        [ErrorCodes.NOT_JSON_SAFE]: 1,
      },
      undelivered: 0,
      pending: 0,
      timedOut: false,
    });
    expect(t.stats().dropped).toEqual({
      [ErrorCodes.UNKNOWN_EVENT]: 2,
      [ErrorCodes.CALLBACK_FAILED]: 1,
      [ErrorCodes.PAYLOAD_TOO_LARGE]: 1,
      [ErrorCodes.INVALID_TYPE]: 1,
      [ErrorCodes.NOT_JSON_SAFE]: 1,
    });
    expect(errors).toHaveLength(6);
    expect(errors.every((e) => e instanceof TallyError)).toBe(true);
  });

  it('bounds what it holds: past maxQueueEvents the oldest go, counted', async () => {
    const t = tracker(s.server.url, { maxQueueEvents: 10, onError: () => undefined });
    for (let i = 0; i < 15; i++) t.track('user_signed_up', { method: 'email' });
    expect(t.stats()).toMatchObject({ queued: 10, dropped: { [ErrorCodes.QUEUE_OVERFLOW]: 5 } });
    expect(await t.flush()).toMatchObject({ delivered: 10 });
  });

  it('two flushes at once send disjoint events', async () => {
    const before = await storedCounts(s);
    const t = tracker(s.server.url);
    for (let i = 0; i < 20; i++) t.track('user_signed_up', { method: 'email' });
    const first = t.flush();
    for (let i = 0; i < 20; i++) t.track('user_signed_up', { method: 'email' });
    const [a, b] = await Promise.all([first, t.flush()]);
    expect(a.delivered + b.delivered).toBe(40);
    const after = await waitForStored(s, before.events + 40);
    expect(after.events - before.events).toBe(40);
  });

  it('refuses a configuration it cannot work with, saying what to pass', () => {
    expect(() => createEdgeTracker({ catalog: productCatalog } as never)).toThrow(/give `url`/);
    expect(() => createEdgeTracker({ catalog: productCatalog, url: 'not a url' })).toThrow(/not a URL/);
    expect(() => createEdgeTracker({ catalog: productCatalog, url: 'http://x/v1/events', maxQueueEvents: 0 })).toThrow(
      /maxQueueEvents must be a positive number/,
    );
  });
});

describe('package', () => {
  it('VERSION matches package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    expect(VERSION).toBe(pkg.version);
  });
});
