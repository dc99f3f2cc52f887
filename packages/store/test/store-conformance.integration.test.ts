/**
 * One conformance suite for every Store implementation, run unchanged against the real engines. After
 * every test the exactly-once invariant is checked: rollups sum to exactly the detail rows.
 */
import { isoTime } from '@tally/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LATENCY_BUCKETS_MS, loadMigrations, type Store } from '../src/index.js';
import { engines, eventRow, eventRows, isPostgres, openStore, requestLog } from './support/stores.js';

describe.each(engines)('Store conformance: %s', (engine) => {
  let store: Store;
  let dispose: () => Promise<void>;
  beforeAll(async () => {
    ({ store, dispose } = await openStore(engine));
  });
  afterAll(() => dispose());
  afterEach(async () => {
    const t = await store.totals();
    expect(t.eventRollup, 'SUM(event_counts_hourly.count) = COUNT(events)').toBe(t.events);
    expect(t.pathRollup, 'SUM(path_stats_hourly.count) = COUNT(request_logs)').toBe(t.requestLogs);
  });

  it('migrates once: a second run applies nothing', async () => {
    expect(await store.migrate()).toEqual({ applied: [] });
    const rows = await store.sql.query<{ version: number }>('SELECT version FROM tally_migrations ORDER BY version');
    expect(rows.map((r) => Number(r.version))).toEqual(loadMigrations().map((m) => m.version));
  });

  it('inserts a batch and returns exactly the inserted ids', async () => {
    const batch = eventRows(100);
    const inserted = await store.insertEvents(batch);
    expect(new Set(inserted)).toEqual(new Set(batch.map((e) => e.id)));
    const [row] = await store.sql.query<Record<string, unknown>>('SELECT * FROM events WHERE id = $1', [batch[0]?.id]);
    expect(row).toMatchObject({ tenant_id: 'tenant-a', name: 'task_created', properties: batch[0]?.properties });
  });

  it('the same batch twice inserts nothing the second time; a half-overlapping one only its new half', async () => {
    const before = await store.totals();
    const batch = eventRows(200);
    expect(await store.insertEvents(batch)).toHaveLength(200);
    expect(await store.insertEvents(batch)).toEqual([]);
    const overlap = [...batch.slice(100), ...eventRows(100)];
    const inserted = await store.insertEvents(overlap);
    expect(new Set(inserted)).toEqual(new Set(overlap.slice(100).map((e) => e.id)));
    const after = await store.totals();
    expect(after.events - before.events).toBe(300);
    expect(after.eventRollup - before.eventRollup).toBe(300);
  });

  it('a batch repeating an id inside itself stores it once', async () => {
    const e = eventRow();
    expect(await store.insertEvents([e, { ...e }, eventRow()])).toHaveLength(2);
  });

  it('rolls up by tenant, name and UTC hour, with sampling weights', async () => {
    const hour = Date.UTC(2026, 0, 5, 10);
    const at = (min: number) => isoTime(hour + min * 60_000);
    await store.insertEvents([
      eventRow({ tenantId: 'roll', name: 'a', timestamp: at(1) }),
      eventRow({ tenantId: 'roll', name: 'a', timestamp: at(59) }),
      eventRow({ tenantId: 'roll', name: 'a', timestamp: at(61) }),
      eventRow({ tenantId: 'roll', name: 'b', timestamp: at(2), context: { sampleRate: 0.25 } }),
    ]);
    const rows = await store.sql.query<{ name: string; hour: Date | string; count: string; weighted: number }>(
      `SELECT name, hour, count, weighted FROM event_counts_hourly WHERE tenant_id = 'roll' ORDER BY name, hour`,
    );
    expect(rows.map((r) => [r.name, new Date(r.hour).toISOString(), Number(r.count), Number(r.weighted)])).toEqual([
      ['a', '2026-01-05T10:00:00.000Z', 2, 2],
      ['a', '2026-01-05T11:00:00.000Z', 1, 1],
      ['b', '2026-01-05T10:00:00.000Z', 1, 4],
    ]);
  });

  it('request logs: idempotent, with path stats and a mergeable latency histogram', async () => {
    const logs = [3, 40, 40, 700, 90_000].map((ms, i) =>
      requestLog({ tenantId: 'paths', durationMs: ms, status: [200, 201, 404, 500, 302][i] as number }),
    );
    expect(await store.insertRequestLogs(logs)).toHaveLength(5);
    expect(await store.insertRequestLogs(logs)).toEqual([]);
    // On a bound exactly: counted in that bound's bucket (`le`), not the next.
    await store.insertRequestLogs([0.5, 5, 60_000].map((ms) => requestLog({ tenantId: 'paths', durationMs: ms })));
    const [row] = await store.sql.query<Record<string, unknown>>(
      `SELECT * FROM path_stats_hourly WHERE tenant_id = 'paths'`,
    );
    expect(row).toMatchObject({ method: 'GET', route: '/users/:id' });
    expect(Number(row?.count)).toBe(8);
    expect([row?.status_2xx, row?.status_3xx, row?.status_4xx, row?.status_5xx].map(Number)).toEqual([5, 1, 1, 1]);
    expect(Number(row?.duration_min)).toBe(0.5);
    expect(Number(row?.duration_max)).toBe(90_000);
    const buckets = (row?.latency_buckets as (string | number)[]).map(Number);
    expect(buckets).toHaveLength(LATENCY_BUCKETS_MS.length + 1);
    expect(buckets.reduce((a, b) => a + b, 0)).toBe(8);
    // ≤1 ms: 0.5; ≤5 ms: 3, 5; ≤50 ms: 40, 40; ≤1000 ms: 700; ≤60 s: 60 000; > 60 s: 90 000.
    const at = (bound: number) => buckets[LATENCY_BUCKETS_MS.indexOf(bound as never)];
    expect([at(1), at(5), at(50), at(1000), at(60_000), buckets.at(-1)]).toEqual([1, 2, 2, 1, 1, 1]);
  });

  it('path stats equal what SQL computes from the stored detail, through resends and mixed batches', async () => {
    // Seeded, so a failure replays: routes (one unmatched), methods, statuses 1xx–6xx, durations on and
    // between the bucket bounds, over three hours, in shuffled id order.
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)] as T;
    const base = Date.parse('2026-11-23T09:59:00.000Z');
    const durations = [...LATENCY_BUCKETS_MS, 0, 0.25, 3.3, 77.7, 61_000, 1e-9];
    const logs = Array.from({ length: 300 }, (_, i) =>
      requestLog({
        tenantId: 'stats',
        timestamp: isoTime(base + Math.floor(rand() * 3 * 3_600_000)),
        method: pick(['GET', 'POST']),
        route: pick(['/a', '/b/:id', undefined]),
        status: pick([101, 200, 204, 301, 404, 429, 500, 503, 600]),
        durationMs: rand() < 0.5 ? pick(durations) : rand() * 2000,
        requestId: String(i),
      }),
    ).sort(() => rand() - 0.5);
    expect(await store.insertRequestLogs(logs.slice(0, 200))).toHaveLength(200);
    // Half already stored (the usual way takes it), then the rest (direct again).
    expect(await store.insertRequestLogs(logs.slice(100, 250))).toHaveLength(50);
    expect(await store.insertRequestLogs(logs.slice(250))).toHaveLength(50);
    const bounds = `ARRAY[${LATENCY_BUCKETS_MS.join(',')}]::float8[]`;
    const expected = await store.sql.query<Record<string, unknown>>(
      `SELECT method, coalesce(route, '(unmatched)') AS route, date_trunc('hour', ts, 'UTC') AS hour,
         count(*)::int AS count, count(*) FILTER (WHERE status BETWEEN 200 AND 299)::int AS s2,
         count(*) FILTER (WHERE status BETWEEN 300 AND 399)::int AS s3,
         count(*) FILTER (WHERE status BETWEEN 400 AND 499)::int AS s4,
         count(*) FILTER (WHERE status >= 500)::int AS s5, sum(duration_ms) AS sum, min(duration_ms) AS min,
         max(duration_ms) AS max, array_agg(bucket) AS buckets
       FROM (SELECT *, (SELECT count(*) FROM unnest(${bounds}) b WHERE b < duration_ms)::int AS bucket
             FROM request_logs WHERE tenant_id = 'stats') r
       GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
    );
    const actual = await store.sql.query<Record<string, unknown>>(
      `SELECT method, route, hour, count::int AS count, status_2xx::int AS s2, status_3xx::int AS s3,
         status_4xx::int AS s4, status_5xx::int AS s5, duration_sum AS sum, duration_min AS min,
         duration_max AS max, latency_buckets AS buckets
       FROM path_stats_hourly WHERE tenant_id = 'stats' ORDER BY 1, 2, 3`,
    );
    expect(actual.length).toBeGreaterThan(10);
    // The histogram from each row's bucket (the number of bounds below its duration), counted here.
    const histogram = (buckets: unknown[]) => {
      const h = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
      for (const b of buckets) (h[Number(b)] as number)++;
      return h;
    };
    expect(actual.map((r) => ({ ...r, sum: undefined, buckets: (r.buckets as unknown[]).map(Number) }))).toEqual(
      expected.map((r) => ({ ...r, sum: undefined, buckets: histogram(r.buckets as unknown[]) })),
    );
    // The sum only to rounding: float additions in another order.
    actual.forEach((r, i) => expect(Number(r.sum)).toBeCloseTo(Number(expected[i]?.sum), 6));
  });

  it('row-level security: a tenant reads only its own rows and cannot write', async () => {
    await store.insertEvents([...eventRows(3, { tenantId: 'rls-a' }), ...eventRows(5, { tenantId: 'rls-b' })]);
    const seen = await store.asTenant('rls-a', async (sql) => {
      const all = await sql.query<{ tenant_id: string }>(`SELECT tenant_id FROM events WHERE tenant_id LIKE 'rls-%'`);
      const b = await sql.query<{ n: string }>(`SELECT count(*) AS n FROM events WHERE tenant_id = 'rls-b'`);
      return { tenants: new Set(all.map((r) => r.tenant_id)), b: Number(b[0]?.n), rows: all.length };
    });
    expect(seen).toEqual({ tenants: new Set(['rls-a']), b: 0, rows: 3 });
    const row = eventRow({ tenantId: 'rls-a' });
    await expect(
      store.asTenant('rls-a', (sql) =>
        sql.query(
          `INSERT INTO events (id, tenant_id, name, properties, context, ts, received_at)
           VALUES ($1, 'rls-a', 'x', '{}', '{}', now(), now())`,
          [row.id],
        ),
      ),
    ).rejects.toMatchObject({ code: '42501' });
    await expect(
      store.asTenant('rls-a', (sql) => sql.query(`INSERT INTO tenants (id, name) VALUES ('x', 'x')`)),
    ).rejects.toMatchObject({ code: '42501' });
    // Outside asTenant the service view is whole again (the role was local to that transaction).
    const [all] = await store.sql.query<{ n: string }>(`SELECT count(*) AS n FROM events WHERE tenant_id LIKE 'rls-%'`);
    expect(Number(all?.n)).toBe(8);
  });

  it('a bad row fails the statement with the database error code and stores nothing of it', async () => {
    const before = await store.totals();
    await expect(store.insertEvents([eventRow(), eventRow({ id: 'not-a-uuid' })])).rejects.toMatchObject({
      code: '22P02',
    });
    await expect(store.insertEvents([eventRow({ properties: { text: 'nul \u0000 inside' } })])).rejects.toMatchObject({
      code: expect.stringMatching(/^22/),
    });
    expect(await store.totals()).toEqual(before);
  });

  it.runIf(isPostgres(engine))('concurrent overlapping batches store each event once', async () => {
    const before = await store.totals();
    const pool = eventRows(1000);
    const batches = Array.from({ length: 8 }, (_, i) => pool.slice(i * 100, i * 100 + 300));
    const results = await Promise.all(batches.map((b) => store.insertEvents(b)));
    expect(new Set(results.flat()).size).toBe(results.flat().length);
    expect((await store.totals()).events - before.events).toBe(1000);
  });
});
