/**
 * The ClickHouse store's insert side on both engines (Debian's 18.16 server and chDB's current engine):
 * inserts return exactly the ids they stored, a resent batch or a repeated id stores nothing twice,
 * concurrent inserts of the same rows store each once, late events land in their own day, rows come
 * back as they went in, and migrations apply once.
 */
import { type EventRow, isoTime, type RequestLogRow, uuidv7 } from '@tally/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClickHouseStore, createClickHouseStore } from '../src/store.js';
import { engines, openStore } from './support/engines.js';

const HOUR = 3_600_000;
const BASE = Date.parse('2026-03-10T12:00:00Z');

function event(i: number, overrides: Partial<EventRow> = {}): EventRow {
  return {
    id: uuidv7(),
    tenantId: 'acme',
    name: i % 2 ? 'signup' : 'view',
    userId: `u${i % 7}`,
    properties: { n: i, plan: i % 3 ? 'pro' : 'free', meta: { depth: i % 4, tags: ['a', 'b'] } },
    context: { library: { name: 'test', version: '1' } },
    timestamp: isoTime(BASE + i * 60_000),
    receivedAt: isoTime(BASE + i * 60_000 + 5),
    ...overrides,
  };
}

function log(i: number, overrides: Partial<RequestLogRow> = {}): RequestLogRow {
  return {
    id: uuidv7(),
    tenantId: 'acme',
    method: 'GET',
    route: '/users/:id',
    url: `/users/${i}`,
    status: i % 5 ? 200 : 500,
    durationMs: 3 + i,
    timestamp: isoTime(BASE + i * 1000),
    receivedAt: isoTime(BASE + i * 1000 + 2),
    ...overrides,
  };
}

