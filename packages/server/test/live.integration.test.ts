/**
 * `GET /v1/live` over real HTTP: a client sees exactly the rows the server stored for its tenant from
 * the moment it connected (not refused events, not duplicates, not another tenant's), filtered by name,
 * user and kind; a client that does not read is bounded (frames dropped and counted, then told) while
 * ingestion goes on; streams end at shutdown without holding the server's drain.
 */
import { createApiKey } from '@tally/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needs } from '../../node/test/support/service-gate.js';
import { call, event, type LiveReader, openLive, requestLog, send, type SseFrame } from './support/read-api.js';
import { nats, serveFor, type TestServer } from './support/services.js';

async function until(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const rows = (frames: SseFrame[]) => frames.filter((f) => f.event === 'event' || f.event === 'log');
const idsOf = (frames: SseFrame[]) => rows(frames).map((f) => f.data.id as string);

const backends: ('pglite' | 'pglite+nats')[] = ['pglite', ...(needs(nats).runs ? (['pglite+nats'] as const) : [])];

describe.each(backends)('live streams (%s)', (backend) => {
  let s: TestServer;
  let base: string;
  const keys: Record<string, string> = {};
  const open: LiveReader[] = [];
  const live = async (path: string, key: string) => {
    const r = await openLive(base, path, key);
    open.push(r);
    return r;
  };

  beforeAll(async () => {
    s = await serveFor(backend, { 'live-max-clients': '5' }, { live: { heartbeatMs: 200 } });
    base = s.server.url;
    const sql = s.server.store.sql;
    keys.writeA = (await createApiKey(sql, 'acme')).key;
    keys.readA = (await createApiKey(sql, 'acme', { scope: 'read' })).key;
    keys.writeB = (await createApiKey(sql, 'globex')).key;
    keys.readB = (await createApiKey(sql, 'globex', { scope: 'read' })).key;
  }, 120_000);
  afterAll(async () => {
    for (const r of open) r.close();
    await s?.dispose();
  });

  it('streams what was stored, once, to the clients whose filters it passes', async () => {
    // Stored before anyone listened: not streamed.
    const before = event('conversation_started', { conversationId: 'early', channel: 'web' });
    await send(base, keys.writeA as string, [before]);
    // Behind NATS the answer comes once JetStream has the batch: wait until it is stored.
    await until(
      async () => (await s.server.store.sql.query('SELECT 1 FROM events WHERE id = $1', [before.id])).length === 1,
    );

    const all = await live('/v1/live', keys.readA as string);
    const escalations = await live('/v1/live?name=escalation_triggered&kind=events', keys.readA as string);
    const logs = await live('/v1/live?kind=logs', keys.readA as string);
    const u1 = await live('/v1/live?userId=u1', keys.readA as string);
    const other = await live('/v1/live', keys.readB as string);
    for (const r of [all, escalations, logs, u1, other]) {
      expect(r.status).toBe(200);
      await r.until((f) => f.some((x) => x.event === 'ready'));
    }
    expect(all.frames[0]).toMatchObject({ event: 'ready', data: { tenantId: 'acme', kinds: ['events', 'logs'] } });

    const e1 = event('conversation_started', { conversationId: 'c1', channel: 'web' }, { userId: 'u0' });
    const e2 = event('escalation_triggered', { conversationId: 'c1', reason: 'angry' }, { userId: 'u1' });
    const refused = event('no_such_event', {}, { userId: 'u1' });
    const log1 = requestLog({ route: '/a', url: '/a?x=1', status: 404, userId: 'u1', requestBody: 'secret' });
    const first = await send(base, keys.writeA as string, [e1, e2, refused, log1]);
    expect(first.json).toMatchObject({ accepted: 3, rejected: [{ index: 2 }] });
    // e1 again (a retry): a duplicate, stored once and streamed once.
    const e3 = event('conversation_started', { conversationId: 'c2', channel: 'slack' }, { userId: 'u1' });
    const second = await send(base, keys.writeA as string, [{ ...e1 }, e3]);
    expect(second.json.duplicates ?? 0).toBeGreaterThanOrEqual(backend.endsWith('+nats') ? 0 : 1);
    const theirs = event('checkout_completed', { orderId: 'o', plan: 'pro', amountCents: 1, currency: 'EUR' });
    await send(base, keys.writeB as string, [theirs]);
    const markE = event('escalation_triggered', { conversationId: 'end', reason: 'end' }, { userId: 'u1' });
    const markL = requestLog({ route: '/end', url: '/end', userId: 'u1' });
    await send(base, keys.writeA as string, [markE, markL]);

    const has = (ids: string[]) => (f: SseFrame[]) => ids.every((id) => idsOf(f).includes(id));
    await all.until(has([markE.id, markL.id]));
    await escalations.until(has([markE.id]));
    await logs.until(has([markL.id]));
    await u1.until(has([markE.id, markL.id]));
    await other.until(has([theirs.id]));

    // Each row once (behind NATS, events and request logs travel on subjects of their own: any order).
    const exactly = (r: LiveReader, ids: string[]) => expect(idsOf(r.frames).sort()).toEqual([...ids].sort());
    exactly(all, [e1.id, e2.id, log1.id, e3.id, markE.id, markL.id]);
    exactly(escalations, [e2.id, markE.id]);
    exactly(logs, [log1.id, markL.id]);
    exactly(u1, [e2.id, log1.id, e3.id, markE.id, markL.id]);
    exactly(other, [theirs.id]);
    if (!backend.endsWith('+nats'))
      expect(idsOf(all.frames)).toEqual([e1.id, e2.id, log1.id, e3.id, markE.id, markL.id]);

    const e2Frame = rows(all.frames).find((f) => f.data.id === e2.id);
    expect(e2Frame).toMatchObject({
      event: 'event',
      id: e2.id,
      data: { name: 'escalation_triggered', userId: 'u1', properties: { conversationId: 'c1', reason: 'angry' } },
    });
    const logFrame = rows(all.frames).find((f) => f.data.id === log1.id);
    expect(logFrame).toMatchObject({ event: 'log', data: { status: 404, route: '/a', url: '/a?x=1', userId: 'u1' } });
    // Bodies stay out of the stream (GET /v1/query/logs/:id has them).
    expect(JSON.stringify(logFrame)).not.toContain('secret');
    // A heartbeat comes every 200 ms here: wait for one rather than assume the test took that long.
    await all.until(() => all.raw().includes(': heartbeat'));

    // Five streams are open: the sixth is refused until one closes.
    const sixth = await openLive(base, '/v1/live', keys.readA as string);
    expect(sixth.status).toBe(503);
    for (const r of [escalations, logs, u1, other]) r.close();
    const deadline = Date.now() + 5000;
    while (s.server.live.stats().clients > 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(s.server.live.stats().clients).toBe(1);
    all.close();
  }, 60_000);

  it('who may stream, and bad parameters naming themselves', async () => {
    expect((await call(base, 'GET', '/v1/live')).status).toBe(401);
    expect((await call(base, 'GET', '/v1/live', { key: keys.writeA })).status).toBe(403);
    for (const [path, param] of [
      ['/v1/live?kind=metrics', 'kind'],
      ['/v1/live?kind=', 'kind'],
      ['/v1/live?userId=', 'userId'],
      ['/v1/live?name=a&name=b', 'name'],
      [`/v1/live?name=${'x'.repeat(201)}`, 'name'],
    ] as const) {
      const r = await call(base, 'GET', path, { key: keys.readA });
      expect(r.status, path).toBe(400);
      expect(r.json.error).toMatchObject({ code: 'TALLY_BAD_QUERY', details: { path: param } });
    }
  });
});

describe('a live client that does not read', () => {
  let s: TestServer;
  let base: string;
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    s = await serveFor('pglite', {}, { live: { maxQueued: 100, heartbeatMs: 60_000 } });
    base = s.server.url;
    keys.write = (await createApiKey(s.server.store.sql, 'acme')).key;
    keys.read = (await createApiKey(s.server.store.sql, 'acme', { scope: 'read' })).key;
  }, 120_000);
  afterAll(() => s?.dispose());

  it('is bounded: frames beyond its queue are dropped and counted, ingestion goes on, the client is told', async () => {
    const reading = await openLive(base, '/v1/live?kind=events', keys.read as string);
    const stalled = await openLive(base, '/v1/live?kind=events', keys.read as string, { paused: true });
    expect(stalled.status).toBe(200);
    // Fat events (1.5 KB of properties each): far more than the socket buffers between server and client
    // hold, in batches smaller than the queue, so a client that reads keeps up.
    const batches = 240;
    const perBatch = 50;
    const pad = 'p'.repeat(1500);
    let maxQueued = 0;
    const started = Date.now();
    for (let b = 0; b < batches; b++) {
      const batch = Array.from({ length: perBatch }, (_, i) =>
        event('conversation_started', { conversationId: `c${b}-${i}`, channel: 'web', botId: pad }),
      );
      const r = await send(base, keys.write as string, batch);
      expect(r.json.accepted).toBe(perBatch);
      maxQueued = Math.max(maxQueued, s.server.live.stats().queued);
    }
    const ingestMs = Date.now() - started;
    const total = batches * perBatch;
    const stats = s.server.live.stats();
    // The stalled client's queue stays within its bound; the rest of what it missed is only counted.
    expect(maxQueued).toBeGreaterThan(0);
    expect(maxQueued).toBeLessThanOrEqual(100);
    expect(stats.dropped).toBeGreaterThan(0);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(Number(/^tally_live_dropped_total (\d+)/m.exec(metrics)?.[1])).toBe(stats.dropped);
    // The client that reads lost nothing.
    await reading.until((f) => rows(f).length === total, 30_000);
    expect(reading.frames.some((f) => f.event === 'dropped')).toBe(false);
    expect(new Set(idsOf(reading.frames)).size).toBe(total);

    // Reading again: every stored event is either received or counted in a `dropped` frame.
    stalled.resume();
    const accounted = (f: SseFrame[]) =>
      rows(f).length + f.filter((x) => x.event === 'dropped').reduce((n, x) => n + (x.data.count as number), 0);
    await stalled.until((f) => accounted(f) === total, 30_000);
    expect(stalled.frames.some((f) => f.event === 'dropped')).toBe(true);
    expect(rows(stalled.frames).length).toBeLessThan(total);
    expect(new Set(idsOf(stalled.frames)).size).toBe(rows(stalled.frames).length);
    reading.close();
    stalled.close();
    console.log(
      `live: ${total} events (${Math.round((total * 1.6) / 1024)} MB) ingested in ${ingestMs} ms beside a client not reading; ` +
        `it dropped ${stats.dropped}, holding at most ${maxQueued} frames`,
    );
  }, 180_000);
});

