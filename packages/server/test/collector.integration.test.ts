/**
 * `tally serve` end to end on a real port: the SDK's http sink and plain HTTP clients (Segment- and
 * PostHog-style, and the real posthog-node / @segment/analytics-node libraries) → collector →
 * transport → writer → PGlite / Postgres, in-process and through NATS JetStream.
 */
import { gzipSync } from 'node:zlib';
import { Analytics } from '@segment/analytics-node';
import { ErrorCodes, isoTime, productCatalog, type RequestLogRecord, uuidv7 } from '@tally/core';
import { createHttpSink, createTracker, VERSION } from '@tally/node';
import { createApiKey, updateTenant } from '@tally/store';
import { PostHog } from 'posthog-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { type Backend, backends, serveFor, type TestServer } from './support/services.js';

async function post(s: TestServer, path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${s.server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${s.key}`, ...headers },
    body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any -- assertions walk the JSON freely
}

function event(name = 'waitlist_joined', properties: Record<string, unknown> = { source: 'test' }, ts = Date.now()) {
  return { id: uuidv7(ts), name, properties, timestamp: isoTime(ts) };
}

async function count(s: TestServer, where = 'true', params: unknown[] = []): Promise<number> {
  const rows = await s.server.store.sql.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM events WHERE ${where}`,
    params,
  );
  return Number(rows[0]?.n);
}

describe.each(backends)('tally serve (%s): the SDK over HTTP', (backend: Backend) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await serveFor(backend);
  }, 60_000);
  afterAll(() => s?.dispose());

  it('events and request logs from the SDK are stored exactly once, rollups equal detail', async () => {
    const spool = tempDir();
    const tracker = createTracker({
      catalog: productCatalog,
      sink: createHttpSink({ url: `${s.server.url}/v1/events`, writeKey: s.key }),
      context: { service: 'e2e', tenantId: 'ignored-the-key-decides' },
      spool: spool.dir,
      maxBatchEvents: 100,
    });
    for (let i = 0; i < 1000; i++) tracker.track('task_created', { taskId: `t-${i}`, taskType: 'render' });
    for (let i = 0; i < 50; i++) {
      const log: RequestLogRecord = {
        id: uuidv7(),
        tenantId: 'default',
        method: 'GET',
        route: '/things/:id',
        url: `/things/${i}`,
        status: i % 10 === 0 ? 500 : 200,
        durationMs: 3 + i,
        timestamp: isoTime(Date.now()),
      };
      tracker.trackRequest(() => log);
    }
    const result = await tracker.shutdown({ timeoutMs: 10_000 });
    spool.cleanup();
    expect(result).toMatchObject({ spooled: 0, pending: 0 });
    expect(tracker.stats()).toMatchObject({ delivered: 1050, spooled: 0, dropped: {} });
    // Through NATS the ack means "in the stream": the consumer stores it moments later.
    const deadline = Date.now() + 15_000;
    let totals = await s.server.store.totals();
    while ((totals.events < 1000 || totals.requestLogs < 50) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      totals = await s.server.store.totals();
    }
    expect(totals).toEqual({ events: 1000, eventRollup: 1000, requestLogs: 50, pathRollup: 50 });
    expect(await count(s, `tenant_id = 'default'`)).toBe(1000);
    // The sink sends the shared context once a batch; every stored event has it in full.
    expect(
      await count(s, `context = $1::text::jsonb`, [
        JSON.stringify({ service: 'e2e', library: { name: '@tally/node', version: VERSION } }),
      ]),
    ).toBe(1000);
  });
});

