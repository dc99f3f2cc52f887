import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { defineCatalog, isUuidv7, productCatalog, type TallyError, t, uuidv7Time } from '@tally/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemorySink, createTracker, type Tracker, type TrackerOptions, withContext } from '../src/index.js';
import { scriptedSink, tempDir, untilAborted, waitFor } from './support/helpers.js';

const catalog = defineCatalog({
  clicked: { properties: { button: t.string(), n: t.integer() }, required: ['button'] },
  streamed: { properties: { chunk: t.integer() }, required: ['chunk'], sampleRate: 0.5 },
  open: { properties: {}, allowExtra: true },
});
type C = typeof catalog;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function make(opts: Partial<TrackerOptions<C>> = {}) {
  const tmp = tempDir();
  const sink = createMemorySink();
  const errors: TallyError[] = [];
  const tracker: Tracker<C> = createTracker({
    catalog,
    sink,
    spool: tmp.dir,
    onError: (e) => errors.push(e),
    ...opts,
  });
  cleanups.push(tmp.cleanup, () => tracker.shutdown({ timeoutMs: 1000 }));
  return { tracker, sink, errors, dir: tmp.dir };
}

describe('track()', () => {
  it('delivers finished envelopes with ids born at track time', async () => {
    const { tracker, sink } = make({ context: { service: 'api', tenantId: 'acme' } });
    const before = Date.now();
    tracker.track('clicked', { button: 'buy', n: 2 });
    const report = await tracker.flush();
    expect(report).toEqual({ delivered: 1, spooled: 0, dropped: {}, pending: 0, timedOut: false });
    const [e] = sink.events;
    expect(e).toMatchObject({
      name: 'clicked',
      tenantId: 'acme',
      properties: { button: 'buy', n: 2 },
      context: { service: 'api', library: { name: '@tally/node', version: '0.1.0' } },
    });
    expect(isUuidv7(e?.id)).toBe(true);
    expect(uuidv7Time(e?.id as string)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(e?.timestamp as string)).toBe(uuidv7Time(e?.id as string));
  });

  it('never throws, whatever it is given, and counts every bad call by code', async () => {
    const { tracker, errors } = make();
    const hostile = {
      get button(): string {
        throw new Error('getter exploded');
      },
    };
    const loose = tracker as unknown as { track: (...a: unknown[]) => void };
    expect(() => {
      loose.track('nope', {});
      loose.track('clicked', { n: 1 });
      loose.track('clicked', { button: 1 });
      loose.track('clicked', 'not an object');
      loose.track('clicked', hostile);
      loose.track('clicked', { button: 'x', extra: true });
      loose.track(undefined);
      loose.track(Symbol('s') as never, null);
    }).not.toThrow();
    await tracker.flush();
    expect(tracker.stats().dropped).toEqual({
      TALLY_UNKNOWN_EVENT: 3,
      TALLY_MISSING_PROPERTY: 1,
      TALLY_INVALID_TYPE: 2,
      TALLY_UNKNOWN_PROPERTY: 1,
      TALLY_CALLBACK_FAILED: 1,
    });
    expect(errors.map((e) => e.code)).toContain('TALLY_UNKNOWN_EVENT');
  });

  it('works detached from its tracker (const { track } = tracker)', async () => {
    const { tracker, sink } = make();
    const { track, flush } = tracker;
    track('clicked', { button: 'detached' });
    await flush();
    expect(sink.events.map((e) => e.properties.button)).toEqual(['detached']);
  });

  it('reports through onError and diagnostics_channel; a throwing onError changes nothing', async () => {
    const seen: unknown[] = [];
    const listener = (m: unknown) => seen.push(m);
    subscribe('tally:error', listener);
    try {
      const { tracker } = make({
        onError: () => {
          throw new Error('bad hook');
        },
      });
      expect(() => (tracker as unknown as { track: (n: string) => void }).track('nope')).not.toThrow();
      await tracker.flush();
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({ error: { code: 'TALLY_UNKNOWN_EVENT' }, event: { name: 'nope' } });
    } finally {
      unsubscribe('tally:error', listener);
    }
  });

  it('snapshots properties: mutating the object after track() does not change the event', async () => {
    const { tracker, sink } = make();
    const props = { button: 'a', n: 1 };
    tracker.track('clicked', props);
    props.button = 'changed';
    props.n = 99;
    await tracker.flush();
    expect(sink.events[0]?.properties).toEqual({ button: 'a', n: 1 });
  });

  it('the snapshot is one level deep (README): a nested object changed before the batch is sent shows', async () => {
    const { tracker, sink } = make();
    const props = { meta: { v: 1 }, top: 'a' };
    tracker.track('open', props);
    props.meta.v = 2;
    props.top = 'b';
    await tracker.flush();
    expect(sink.events[0]?.properties).toEqual({ meta: { v: 2 }, top: 'a' });
  });

  it('the snapshot is of own keys, as the validator reads them: inherited ones are not sent', async () => {
    const { tracker, sink } = make();
    const props = Object.assign(Object.create({ n: 5 }) as { button: string }, { button: 'own' });
    tracker.track('clicked', props);
    props.button = 'changed';
    await tracker.flush();
    expect(sink.events[0]?.properties).toEqual({ button: 'own' });
  });

  it('refuses a payload over the limit at track time without queueing it', async () => {
    const { tracker } = make({ maxPropertiesBytes: 100 });
    tracker.track('clicked', { button: 'x'.repeat(200) });
    expect(tracker.stats()).toMatchObject({ queued: 0, dropped: { TALLY_PAYLOAD_TOO_LARGE: 1 } });
  });

  it('redacts PII by default and rejects it under the reject policy', async () => {
    const a = make();
    a.tracker.track('open', { email: 'x@y.z', ok: 1 });
    await a.tracker.flush();
    expect(a.sink.events[0]?.properties).toEqual({ email: '[REDACTED]', ok: 1 });
    const b = make({ pii: { mode: 'reject' } });
    b.tracker.track('open', { password: 'p' });
    await b.tracker.flush();
    expect(b.tracker.stats().dropped).toEqual({ TALLY_PII_REJECTED: 1 });
  });

  it('uses the given timestamp but keeps the id born now', async () => {
    const { tracker, sink } = make();
    tracker.track('clicked', { button: 'a' }, { timestamp: new Date('2026-01-01T00:00:00Z') });
    tracker.track('clicked', { button: 'b' }, { timestamp: 'garbage' });
    await tracker.flush();
    expect(sink.events[0]?.timestamp).toBe('2026-01-01T00:00:00.000Z');
    expect(Math.abs(Date.parse(sink.events[1]?.timestamp as string) - Date.now())).toBeLessThan(5000);
  });
});