describe('live streams at shutdown', () => {
  it('end at once, a reading client told, one that does not read cut; the drain does not wait', async () => {
    const s = await serveFor('pglite', {}, { live: { maxQueued: 100 } });
    try {
      const read = (await createApiKey(s.server.store.sql, 'acme', { scope: 'read' })).key;
      const write = (await createApiKey(s.server.store.sql, 'acme')).key;
      const reading = await openLive(s.server.url, '/v1/live', read);
      const stalled = await openLive(s.server.url, '/v1/live', read, { paused: true });
      await reading.until((f) => f.some((x) => x.event === 'ready'));
      const pad = 'p'.repeat(1500);
      // Until the stalled client's socket is full and frames wait in its queue.
      for (let b = 0; b < 400 && s.server.live.stats().queued === 0; b++) {
        await send(
          s.server.url,
          write,
          Array.from({ length: 50 }, (_, i) =>
            event('conversation_started', { conversationId: `${b}-${i}`, channel: 'web', botId: pad }),
          ),
        );
      }
      expect(s.server.live.stats().queued).toBeGreaterThan(0);
      await reading.until((f) => f.filter((x) => x.event === 'event').length > 0);
      const started = Date.now();
      await s.server.close();
      const closeMs = Date.now() - started;
      expect(closeMs).toBeLessThan(5000);
      await reading.ended;
      expect(reading.frames.at(-1)?.event).toBe('shutdown');
      stalled.resume();
      await stalled.ended;
      expect(stalled.frames.some((f) => f.event === 'shutdown')).toBe(false);
    } finally {
      await s.dispose();
    }
  }, 120_000);
});
