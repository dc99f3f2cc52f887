/**
 * The edge SDK in Cloudflare's runtime: workerd (through miniflare, the binary from npm) runs a Worker
 * bundled from fixtures/worker.ts that tracks into a real `tally serve`. What the Worker tracked is stored
 * once, request logs included; a Worker whose collector is down reports its undelivered count and, in
 * the same isolate, delivers those events once the collector is back; a late answer is resent and deduped.
 */
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';
import { productCatalog } from '@tally/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEdgeTracker, withRequestLog } from '../src/index.js';
import { collectorProxy, serveFor, storedCounts, type TestServer, waitForStored } from './support/collector.js';

let script: string;

beforeAll(async () => {
  // Bundled as a Worker is deployed: one ES module, workspace packages from their TypeScript sources.
  const out = await build({
    entryPoints: [fileURLToPath(new URL('./fixtures/worker.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    conditions: ['source'],
    mainFields: ['module', 'main'],
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  script = out.outputFiles[0]?.text ?? '';
}, 60_000);

function worker(url: string, key: string) {
  return new Miniflare({
    modules: true,
    script,
    compatibilityDate: '2025-09-01',
    bindings: { TALLY_URL: url, TALLY_WRITE_KEY: key },
  });
}

interface Stats {
  tracked: number;
  queued: number;
  undelivered: number;
  delivered: number;
  dropped: Record<string, number>;
  errors: string[];
}

/** The Worker's tracker counters, polled until `done` holds (its flushes run after each response). */
async function statsUntil(mf: Miniflare, done: (s: Stats) => boolean): Promise<Stats> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const stats = (await (await mf.dispatchFetch('http://worker/stats')).json()) as Stats;
    if (done(stats)) return stats;
    if (Date.now() > deadline) throw new Error(`worker stats: ${JSON.stringify(stats)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a Worker in workerd tracking into tally serve', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await serveFor('pglite');
  }, 60_000);
  afterAll(() => s?.dispose());

  it('stores every tracked event and request log once, redacted', async () => {
    const before = await storedCounts(s);
    const mf = worker(s.server.url, s.key);
    try {
      for (let r = 0; r < 5; r++) {
        const res = await mf.dispatchFetch(`http://worker/signup?n=10&token=secret-${r}`, {
          headers: { 'x-request-id': `req-${r}`, authorization: 'Bearer app-secret' },
        });
        expect(await res.json()).toEqual({ tracked: 10 });
      }
      const sse = await mf.dispatchFetch('http://worker/stream');
      expect(await sse.text()).toContain('"tick":2');
      const failed = await mf.dispatchFetch('http://worker/fail');
      expect(failed.status).toBe(500);
      // 50 events and 7 request logs (5 sign-ups, the stream, the failure).
      const stats = await statsUntil(mf, (x) => x.delivered >= 57);
      expect(stats).toMatchObject({ tracked: 57, delivered: 57, undelivered: 0, queued: 0, dropped: {} });
      const after = await waitForStored(s, before.events + 50, before.logs + 7);
      expect(after.events - before.events).toBe(50);
      expect(after.logs - before.logs).toBe(7);
      expect(after.distinct).toBe(after.events);

      const logs = await s.server.store.sql.query<Record<string, unknown>>(
        `SELECT route, status, url, headers, response_body, error, request_id FROM request_logs ORDER BY ts`,
      );
      const signup = logs.find((l) => l.route === '/signup');
      expect(signup).toMatchObject({ status: 200, request_id: expect.stringMatching(/^req-/) });
      expect(String(signup?.url)).toMatch(/token=\[REDACTED\]/);
      expect((signup?.headers as Record<string, string>).authorization).toBe('[REDACTED]');
      const stream = logs.find((l) => l.route === '/stream');
      expect(String(stream?.response_body)).toContain('"tick":2');
      expect(String(stream?.response_body)).not.toContain('t-2');
      const fail = logs.find((l) => l.route === '/fail');
      expect(fail).toMatchObject({ status: 500 });
      expect(String(fail?.error)).toMatch(/password=\[REDACTED\]/);
    } finally {
      await mf.dispose();
    }
  }, 60_000);

  it('reports its undelivered count while the collector is down, and delivers it once when it is back', async () => {
    const proxy = await collectorProxy(s.server.url);
    const mf = worker(proxy.url, s.key);
    try {
      const before = await storedCounts(s);
      await proxy.stop();
      for (let r = 0; r < 3; r++) await mf.dispatchFetch('http://worker/signup?n=5');
      // 15 events and 3 request logs, each flush unable to deliver: kept in the isolate, counted.
      const down = await statsUntil(mf, (x) => x.undelivered >= 18);
      expect(down).toMatchObject({ tracked: 18, undelivered: 18, delivered: 0, dropped: {} });
      expect(down.errors).toContain('TALLY_RETRIES_EXHAUSTED');

      await proxy.start();
      // The same isolate serves the next request; its flush sends what was kept first.
      await mf.dispatchFetch('http://worker/signup?n=1');
      const up = await statsUntil(mf, (x) => x.delivered >= 20);
      expect(up).toMatchObject({ tracked: 20, delivered: 20, undelivered: 0 });
      const after = await waitForStored(s, before.events + 16, before.logs + 4);
      expect(after.events - before.events).toBe(16);
      expect(after.logs - before.logs).toBe(4);
      expect(after.distinct).toBe(after.events);
    } finally {
      await mf.dispose();
      await proxy.close();
    }
  }, 60_000);

  it('resends a batch the collector answered too late, stored once', async () => {
    const proxy = await collectorProxy(s.server.url);
    const mf = worker(proxy.url, s.key);
    try {
      const before = await storedCounts(s);
      // The Worker's request timeout is 1 s: the first answer arrives after 2 s, when it has resent.
      proxy.answerLate(1, 2000);
      await mf.dispatchFetch('http://worker/signup?n=8');
      const stats = await statsUntil(mf, (x) => x.delivered >= 9);
      expect(stats).toMatchObject({ delivered: 9, undelivered: 0 });
      expect(proxy.answers.length).toBeGreaterThanOrEqual(2);
      const after = await waitForStored(s, before.events + 8, before.logs + 1);
      expect(after.events - before.events).toBe(8);
      expect(after.distinct).toBe(after.events);
    } finally {
      await mf.dispose();
      await proxy.close();
    }
  }, 60_000);
});

describe('withRequestLog', () => {
  it('refuses options it cannot honour, saying what to pass instead', () => {
    const handler = () => new Response('ok');
    const tracker = createEdgeTracker({ catalog: productCatalog, url: 'http://127.0.0.1:1/v1/events' });
    expect(() => withRequestLog(handler, {} as never)).toThrow(/pass `tracker`/);
    expect(() => withRequestLog(handler, { tracker, sampleRate: 0 })).toThrow(/sampleRate must be in \(0, 1\]/);
    expect(() => withRequestLog(handler, { tracker, ip: 'hash' as never })).toThrow(/use "truncate"/);
  });
});