describe('context', () => {
  it('merges tracker context < ambient withContext < per-call options', async () => {
    const { tracker, sink } = make({ context: { service: 'api', tenantId: 't0', region: 'eu' } });
    tracker.withContext({ tenantId: 't1', userId: 'u1', requestId: 'r1' }, () => {
      tracker.track('clicked', { button: 'a' });
      withContext({ taskId: 'k1', requestId: 'r2' }, () => {
        tracker.track('clicked', { button: 'b' }, { userId: 'u2', context: { sessionId: 's1' } });
      });
    });
    tracker.track('clicked', { button: 'c' });
    await tracker.flush();
    const [a, b, c] = sink.events;
    expect(a).toMatchObject({
      tenantId: 't1',
      userId: 'u1',
      context: { service: 'api', region: 'eu', requestId: 'r1' },
    });
    expect(b).toMatchObject({
      tenantId: 't1',
      userId: 'u2',
      context: { service: 'api', requestId: 'r2', taskId: 'k1', sessionId: 's1' },
    });
    expect(c).toMatchObject({ tenantId: 't0', context: { service: 'api' } });
    expect(c?.userId).toBeUndefined();
    expect(a?.context).not.toHaveProperty('tenantId');
  });

  it('follows awaits, timers and promise chains without leaking between concurrent requests', async () => {
    const { tracker, sink } = make();
    const request = (id: string, wait: number) =>
      tracker.withContext({ requestId: id, userId: `user-${id}` }, async () => {
        await delay(wait);
        tracker.track('clicked', { button: id });
        await Promise.resolve();
        setTimeout(() => tracker.track('clicked', { button: `${id}-timer` }), 1);
        await delay(wait);
        tracker.track('clicked', { button: `${id}-late` });
      });
    await Promise.all([request('a', 20), request('b', 5), request('c', 12)]);
    await delay(20);
    await tracker.flush();
    expect(sink.events).toHaveLength(9);
    for (const e of sink.events) {
      const id = String(e.properties.button).split('-')[0];
      expect(e.context.requestId).toBe(id);
      expect(e.userId).toBe(`user-${id}`);
    }
  });
});

