/**
 * The routes kind on ClickHouse (Debian's 18.16 server and chDB's current engine), against the
 * brute-force evaluator the Postgres engine is held to (store/test/support/oracle/routes.ts) over the
 * same generated request logs: random tables and series, hour-aligned or not, in zones with whole- and
 * half-hour offsets; percentiles within their stated bound of the exact percentile (and equal to the
 * oracle's histogram estimate, as Postgres' are); hostile route names as data; tenant isolation; explain.
 * Random queries are seeded: a failure names its query.
 */
import {
  bucketsBetween,
  HTTP_METHODS,
  parseQuery,
  type QueryResult,
  type RoutesQuery,
  resolveRange,
  uuidv7,
} from '@tally/core';
import type { RequestLogRow } from '@tally/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouseStore } from '../src/store.js';
import {
  HOSTILE,
  type LogData,
  loadRequestLogs,
  pick,
  ROUTES,
  type Rand,
  seeded,
} from '../../store/test/support/query-data.js';
import {
  bucketOf,
  narrowedBucket,
  nearestRank,
  routeGroups,
  routesSeriesOracle,
  routesTableOracle,
  UNMATCHED,
} from '../../store/test/support/oracle/routes.js';
import { engines, openStore } from './support/engines.js';

const HOUR = 3_600_000;
const TABLE_COLUMNS = [
  'method',
  'route',
  'count',
  'errors_4xx',
  'errors_5xx',
  'error_rate',
  'avg_ms',
  'max_ms',
  'p50_ms',
  'p95_ms',
  'p99_ms',
];
const SERIES_COLUMNS = ['time', 'count', 'errors_4xx', 'errors_5xx', 'error_rate', 'p50_ms', 'p95_ms', 'p99_ms'];

function parse(input: Record<string, unknown>): RoutesQuery {
  const parsed = parseQuery({ kind: 'routes', ...input });
  if (!parsed.ok) throw parsed.error;
  return parsed.query as RoutesQuery;
}

/** Engine rows against oracle rows: integers and strings exactly, fractions to float rounding (sums of
 * durations are added in another order by ClickHouse's sum()). */
function expectRows(actual: unknown[][], expected: unknown[][], what = ''): void {
  expect(actual.length, what).toBe(expected.length);
  actual.forEach((row, i) => {
    const want = expected[i] as unknown[];
    expect(row.length).toBe(want.length);
    row.forEach((cell, j) => {
      const w = want[j];
      if (typeof w === 'number' && !Number.isInteger(w)) {
        expect(typeof cell, `${what} row ${i} column ${j}`).toBe('number');
        expect(
          Math.abs((cell as number) - w),
          `${what} row ${i} column ${j}: ${String(cell)} vs ${w}`,
        ).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(w)));
      } else {
        expect(cell, `${what} row ${i} column ${j}`).toEqual(w);
      }
    });
  });
}

/** An hour-aligned range inside the data, or one whose ends fall inside hours (sometimes within one). */
function randomRange(rand: Rand, data: LogData, aligned: boolean): { from: string; to: string } {
  const hours = (data.to - data.from) / HOUR;
  if (!aligned && rand() < 0.25) {
    const start = data.from + Math.floor(rand() * (hours - 1)) * HOUR + Math.floor(rand() * HOUR);
    const end = Math.min(
      Math.ceil(start / HOUR) * HOUR + Math.floor(rand() * HOUR),
      start + 1 + Math.floor(rand() * HOUR),
    );
    return { from: new Date(start).toISOString(), to: new Date(Math.max(start + 1, end)).toISOString() };
  }
  const start = Math.floor(rand() * (hours - 1));
  const length = 1 + Math.floor(rand() * (hours - start));
  let from = data.from + start * HOUR;
  let to = Math.min(data.to, from + length * HOUR);
  if (!aligned) {
    from += 1 + Math.floor(rand() * (HOUR - 2));
    to = Math.max(from + 1, to - 1 - Math.floor(rand() * (HOUR - 2)));
  }
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString() };
}

function randomFilters(rand: Rand): Record<string, unknown> {
  const f: Record<string, unknown> = {};
  const r = rand();
  if (r < 0.25) f.route = pick(rand, ROUTES)[1];
  else if (r < 0.3) f.route = UNMATCHED;
  if (rand() < 0.25) f.method = pick(rand, HTTP_METHODS);
  return f;
}