describe('tally serve: formats, keys and bad input (PGlite, in-process)', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await serveFor('pglite', { 'max-body-bytes': '65536' });
  }, 60_000);
  afterAll(() => s?.dispose());

  it('a Segment batch, sent as its HTTP API documents it, is stored; a resend stores nothing twice', async () => {
    const body = {
      batch: [
        {
          type: 'track',
          event: 'waitlist_joined',
          userId: 'u-1',
          properties: { source: 'seg' },
          messageId: 'msg-track-1',
          timestamp: isoTime(Date.now()),
        },
        { type: 'identify', userId: 'u-1', traits: { plan: 'pro', email: 'a@b.c' }, messageId: 'msg-identify-1' },
        {
          type: 'page',
          anonymousId: 'anon-9',
          name: 'Pricing',
          properties: { path: '/pricing' },
          messageId: 'msg-page-1',
        },
        { type: 'teleport', messageId: 'msg-bad' },
      ],
      context: { library: { name: 'curl', version: '1' } },
    };
    const basic = `Basic ${Buffer.from(`${s.key}:`).toString('base64')}`;
    const first = await post(s, '/v1/batch', body, { authorization: basic });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ success: true, accepted: 3, duplicates: 0 });
    expect(first.body.rejected).toEqual([expect.objectContaining({ index: 3, code: ErrorCodes.INVALID_ENVELOPE })]);
    const again = await post(s, '/v1/batch', body, { authorization: basic });
    expect(again.body).toMatchObject({ accepted: 3, duplicates: 3 });
    const rows = await s.server.store.sql.query<{ name: string; properties: Record<string, unknown>; user_id: string }>(
      `SELECT name, properties, user_id FROM events WHERE name IN ('$identify', '$page') OR properties->>'source' = 'seg' ORDER BY name`,
    );
    expect(rows.map((r) => r.name)).toEqual(['$identify', '$page', 'waitlist_joined']);
    expect(rows[0]?.properties).toEqual({ plan: 'pro', email: '[REDACTED]' }); // PII redaction is on by default
  });

  it('the real @segment/analytics-node and posthog-node clients deliver to it', async () => {
    const seg = new Analytics({ writeKey: s.key, host: s.server.url, flushAt: 5, maxEventsInBatch: 5 });
    for (let i = 0; i < 12; i++)
      seg.track({ userId: `seg-${i}`, event: 'waitlist_joined', properties: { source: 'segment-node' } });
    await seg.closeAndFlush({ timeout: 10_000 });
    const ph = new PostHog(s.key, { host: s.server.url, flushAt: 5, flushInterval: 0 });
    for (let i = 0; i < 12; i++)
      ph.capture({ distinctId: `ph-${i}`, event: 'waitlist_joined', properties: { source: 'posthog-node' } });
    await ph.shutdown(10_000);
    expect(await count(s, `properties->>'source' = 'segment-node'`)).toBe(12);
    expect(await count(s, `properties->>'source' = 'posthog-node'`)).toBe(12);
  });

  it('PostHog /capture with api_key in the body', async () => {
    const res = await post(
      s,
      '/capture/',
      { api_key: s.key, event: 'waitlist_joined', distinct_id: 'p1', properties: { source: 'capture' } },
      { authorization: '' },
    );
    expect(res).toMatchObject({ status: 200, body: { status: 1, accepted: 1 } });
  });

  it('a mixed batch stores the good events and names each bad one with its code', async () => {
    const good = [event(), event('task_created', { taskId: 'x', taskType: 'render' })];
    const res = await post(s, '/v1/events', {
      batch: [
        good[0],
        event('no_such_event', {}),
        event('waitlist_joined', { source: 42 }),
        event('waitlist_joined', {}),
        { ...event(), id: 'not-a-uuid' },
        { ...event(), timestamp: 'yesterday' },
        event('waitlist_joined', { source: 'x'.repeat(3000) }),
        'not an object',
        good[1],
      ],
      sentAt: isoTime(Date.now()),
    });
    expect(res.status).toBe(200);
    expect(res.body.accepted).toBe(2);
    expect(res.body.rejected.map((r: { index: number; code: string }) => [r.index, r.code])).toEqual([
      [1, ErrorCodes.UNKNOWN_EVENT],
      [2, ErrorCodes.INVALID_TYPE],
      [3, ErrorCodes.MISSING_PROPERTY],
      [4, ErrorCodes.INVALID_ENVELOPE],
      [5, ErrorCodes.INVALID_ENVELOPE],
      [6, ErrorCodes.PAYLOAD_TOO_LARGE],
      [7, ErrorCodes.INVALID_ENVELOPE],
    ]);
    expect(await count(s, 'id = ANY($1::uuid[])', [good.map((e) => e.id)])).toBe(2);
  });

  it('a row the database refuses is dead-lettered, answered as rejected and counted once', async () => {
    const good = event();
    const poisoned = event('waitlist_joined', { source: 'nul \u0000 in jsonb' });
    const res = await post(s, '/v1/events', { batch: [good, poisoned] });
    expect(res.status).toBe(200);
    expect(res.body.accepted).toBe(1);
    expect(res.body.rejected).toEqual([expect.objectContaining({ index: 1, code: ErrorCodes.INVALID_ROW })]);
    const text = await (await fetch(`${s.server.url}/metrics`)).text();
    expect(text).toMatch(/^tally_events_rejected_total\{code="TALLY_INVALID_ROW"\} 1$/m);
  });

  it('whole-request errors: wrong key 401, bad JSON 400, huge body 413, each a typed JSON error', async () => {
    const wrong = await post(s, '/v1/events', { batch: [event()] }, { authorization: 'Bearer tk_wrong' });
    expect(wrong).toMatchObject({ status: 401, body: { error: { code: ErrorCodes.UNAUTHORIZED } } });
    const none = await post(s, '/v1/events', { batch: [event()] }, { authorization: '' });
    expect(none).toMatchObject({ status: 401, body: { error: { code: ErrorCodes.UNAUTHORIZED } } });
    const badJson = await post(s, '/v1/events', '{"batch": [', {});
    expect(badJson).toMatchObject({ status: 400, body: { error: { code: ErrorCodes.MALFORMED_BODY } } });
    const noBatch = await post(s, '/v1/events', { events: [] });
    expect(noBatch).toMatchObject({ status: 400, body: { error: { code: ErrorCodes.MALFORMED_BODY } } });
    const huge = await post(s, '/v1/events', { batch: Array.from({ length: 1000 }, () => event()) });
    expect(huge).toMatchObject({ status: 413, body: { error: { code: ErrorCodes.PAYLOAD_TOO_LARGE } } });
    const notGzip = await post(s, '/v1/events', 'plain', { 'content-encoding': 'gzip' });
    expect(notGzip).toMatchObject({ status: 400, body: { error: { code: ErrorCodes.MALFORMED_BODY } } });
    const bomb = gzipSync(Buffer.alloc(10 * 1024 * 1024, 32)); // ~10 KB on the wire, 10 MB inflated
    const bombed = await post(s, '/v1/events', bomb, { 'content-encoding': 'gzip' });
    expect(bombed).toMatchObject({ status: 413, body: { error: { code: ErrorCodes.PAYLOAD_TOO_LARGE } } });
    const e = event();
    const zipped = await post(s, '/v1/events', gzipSync(JSON.stringify({ batch: [e] })), {
      'content-encoding': 'gzip',
    });
    expect(zipped).toMatchObject({ status: 200, body: { accepted: 1 } });
  });

  it('10,000 random malformed bodies: every one a 4xx JSON error, the server stays up, good data still lands', async () => {
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const pieces = [
      '{',
      '}',
      '[',
      ']',
      '"batch"',
      ':',
      ',',
      'null',
      '1e999',
      '"\\u0000"',
      'true',
      '{"batch":',
      '"id"',
      '\u00ff',
      '\\',
    ];
    const bodies = Array.from({ length: 10_000 }, (_, i) => {
      if (i % 4 === 0)
        return JSON.stringify({ batch: [{ id: uuidv7(), name: rand() > 0.5 ? 1 : 'x', timestamp: rand() }] });
      if (i % 4 === 1)
        return JSON.stringify({ batch: Array.from({ length: 3 }, () => ({ [String(rand())]: rand() })) });
      return Array.from({ length: 1 + Math.floor(rand() * 20) }, () => pieces[Math.floor(rand() * pieces.length)]).join(
        '',
      );
    });
    const statuses = new Map<number, number>();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < bodies.length) {
          const body = bodies[next++] as string;
          const res = await fetch(`${s.server.url}/v1/events`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${s.key}` },
            body,
          });
          const json = (await res.json()) as { error?: { code: string }; accepted?: number };
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status >= 500) throw new Error(`5xx for ${body}: ${JSON.stringify(json)}`);
          if (res.status === 200) expect(json.accepted).toBe(0);
          else expect(json.error?.code).toMatch(/^TALLY_/);
        }
      }),
    );
    expect([...statuses.keys()].every((st) => st === 200 || (st >= 400 && st < 500))).toBe(true);
    const e = event();
    expect((await post(s, '/v1/events', { batch: [e] })).body).toMatchObject({ accepted: 1 });
    expect(await count(s, 'id = $1', [e.id])).toBe(1);
  }, 180_000);

  it('rate limit: a tenant over its bucket gets 429 + Retry-After; another tenant is not slowed', async () => {
    const { key: slowKey } = await createApiKey(s.server.store.sql, 'slow-tenant');
    await updateTenant(s.server.store.sql, 'slow-tenant', { rateLimit: 10 }); // bucket: 10/s × 5 s
    // Key lookups are cached for 30 s: a fresh key's tenant settings are read on first use.
    const batch = (n: number) => ({ batch: Array.from({ length: n }, () => event()) });
    expect((await post(s, '/v1/events', batch(40), { authorization: `Bearer ${slowKey}` })).status).toBe(200);
    const limited = await post(s, '/v1/events', batch(40), { authorization: `Bearer ${slowKey}` });
    expect(limited).toMatchObject({ status: 429, body: { error: { code: ErrorCodes.RATE_LIMITED } } });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await post(s, '/v1/events', batch(200))).status).toBe(200);
  });

  it('clock rule: a producer clock an hour off is corrected; times a day ahead are clamped; ids never change', async () => {
    const now = Date.now();
    const skewed = event('waitlist_joined', { source: 'skew' }, now - 3600_000 - 1000);
    const future = event('waitlist_joined', { source: 'future' }, now + 48 * 3600_000);
    await post(s, '/v1/events', { batch: [skewed], sentAt: isoTime(now - 3600_000) });
    await post(s, '/v1/events', { batch: [future], sentAt: isoTime(now) });
    const rows = await s.server.store.sql.query<{ id: string; ms: number; context: Record<string, unknown> }>(
      `SELECT id::text, (extract(epoch from ts) * 1000)::float8 AS ms, context FROM events WHERE id = ANY($1::uuid[])`,
      [[skewed.id, future.id]],
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    expect(Math.abs(Number(byId.get(skewed.id)?.ms) - (now - 1000))).toBeLessThan(2000);
    expect(Math.abs(Number(byId.get(future.id)?.ms) - now)).toBeLessThan(2000);
    expect(byId.get(future.id)?.context.clientTimestamp).toBe(future.timestamp);
  });

  it("a batch's context is each event's that has none; an event's own replaces it; events never share edits", async () => {
    const now = Date.now();
    const plain = event('waitlist_joined', { source: 'batch-ctx' }, now);
    const own = { ...event('waitlist_joined', { source: 'own-ctx' }, now), context: { service: 'own' } };
    // Clamped: its context gets clientTimestamp, which must not reach the events sharing the batch's.
    const future = event('waitlist_joined', { source: 'batch-ctx-future' }, now + 48 * 3600_000);
    const after = event('waitlist_joined', { source: 'batch-ctx-after' }, now);
    const batchContext = { service: 'batch', requestId: 'r-1', library: { name: 'x', version: '1' } };
    const res = await post(s, '/v1/events', {
      batch: [plain, own, future, after],
      context: batchContext,
      sentAt: isoTime(now),
    });
    expect(res.body).toMatchObject({ accepted: 4, rejected: [] });
    const rows = await s.server.store.sql.query<{ id: string; context: Record<string, unknown> }>(
      `SELECT id::text, context FROM events WHERE id = ANY($1::uuid[])`,
      [[plain.id, own.id, future.id, after.id]],
    );
    const byId = new Map(rows.map((r) => [r.id, r.context]));
    expect(byId.get(plain.id)).toEqual(batchContext);
    expect(byId.get(after.id)).toEqual(batchContext);
    expect(byId.get(own.id)).toEqual({ service: 'own' });
    expect(byId.get(future.id)).toEqual({ ...batchContext, clientTimestamp: future.timestamp });
  });

  it('unlisted names: rejected by default, accepted (marked) for a tenant that allows them', async () => {
    const { key } = await createApiKey(s.server.store.sql, 'open-tenant');
    await updateTenant(s.server.store.sql, 'open-tenant', { acceptUnlisted: true });
    const e = event('Order Completed', { total: 5, password: 'hunter2' });
    expect((await post(s, '/v1/events', { batch: [e] })).body.rejected[0].code).toBe(ErrorCodes.UNKNOWN_EVENT);
    expect((await post(s, '/v1/events', { batch: [e] }, { authorization: `Bearer ${key}` })).body.accepted).toBe(1);
    const [row] = await s.server.store.sql.query<{
      tenant_id: string;
      context: Record<string, unknown>;
      properties: Record<string, unknown>;
    }>('SELECT tenant_id, context, properties FROM events WHERE id = $1', [e.id]);
    expect(row).toMatchObject({
      tenant_id: 'open-tenant',
      context: { unlisted: true },
      properties: { total: 5, password: '[REDACTED]' },
    });
  });

  it('metrics, health and readiness', async () => {
    const text = await (await fetch(`${s.server.url}/metrics`)).text();
    expect(text).toMatch(/^tally_events_accepted_total \d+/m);
    expect(text).toMatch(/^tally_events_rejected_total\{code="TALLY_UNKNOWN_EVENT"\} \d+/m);
    expect(text).toMatch(/^tally_requests_refused_total\{code="TALLY_UNAUTHORIZED"\} \d+/m);
    expect(text).toMatch(/^tally_write_duration_seconds_bucket/m);
    expect(text).toMatch(/^tally_db_up 1/m);
    expect(text).toMatch(/^tally_ingestion_lag_seconds /m);
    expect((await fetch(`${s.server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${s.server.url}/readyz`)).status).toBe(200);
  });
});