describe('sampling', () => {
  it('keeps about rate × n events and records the rate on each kept event', async () => {
    const { tracker, sink } = make({ sampling: { clicked: 0.05 } });
    const n = 20_000;
    for (let i = 0; i < n; i++) tracker.track('clicked', { button: 'x' });
    await tracker.flush();
    // Binomial(n, p): mean 1000, σ ≈ 30.8. ±5σ fails by chance about once in 1.7 million runs.
    const kept = sink.events.length;
    expect(kept).toBeGreaterThan(1000 - 5 * 30.8);
    expect(kept).toBeLessThan(1000 + 5 * 30.8);
    expect(tracker.stats().sampledOut).toBe(n - kept);
    expect(sink.events.every((e) => e.context.sampleRate === 0.05)).toBe(true);
  });

  it('uses the catalog rate unless overridden; unsampled events carry no rate', async () => {
    const { tracker, sink } = make();
    for (let i = 0; i < 4000; i++) tracker.track('streamed', { chunk: i });
    tracker.track('clicked', { button: 'x' });
    await tracker.flush();
    const streamed = sink.events.filter((e) => e.name === 'streamed');
    // Binomial(4000, 0.5): σ ≈ 31.6.
    expect(Math.abs(streamed.length - 2000)).toBeLessThan(5 * 31.6);
    expect(streamed[0]?.context.sampleRate).toBe(0.5);
    expect(sink.events.find((e) => e.name === 'clicked')?.context).not.toHaveProperty('sampleRate');
  });

  it('refuses rates outside (0, 1] and names outside the catalog', () => {
    expect(() => make({ sampling: { clicked: 0 } })).toThrow(/sampling.clicked/);
    expect(() => make({ sampling: { clicked: 1.5 } })).toThrow(/sampling.clicked/);
    expect(() => make({ sampling: { nope: 0.5 } as never })).toThrow(/not in the catalog/);
  });
});

describe('dedupe', () => {
  it('suppresses the same name and key within the window, not after it', async () => {
    const { tracker, sink } = make({ dedupe: { windowMs: 100 } });
    tracker.track('clicked', { button: 'a' }, { dedupeKey: 'task-1' });
    tracker.track('clicked', { button: 'b' }, { dedupeKey: 'task-1' });
    tracker.track('open', {}, { dedupeKey: 'task-1' });
    tracker.track('clicked', { button: 'c' }, { dedupeKey: 'task-2' });
    tracker.track('clicked', { button: 'd' });
    await delay(150);
    tracker.track('clicked', { button: 'e' }, { dedupeKey: 'task-1' });
    await tracker.flush();
    expect(sink.events.map((e) => e.properties.button ?? e.name)).toEqual(['a', 'open', 'c', 'd', 'e']);
    expect(tracker.stats().deduped).toBe(1);
  });

  it('derives keys from context, e.g. requestId + name (audit log mirrored into analytics)', async () => {
    const { tracker, sink } = make({ dedupe: { key: (_name, _props, ctx) => ctx?.requestId as string | undefined } });
    withContext({ requestId: 'r1' }, () => {
      tracker.track('clicked', { button: 'from-handler' });
      tracker.track('clicked', { button: 'from-audit-mirror' });
    });
    withContext({ requestId: 'r2' }, () => tracker.track('clicked', { button: 'other-request' }));
    tracker.track('clicked', { button: 'no-request' });
    await tracker.flush();
    expect(sink.events.map((e) => e.properties.button)).toEqual(['from-handler', 'other-request', 'no-request']);
  });
});

describe('batching', () => {
  it('by count', async () => {
    const { tracker, sink } = make({ maxBatchEvents: 10, flushIntervalMs: 60_000 });
    for (let i = 0; i < 35; i++) tracker.track('clicked', { button: String(i) });
    await waitFor(() => sink.events.length === 30, 2000, 'three full batches');
    expect(sink.batches).toBe(3);
    await tracker.flush();
    expect(sink.batches).toBe(4);
    expect(sink.events.map((e) => e.properties.button)).toEqual(Array.from({ length: 35 }, (_, i) => String(i)));
  });

  it('by interval, without flush()', async () => {
    const { tracker, sink } = make({ flushIntervalMs: 30 });
    tracker.track('clicked', { button: 'a' });
    await waitFor(() => sink.events.length === 1, 2000, 'interval flush');
    tracker.track('clicked', { button: 'b' });
    await waitFor(() => sink.events.length === 2, 2000, 'second interval flush');
  });

  it('by bytes', async () => {
    const { tracker, sink } = make({ maxBatchBytes: 2000, flushIntervalMs: 60_000 });
    for (let i = 0; i < 10; i++) tracker.track('clicked', { button: 'x'.repeat(500) });
    await tracker.flush();
    expect(sink.batches).toBeGreaterThanOrEqual(4);
    expect(sink.events).toHaveLength(10);
  });
});