describe.each(engines)('routes on ClickHouse (%s)', (engine) => {
  let store: ClickHouseStore;
  let cleanup: () => Promise<void>;
  let data: LogData;
  let rows: RequestLogRow[];

  const frameOf = (q: RoutesQuery, tenant = data.tenant) => ({ tenant, ...resolveRange(q.range, q.tz, data.to) });
  const run = (q: RoutesQuery, tenant = data.tenant): Promise<QueryResult> => store.query(tenant, q, { now: data.to });

  beforeAll(async () => {
    ({ store, cleanup } = await openStore(engine));
    data = await loadRequestLogs(store, { seed: 16, logs: 3000 });
    // A route whose every answer is 2xx: its statusClass '2xx' answer covers the same rows as its answer
    // without one.
    const rand = seeded(99);
    const steady: RequestLogRow[] = Array.from({ length: 400 }, () => {
      const ts = data.from + Math.floor(rand() * (data.to - data.from));
      return {
        id: uuidv7(ts),
        tenantId: data.tenant,
        method: 'GET',
        route: '/steady',
        url: '/steady',
        status: pick(rand, [200, 201, 204]),
        durationMs: Math.round(Math.exp(rand() * 11 - 2) * 1000) / 1000,
        timestamp: new Date(ts).toISOString(),
        receivedAt: new Date(ts + 5).toISOString(),
      };
    });
    // Durations on every bucket bound and just beside it: a bound belongs to its own bucket.
    const edges: RequestLogRow[] = [0, 1, 1.000001, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000]
      .flatMap((d) => [d, d + 1e-6, 30_000, 60_000, 60_000.5, 90_000])
      .map((durationMs, i) => {
        const ts = data.from + 3 * HOUR + i * 1000;
        return {
          id: uuidv7(ts),
          tenantId: data.tenant,
          method: 'PUT',
          route: '/edges',
          url: '/edges',
          status: [200, 404, 500, 503, 600][i % 5] as number,
          durationMs,
          timestamp: new Date(ts).toISOString(),
          receivedAt: new Date(ts + 5).toISOString(),
        };
      });
    // Routes, URLs and users that look like SQL: stored as data, listed and filtered as data.
    const extra: RequestLogRow[] = HOSTILE.map((s, i) => {
      const ts = data.from + (i + 1) * 7 * HOUR + 123;
      return {
        id: uuidv7(ts),
        tenantId: data.tenant,
        method: 'POST',
        route: s,
        url: `/x/${s}`,
        status: 400 + i,
        durationMs: 3 * (i + 1),
        userId: s,
        timestamp: new Date(ts).toISOString(),
        receivedAt: new Date(ts + 5).toISOString(),
      };
    });
    // A template that reads '(unmatched)' is listed with the requests no route matched, as on Postgres.
    const named: RequestLogRow[] = ROUTES.map(([method], i) => {
      const ts = data.from + (i + 2) * 5 * HOUR;
      return {
        id: uuidv7(ts),
        tenantId: data.tenant,
        method,
        route: UNMATCHED,
        url: '/nowhere',
        status: 404,
        durationMs: 0.75,
        timestamp: new Date(ts).toISOString(),
        receivedAt: new Date(ts + 5).toISOString(),
      };
    });
    await store.insertRequestLogs([...steady, ...edges, ...extra, ...named]);
    rows = [...data.stored, ...steady, ...edges, ...extra, ...named];
  }, 180_000);
  afterAll(async () => cleanup?.());

  it('answers a table of routes as the oracle does, for random ranges, sorts, limits and filters', async () => {
    const rand = seeded(1);
    for (let i = 0; i < 40; i++) {
      const statusClass = rand() < 0.3 ? pick(rand, ['1xx', '2xx', '3xx', '4xx', '5xx']) : undefined;
      const q = parse({
        range: randomRange(rand, data, rand() < 0.5),
        sort: pick(rand, ['count', 'errors', 'error_rate', 'p50', 'p95', 'p99']),
        limit: 1 + Math.floor(rand() * 12),
        ...(statusClass ? { statusClass } : {}),
        ...randomFilters(rand),
      });
      const result = await run(q);
      expect(result.meta.source).toBe('detail');
      expect(result.columns.map((c) => c.name)).toEqual(TABLE_COLUMNS);
      expectRows(result.rows, routesTableOracle(rows, q, frameOf(q)), `seed 1 query ${i}: ${JSON.stringify(q)}`);
      expect(result.meta.truncated).toBe(routeGroups(rows, q, frameOf(q)).length > q.limit);
    }
  });

  it('answers a series over time as the oracle does, in zones with whole- and half-hour offsets', async () => {
    const rand = seeded(3);
    // Whole-, half- and 45-minute offsets, and DST changes of 30 minutes (Lord Howe) and at 2:45 (Chatham).
    const zones = [
      'UTC',
      'Europe/Berlin',
      'America/New_York',
      'Asia/Kolkata',
      'Australia/Adelaide',
      'Australia/Lord_Howe',
      'Pacific/Chatham',
    ];
    for (let i = 0; i < 30; i++) {
      const tz = pick(rand, zones);
      const interval = pick(rand, ['hour', 'day', 'week'] as const);
      const days = interval === 'hour' ? 1 + Math.floor(rand() * 4) : 3 + Math.floor(rand() * 11);
      const start = new Date(data.to - (days + Math.floor(rand() * 3)) * 86_400_000).toISOString().slice(0, 10);
      const end = new Date(Date.parse(start) + days * 86_400_000).toISOString().slice(0, 10);
      const statusClass = rand() < 0.2 ? { statusClass: pick(rand, ['2xx', '4xx', '5xx']) } : {};
      const q = parse({ range: { from: start, to: end }, tz, interval, ...statusClass, ...randomFilters(rand) });
      const frame = frameOf(q);
      const result = await run(q);
      expect(result.meta.source).toBe('detail');
      expect(result.columns.map((c) => c.name)).toEqual(SERIES_COLUMNS);
      const starts = bucketsBetween(frame.from, frame.to, interval, tz);
      expectRows(result.rows, routesSeriesOracle(rows, q, frame, starts), `seed 3 query ${i}: ${JSON.stringify(q)}`);
    }
  });

  it('buckets a series by the zone’s own clock across its DST changes (30 minutes at Lord Howe, 2:45 at Chatham)', async () => {
    // Both zones leave daylight time on 2026-04-05: logs every 7 minutes over the two days around it.
    const tenant = `${data.tenant}_dst`;
    const start = Date.parse('2026-04-04T00:00:00Z');
    const dst: RequestLogRow[] = Array.from({ length: (48 * 60) / 7 }, (_, i) => {
      const ts = start + i * 7 * 60_000 + 13;
      return {
        id: uuidv7(ts),
        tenantId: tenant,
        method: 'GET',
        route: '/dst',
        url: '/dst',
        status: i % 9 === 0 ? 500 : 200,
        durationMs: 1 + (i % 40) * 3.5,
        timestamp: new Date(ts).toISOString(),
        receivedAt: new Date(ts + 5).toISOString(),
      };
    });
    await store.insertRequestLogs(dst);
    for (const tz of ['Australia/Lord_Howe', 'Pacific/Chatham', 'Asia/Kathmandu']) {
      for (const interval of ['hour', 'day'] as const) {
        const q = parse({ range: { from: '2026-04-04', to: '2026-04-06' }, tz, interval });
        const frame = { tenant, ...resolveRange(q.range, q.tz, data.to) };
        const starts = bucketsBetween(frame.from, frame.to, interval, tz);
        const result = await store.query(tenant, q, { now: data.to });
        expectRows(result.rows, routesSeriesOracle(dst, q, frame, starts), `${tz} ${interval}`);
        expect(result.rows.reduce((n, r) => n + (r[1] as number), 0)).toBeGreaterThan(0);
      }
    }
  });

  it('files a duration equal to a bucket bound in that bucket, and every status from 500 up as 5xx', async () => {
    const range = { from: new Date(data.from).toISOString(), to: new Date(data.to).toISOString() };
    for (const sort of ['p50', 'p95', 'p99', 'errors'] as const) {
      const q = parse({ range, route: '/edges', sort });
      expectRows((await run(q)).rows, routesTableOracle(rows, q, frameOf(q)), sort);
    }
    const series = parse({ range, route: '/edges', interval: 'hour' });
    const frame = frameOf(series);
    expectRows(
      (await run(series)).rows,
      routesSeriesOracle(rows, series, frame, bucketsBetween(frame.from, frame.to, 'hour', 'UTC')),
    );
  });

  it('gives the same answer with a status class that holds every row as without one', async () => {
    const rand = seeded(4);
    for (let i = 0; i < 8; i++) {
      const range = randomRange(rand, data, rand() < 0.5);
      const steady = { route: '/steady', method: 'GET' };
      expectRows(
        (await run(parse({ range, ...steady, statusClass: '2xx' }))).rows,
        (await run(parse({ range, ...steady }))).rows,
      );
      const interval = pick(rand, ['hour', 'day'] as const);
      expectRows(
        (await run(parse({ range, ...steady, interval, statusClass: '2xx' }))).rows,
        (await run(parse({ range, ...steady, interval }))).rows,
      );
    }
  });

  it('reports each percentile inside the histogram bucket of the exact (nearest-rank) percentile', async () => {
    const rand = seeded(5);
    for (let i = 0; i < 8; i++) {
      const q = parse({ range: randomRange(rand, data, rand() < 0.5), limit: 100 });
      const result = await run(q);
      const groups = routeGroups(rows, q, frameOf(q));
      expect(result.rows.length).toBe(groups.length);
      for (const [r, row] of result.rows.entries()) {
        const g = groups[r]!;
        expect([row[0], row[1]]).toEqual([g.method, g.route]);
        const durations = g.logs.map((l) => l.durationMs);
        const min = Math.min(...durations);
        const max = Math.max(...durations);
        for (const [quantile, column] of [
          [0.5, 8],
          [0.95, 9],
          [0.99, 10],
        ] as const) {
          const exact = nearestRank(durations, quantile);
          const [lower, upper] = narrowedBucket(bucketOf(exact), min, max);
          const reported = row[column] as number;
          // The stated bound: the reported value and the exact percentile share a bucket, so they are at
          // most its width (narrowed to the observed min and max) apart.
          expect(reported, `${g.method} ${g.route} p${quantile * 100}`).toBeGreaterThanOrEqual(lower - 1e-9);
          expect(reported, `${g.method} ${g.route} p${quantile * 100}`).toBeLessThanOrEqual(upper + 1e-9);
          expect(Math.abs(reported - exact)).toBeLessThanOrEqual(upper - lower + 1e-9);
        }
      }
    }
  });

  it('treats hostile route names as data', async () => {
    const range = { from: new Date(data.from).toISOString(), to: new Date(data.to).toISOString() };
    for (const route of HOSTILE) {
      for (const extra of [{}, { statusClass: '4xx' }, { interval: 'day' }]) {
        const q = parse({ range, route, ...extra });
        const result = await run(q);
        const frame = frameOf(q);
        const expected = q.interval
          ? routesSeriesOracle(rows, q, frame, bucketsBetween(frame.from, frame.to, 'day', 'UTC'))
          : routesTableOracle(rows, q, frame);
        expectRows(result.rows, expected, route);
        if (!q.interval) expect(result.rows.map((r) => r[1])).toEqual([route]);
      }
    }
    // The table is still there and whole.
    const all = parse({ range, limit: 100 });
    expectRows((await run(all)).rows, routesTableOracle(rows, all, frameOf(all)));
  });

  it("never counts another tenant's requests", async () => {
    const range = { from: new Date(data.from).toISOString(), to: new Date(data.to).toISOString() };
    const q = parse({ range, limit: 100 });
    const other = await run(q, data.otherTenant);
    expectRows(other.rows, routesTableOracle(rows, q, frameOf(q, data.otherTenant)));
    const mine = await run(q);
    const total = (r: QueryResult) => r.rows.reduce((s, row) => s + (row[2] as number), 0);
    expect(total(mine)).toBe(rows.filter((r) => r.tenantId === data.tenant).length);
    expect(total(other)).toBe(rows.filter((r) => r.tenantId === data.otherTenant).length);
    expect((await run(q, 'nobody')).rows).toEqual([]);
    // A tenant named like an injection is a tenant without rows.
    expect((await run(q, HOSTILE[0] as string)).rows).toEqual([]);
    const series = await run(parse({ range, interval: 'day' }), 'nobody');
    expect(series.rows.length).toBeGreaterThan(0);
    expect(series.rows.every((r) => r[1] === 0 && r[4] === null && r[6] === null)).toBe(true);
  });

  it('explains its source: the detail rows, always', async () => {
    const range = { from: '2026-03-20T00:00:00Z', to: '2026-03-21T00:00:00Z' };
    for (const extra of [{}, { statusClass: '5xx' }, { interval: 'hour', tz: 'Asia/Kolkata' }]) {
      const r = await run(parse({ range, ...extra, explain: true }));
      expect(r.meta.explain).toEqual({ source: 'detail', reason: expect.stringMatching(/detail rows/) });
    }
    expect((await run(parse({ range }))).meta.explain).toBeUndefined();
  });
});