describe.each(engines)('ClickHouse store on %s', (engine) => {
  let store: ClickHouseStore;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ store, cleanup } = await openStore(engine));
  });
  afterAll(async () => cleanup?.());

  const count = async (table: string, tenant = 'acme') =>
    Number(
      (
        await store.client.query<{ n: number }>(
          `SELECT count() AS n FROM ${store.database}.${table} WHERE tenant_id = '${tenant}'`,
        )
      )[0]?.n,
    );

  it('migrates once: a second migrate applies nothing', async () => {
    expect((await store.migrate()).applied).toEqual([]);
  });

  it('returns the ids it inserted; a resent batch inserts nothing', async () => {
    const rows = Array.from({ length: 50 }, (_, i) => event(i));
    expect(new Set(await store.insertEvents(rows))).toEqual(new Set(rows.map((r) => r.id)));
    expect(await store.insertEvents(rows)).toEqual([]);
    // Part old, part new: only the new ones.
    const more = [...rows.slice(0, 10), event(100), event(101)];
    expect(await store.insertEvents(more)).toEqual(more.slice(10).map((r) => r.id));
    expect(await count('events')).toBe(52);
  });

  it('stores an id repeated within one batch once', async () => {
    const e = event(200);
    expect(await store.insertEvents([e, e, { ...e }])).toEqual([e.id]);
    expect(await store.insertEvents([e])).toEqual([]);
  });

  it('stores each id once when the same rows are inserted concurrently', async () => {
    const rows = Array.from({ length: 300 }, (_, i) => event(1000 + i, { tenantId: 'concurrent' }));
    const results = await Promise.all([store.insertEvents(rows), store.insertEvents(rows), store.insertEvents(rows)]);
    expect(results.flat().length).toBe(300);
    expect(await count('events', 'concurrent')).toBe(300);
  });

  it('finds a stored id again when its batch spans days and hours (late events)', async () => {
    const rows = [
      event(1, { tenantId: 'late', timestamp: isoTime(BASE - 40 * 24 * HOUR) }),
      event(2, { tenantId: 'late', timestamp: isoTime(BASE - 3 * HOUR) }),
      event(3, { tenantId: 'late', timestamp: isoTime(BASE) }),
    ];
    expect((await store.insertEvents(rows)).length).toBe(3);
    expect(await store.insertEvents([...rows].reverse())).toEqual([]);
    const days = await store.client.query<{ d: number }>(
      `SELECT DISTINCT toYYYYMMDD(ts) AS d FROM ${store.database}.events WHERE tenant_id = 'late' ORDER BY d`,
    );
    expect(days.map((r) => Number(r.d))).toEqual([20260129, 20260310]);
  });

  it("finds stored ids when a group's times are cut into ranges at its widest gaps", async () => {
    // 20 clusters of 10 events a minute apart, the clusters hours to days apart: the widest gaps become
    // cuts, the others stay inside ranges.
    const rows = Array.from({ length: 200 }, (_, i) => {
      const c = Math.floor(i / 10);
      return event(i, {
        tenantId: 'spread',
        name: 'tick',
        timestamp: isoTime(BASE - c * c * HOUR + (i % 10) * 60_000),
      });
    });
    const stored = rows.filter((_, i) => i % 3 === 0);
    expect((await store.insertEvents(stored)).length).toBe(stored.length);
    const fresh = rows.filter((_, i) => i % 3 !== 0);
    expect(new Set(await store.insertEvents(rows))).toEqual(new Set(fresh.map((r) => r.id)));
    expect(await store.insertEvents(rows)).toEqual([]);
    expect(await count('events', 'spread')).toBe(200);
  });

  it("lists the batch's ids when its ranges hold more stored rows than the range read takes", async () => {
    const statements: string[] = [];
    const spy = createClickHouseStore({
      client: {
        ...store.client,
        query: (sql, settings) => (statements.push(sql), store.client.query(sql, settings)),
      },
      database: store.database,
    });
    // 12 000 stored rows within two seconds of one (tenant, name): more than the range read's 10 000.
    const dense = Array.from({ length: 12_000 }, (_, i) =>
      event(i, { tenantId: 'dense', name: 'tick', timestamp: isoTime(BASE + (i % 2000)) }),
    );
    expect((await spy.insertEvents(dense)).length).toBe(12_000);
    statements.length = 0;
    // Times under a second apart: one range over the two seconds.
    const fresh = [0, 500, 1000, 1500, 1999].map((ms) =>
      event(1, { tenantId: 'dense', name: 'tick', timestamp: isoTime(BASE + ms) }),
    );
    const batch = [dense[5] as EventRow, ...fresh, dense[11_999] as EventRow];
    expect(new Set(await spy.insertEvents(batch))).toEqual(new Set(fresh.map((r) => r.id)));
    expect(statements.some((sql) => / id IN \(/.test(sql))).toBe(true);
    expect(await spy.insertEvents(batch)).toEqual([]);
    expect(await count('events', 'dense')).toBe(12_005);
  });

  it('finds a stored id again when its time is outside what a DateTime holds', async () => {
    const rows = [
      event(1, { tenantId: 'epoch', timestamp: '1969-12-31T23:59:59.500Z' }),
      event(2, { tenantId: 'epoch', timestamp: '1970-01-01T00:00:00.000Z' }),
    ];
    expect((await store.insertEvents(rows)).length).toBe(2);
    expect(await store.insertEvents(rows)).toEqual([]);
    expect(await count('events', 'epoch')).toBe(2);
  });

  it('keeps tenants apart: the same id in another tenant is another row', async () => {
    const e = event(300, { tenantId: 'one' });
    expect(await store.insertEvents([e])).toEqual([e.id]);
    // An id is unique across tenants in practice (UUIDv7); the store still keys its check by tenant.
    expect(await store.insertEvents([{ ...e, tenantId: 'two' }])).toEqual([e.id]);
  });

  it('keeps properties and context as sent, and flattens them for queries', async () => {
    const e = event(400, {
      tenantId: 'shape',
      properties: { s: 'it\'s \\ "q"', n: 1.5, b: false, nul: null, o: { x: { y: 'deep' } }, arr: [1, 'two'] },
      context: { library: { name: 'sdk', version: '2' }, sampleRate: 0.25 },
      anonymousId: 'anon-1',
      userId: undefined,
    });
    await store.insertEvents([e]);
    const [row] = await store.client.query<Record<string, unknown>>(
      `SELECT properties, context, user_id, anonymous_id, sample_rate, attr_keys, attr_types, attr_values
       FROM ${store.database}.events WHERE tenant_id = 'shape'`,
    );
    expect(JSON.parse(row?.properties as string)).toEqual(e.properties);
    expect(JSON.parse(row?.context as string)).toEqual(e.context);
    expect(row?.user_id).toBe('');
    expect(row?.anonymous_id).toBe('anon-1');
    expect(row?.sample_rate).toBe(0.25);
    const attrs = Object.fromEntries(
      (row?.attr_keys as string[]).map((k, i) => [
        k.replaceAll('\0', '.'),
        [(row?.attr_types as number[])[i], (row?.attr_values as string[])[i]],
      ]),
    );
    expect(attrs).toMatchObject({
      'p.s': [1, 'it\'s \\ "q"'],
      'p.n': [2, '1.5'],
      'p.b': [3, 'false'],
      'p.o.x.y': [1, 'deep'],
      'p.arr': [5, '[1,"two"]'],
      'c.library.name': [1, 'sdk'],
    });
    expect(attrs['p.nul']).toBeUndefined();
  });

  it('stores request logs exactly once, optional fields as null', async () => {
    const logs = Array.from({ length: 20 }, (_, i) => log(i));
    logs[0] = { ...logs[0], requestBody: '{"a":1}', headers: { accept: '*/*' }, bodyTruncated: true } as RequestLogRow;
    expect(new Set(await store.insertRequestLogs(logs))).toEqual(new Set(logs.map((l) => l.id)));
    expect(await store.insertRequestLogs([...logs, logs[3] as RequestLogRow])).toEqual([]);
    expect(await count('request_logs')).toBe(20);
  });

  it('totals equal the detail rows and no id is stored twice', async () => {
    const totals = await store.totals();
    expect(totals.events).toBeGreaterThan(0);
    expect(totals.eventRollup).toBe(totals.events);
    expect(await store.duplicates()).toEqual({ events: 0, requestLogs: 0 });
  });
});