describe('batches in flight', () => {
  // The sink's own hint (a local store wants many) is the default; the tracker's option overrides it.
  it.each([
    { hint: undefined, option: undefined, expected: 4 },
    { hint: 7, option: undefined, expected: 7 },
    { hint: 7, option: 2, expected: 2 },
  ])('sink hint $hint, option $option → $expected at once', async ({ hint, option, expected }) => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let sending = 0;
    let most = 0;
    const sink = Object.assign(
      scriptedSink(async () => {
        most = Math.max(most, ++sending);
        await gate;
        sending--;
        return { ok: true };
      }),
      { maxInFlight: hint },
    );
    const { tracker } = make({ sink, maxBatchEvents: 1, ...(option ? { maxInFlight: option } : {}) });
    for (let i = 0; i < 20; i++) tracker.track('clicked', { button: String(i) });
    await delay(20);
    expect(tracker.stats().inFlight).toBe(expected);
    open();
    await tracker.flush();
    expect(most).toBe(expected);
    expect(sink.delivered).toHaveLength(20);
  });
});

describe('bounded memory', () => {
  it('drop-oldest keeps the newest events and counts the rest', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const sink = scriptedSink(async () => {
      await gate;
      return { ok: true };
    });
    const { tracker } = make({ sink, overflow: 'drop-oldest', maxQueueEvents: 10, maxBatchEvents: 5, maxInFlight: 1 });
    for (let i = 0; i < 40; i++) tracker.track('clicked', { button: String(i) });
    await delay(10);
    const s = tracker.stats();
    expect(s.queued).toBeLessThanOrEqual(10);
    expect(s.dropped.TALLY_QUEUE_OVERFLOW).toBe(40 - s.queued - s.inFlight);
    open();
    await tracker.flush();
    const got = sink.delivered.map((e) => Number(e.properties.button));
    expect(got.slice(-10)).toEqual([30, 31, 32, 33, 34, 35, 36, 37, 38, 39]);
    expect(got.length + (tracker.stats().dropped.TALLY_QUEUE_OVERFLOW ?? 0)).toBe(40);
  });

  it('the queue is bounded by bytes as well as events', async () => {
    const sink = scriptedSink((_e, _n, signal) => untilAborted(signal).then(() => ({ ok: true }) as const));
    const { tracker } = make({
      sink,
      overflow: 'drop-oldest',
      maxQueueBytes: 50_000,
      maxInFlight: 1,
      maxBatchEvents: 1,
    });
    for (let i = 0; i < 200; i++) tracker.track('clicked', { button: 'x'.repeat(1000) });
    expect(tracker.stats().queuedBytes).toBeLessThanOrEqual(50_000);
    expect(tracker.stats().dropped.TALLY_QUEUE_OVERFLOW).toBeGreaterThan(100);
    await tracker.shutdown({ timeoutMs: 50 });
  });

  it('spool (default) moves the oldest events to disk: nothing is lost', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const sink = scriptedSink(async () => {
      await gate;
      return { ok: true };
    });
    const { tracker, dir } = make({
      sink,
      maxQueueEvents: 20,
      maxBatchEvents: 5,
      maxInFlight: 1,
      resendSpoolOnStart: false,
    });
    // Bursts with event-loop turns between them, as an app produces: the disk gets its turn.
    for (let i = 0; i < 100; i++) {
      tracker.track('clicked', { button: String(i) });
      if (i % 10 === 9) await delay(5);
    }
    await waitFor(() => tracker.stats().spooled > 0, 2000, 'overflow spooled');
    open();
    await tracker.flush();
    const s = tracker.stats();
    expect(s.dropped).toEqual({});
    expect(s.delivered + s.spooled).toBe(100);
    const lines = readdirSync(dir).flatMap((f) => readFileSync(join(dir, f), 'utf8').trim().split('\n'));
    expect(lines).toHaveLength(s.spooled);
    // Spooled and delivered together are exactly the 100 events, none twice.
    const all = [
      ...sink.delivered.map((e) => e.properties.button),
      ...lines.map((l) => JSON.parse(l).row.properties.button),
    ];
    expect(new Set(all).size).toBe(100);
  });

  it('a synchronous burst beyond queue + spool backlog drops the oldest, counted (track never does I/O)', async () => {
    const sink = scriptedSink((_e, _n, signal) => untilAborted(signal).then(() => ({ ok: true }) as const));
    const { tracker } = make({
      sink,
      maxQueueEvents: 20,
      maxBatchEvents: 5,
      maxInFlight: 1,
      resendSpoolOnStart: false,
    });
    for (let i = 0; i < 100; i++) tracker.track('clicked', { button: String(i) });
    const s = tracker.stats();
    // In memory: at most the queue, the spool backlog (as large again) and one batch in flight.
    expect(s.queued).toBeLessThanOrEqual(40);
    expect(s.dropped.TALLY_QUEUE_OVERFLOW).toBe(100 - s.queued - s.inFlight);
    const report = await tracker.shutdown({ timeoutMs: 100 });
    expect(report.dropped).toEqual({});
    expect(report.delivered + report.spooled + (s.dropped.TALLY_QUEUE_OVERFLOW ?? 0)).toBe(100);
  });
});

describe('flush and shutdown', () => {
  it('shutdown drains everything, then refuses new events with a count', async () => {
    const { tracker, sink } = make({ maxBatchEvents: 7 });
    for (let i = 0; i < 100; i++) tracker.track('clicked', { button: String(i) });
    const report = await tracker.shutdown();
    expect(report).toMatchObject({ delivered: 100, spooled: 0, pending: 0, timedOut: false });
    expect(sink.events).toHaveLength(100);
    tracker.track('clicked', { button: 'late' });
    expect(tracker.stats().dropped).toEqual({ TALLY_SHUTDOWN: 1 });
    expect(await tracker.shutdown()).toBe(report);
  });

  it('shutdown at its deadline spools what it could not deliver, and says so', async () => {
    const sink = scriptedSink((_e, _n, signal) =>
      untilAborted(signal).then(() => ({
        ok: false as const,
        disposition: 'retry' as const,
        error: { code: 'TALLY_SINK_RETRYABLE', message: 'aborted' } as TallyError,
      })),
    );
    const { tracker, dir } = make({ sink, maxBatchEvents: 10, maxInFlight: 2, resendSpoolOnStart: false });
    for (let i = 0; i < 55; i++) tracker.track('clicked', { button: String(i) });
    const started = Date.now();
    const report = await tracker.shutdown({ timeoutMs: 200 });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(report).toMatchObject({ delivered: 0, spooled: 55, pending: 0, timedOut: true });
    const lines = readdirSync(dir).flatMap((f) => readFileSync(join(dir, f), 'utf8').trim().split('\n'));
    expect(new Set(lines.map((l) => JSON.parse(l).row.id)).size).toBe(55);
  });

  it('a sink that throws is retried like a transient failure', async () => {
    const sink = scriptedSink((_e, n) => {
      if (n < 2) throw new Error('boom');
      return { ok: true };
    });
    const { tracker } = make({ sink, retry: { initialMs: 1, maxMs: 5 } });
    tracker.track('clicked', { button: 'a' });
    expect(await tracker.flush()).toMatchObject({ delivered: 1 });
    expect(tracker.stats().retries).toBe(2);
  });

  it('validates its options with messages that say what to fix', () => {
    expect(() => make({ maxQueueEvents: 0 })).toThrow(/maxQueueEvents must be a positive number/);
    expect(() => make({ overflow: 'explode' as never })).toThrow(/overflow/);
    expect(() => make({ spool: false })).toThrow(/needs a spool directory/);
    expect(() => createTracker({ catalog, sink: undefined as never })).toThrow(/sink/);
    expect(() => make({ pii: { mode: 'maybe' as never } })).toThrow(/pii.mode/);
  });
});

describe('shipped catalog through the tracker', () => {
  it('types and delivers product events', async () => {
    const tmp = tempDir();
    const sink = createMemorySink();
    const tracker = createTracker({ catalog: productCatalog, sink, spool: tmp.dir });
    cleanups.push(tmp.cleanup);
    tracker.track('task_completed', { taskId: 't1', durationMs: 12.5, provider: 'openai' });
    // @ts-expect-error durationMs is required
    tracker.track('task_completed', { taskId: 't1' });
    // @ts-expect-error not an event of this catalog
    tracker.track('conversation_started', { conversationId: 'c', channel: 'web' });
    const report = await tracker.shutdown();
    expect(report.delivered).toBe(1);
    expect(report.dropped).toEqual({ TALLY_MISSING_PROPERTY: 1, TALLY_UNKNOWN_EVENT: 1 });
  });
});
