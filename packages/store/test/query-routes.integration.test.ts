/**
 * The routes kind on every engine, against the brute-force evaluator (support/oracle/routes.ts) over
 * generated request logs: random tables and series from the hourly rollup and from detail, the two
 * sources agreeing on the same rows, percentiles within their stated bound of the exact percentile,
 * hostile route names as data, tenant isolation, and explain.
 */
import { bucketsBetween, HTTP_METHODS, parseQuery, type RoutesQuery, resolveRange, uuidv7 } from '@tally/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RequestLogRow, Store } from '../src/index.js';
import type { QueryResult } from '../src/query/types.js';
import { HOSTILE, type LogData, loadRequestLogs, pick, ROUTES, type Rand, seeded } from './support/query-data.js';
import {
  bucketOf,
  narrowedBucket,
  nearestRank,
  routeGroups,
  routesSeriesOracle,
  routesTableOracle,
  UNMATCHED,
} from './support/oracle/routes.js';
import { engines, openStore } from './support/stores.js';

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
 * durations are added in another order by the rollup and by SQL's sum()). */
function expectRows(actual: unknown[][], expected: unknown[][]): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((row, i) => {
    const want = expected[i] as unknown[];
    expect(row.length).toBe(want.length);
    row.forEach((cell, j) => {
      const w = want[j];
      if (typeof w === 'number' && !Number.isInteger(w)) {
        expect(typeof cell, `row ${i} column ${j}`).toBe('number');
        expect(Math.abs((cell as number) - w), `row ${i} column ${j}: ${String(cell)} vs ${w}`).toBeLessThanOrEqual(
          1e-9 * Math.max(1, Math.abs(w)),
        );
      } else {
        expect(cell, `row ${i} column ${j}`).toEqual(w);
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

describe.each(engines)('routes on %s', (engine) => {
  let store: Store;
  let dispose: () => Promise<void>;
  let data: LogData;
  let rows: RequestLogRow[];

  const frameOf = (q: RoutesQuery, tenant = data.tenant) => ({ tenant, ...resolveRange(q.range, q.tz, data.to) });
  const run = (q: RoutesQuery, tenant = data.tenant): Promise<QueryResult> => store.query(tenant, q, { now: data.to });

  beforeAll(async () => {
    ({ store, dispose } = await openStore(engine));
    data = await loadRequestLogs(store, { seed: 16, logs: 3000 });
    // A route whose every answer is 2xx: its statusClass '2xx' answer (detail) covers the same rows as
    // its answer without one (rollup).
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
    await store.insertRequestLogs([...steady, ...extra]);
    rows = [...data.stored, ...steady, ...extra];
  }, 120_000);
  afterAll(() => dispose?.());

  it('answers a table of routes from the rollup as the oracle does', async () => {
    const rand = seeded(1);
    for (let i = 0; i < 25; i++) {
      const q = parse({
        range: randomRange(rand, data, true),
        sort: pick(rand, ['count', 'errors', 'error_rate', 'p50', 'p95', 'p99']),
        limit: 1 + Math.floor(rand() * 12),
        ...randomFilters(rand),
      });
      const result = await run(q);
      expect(result.meta.source, JSON.stringify(q)).toBe('rollup');
      expect(result.columns.map((c) => c.name)).toEqual(TABLE_COLUMNS);
      const expected = routesTableOracle(rows, q, frameOf(q));
      expectRows(result.rows, expected);
      expect(result.meta.truncated).toBe(routeGroups(rows, q, frameOf(q)).length > q.limit);
    }
  });

  it('answers a table from detail, or from the rollup and the cut hours of detail, as the oracle does', async () => {
    const rand = seeded(2);
    for (let i = 0; i < 25; i++) {
      const aligned = rand() < 0.4;
      const statusClass = aligned || rand() < 0.3 ? pick(rand, ['1xx', '2xx', '3xx', '4xx', '5xx']) : undefined;
      const q = parse({
        range: randomRange(rand, data, aligned),
        sort: pick(rand, ['count', 'errors', 'error_rate', 'p50', 'p95', 'p99']),
        limit: 1 + Math.floor(rand() * 12),
        ...(statusClass ? { statusClass } : {}),
        ...randomFilters(rand),
      });
      const result = await run(q);
      expect(result.meta.source, JSON.stringify(q)).toBe('detail');
      expectRows(result.rows, routesTableOracle(rows, q, frameOf(q)));
    }
  });

  it('answers a series over time from the rollup in whole-hour zones and from detail otherwise', async () => {
    const rand = seeded(3);
    const zones = ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Australia/Adelaide'];
    for (let i = 0; i < 20; i++) {
      const tz = pick(rand, zones);
      const interval = pick(rand, ['hour', 'day', 'week'] as const);
      const days = interval === 'hour' ? 1 + Math.floor(rand() * 4) : 3 + Math.floor(rand() * 11);
      const start = new Date(data.to - (days + Math.floor(rand() * 3)) * 86_400_000).toISOString().slice(0, 10);
      const end = new Date(Date.parse(start) + days * 86_400_000).toISOString().slice(0, 10);
      const q = parse({ range: { from: start, to: end }, tz, interval, ...randomFilters(rand) });
      const frame = frameOf(q);
      const result = await run(q);
      const starts = bucketsBetween(frame.from, frame.to, interval, tz);
      const wholeHours = frame.from % HOUR === 0 && frame.to % HOUR === 0 && starts.every((s) => s % HOUR === 0);
      expect(result.meta.source, `${tz} ${interval}`).toBe(wholeHours ? 'rollup' : 'detail');
      expect(result.columns.map((c) => c.name)).toEqual(SERIES_COLUMNS);
      expectRows(result.rows, routesSeriesOracle(rows, q, frame, starts));
    }
  });

  it('gives the same answer from the rollup and from detail for the same rows', async () => {
    const rand = seeded(4);
    for (let i = 0; i < 8; i++) {
      const range = randomRange(rand, data, true);
      const steady = { route: '/steady', method: 'GET' };
      const rollup = await run(parse({ range, ...steady }));
      const detail = await run(parse({ range, ...steady, statusClass: '2xx' }));
      expect([rollup.meta.source, detail.meta.source]).toEqual(['rollup', 'detail']);
      expectRows(detail.rows, rollup.rows as unknown[][]);
      const interval = pick(rand, ['hour', 'day'] as const);
      const series = await run(parse({ range, ...steady, interval }));
      const seriesDetail = await run(parse({ range, ...steady, interval, statusClass: '2xx' }));
      expect([series.meta.source, seriesDetail.meta.source]).toEqual(['rollup', 'detail']);
      expectRows(seriesDetail.rows, series.rows as unknown[][]);
    }
  });

  it('gives the same answer from the rollup alone and with the cut hours of detail', async () => {
    const rand = seeded(14);
    const stamps = new Set(rows.map((r) => Date.parse(r.timestamp)));
    for (let i = 0; i < 12; i++) {
      const range = randomRange(rand, data, true);
      const to = Date.parse(range.to);
      // One millisecond more with no log at that instant: the same rows, but not whole hours.
      if (stamps.has(to)) continue;
      const sort = pick(rand, ['count', 'p50', 'p95', 'p99'] as const);
      const filters = randomFilters(rand);
      const rollup = await run(parse({ range, sort, limit: 50, ...filters }));
      const detail = await run(
        parse({ range: { from: range.from, to: new Date(to + 1).toISOString() }, sort, limit: 50, ...filters }),
      );
      expect([rollup.meta.source, detail.meta.source]).toEqual(['rollup', 'detail']);
      expectRows(detail.rows, rollup.rows as unknown[][]);

      const interval = pick(rand, ['hour', 'day'] as const);
      const series = await run(parse({ range, interval, ...filters }));
      const seriesDetail = await run(
        parse({ range: { from: range.from, to: new Date(to + 1).toISOString() }, interval, ...filters }),
      );
      expect([series.meta.source, seriesDetail.meta.source]).toEqual(['rollup', 'detail']);
      // The detail range's last millisecond may open one more bucket, empty.
      const extra = seriesDetail.rows.slice(series.rows.length);
      expect(extra.every((r) => r[1] === 0)).toBe(true);
      expectRows(seriesDetail.rows.slice(0, series.rows.length), series.rows as unknown[][]);
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
        for (const [q, column] of [
          [0.5, 8],
          [0.95, 9],
          [0.99, 10],
        ] as const) {
          const exact = nearestRank(durations, q);
          const [lower, upper] = narrowedBucket(bucketOf(exact), min, max);
          const reported = row[column] as number;
          // The stated bound: the reported value and the exact percentile share a bucket, so they are at
          // most its width (narrowed to the observed min and max) apart.
          expect(reported, `${g.method} ${g.route} p${q * 100}`).toBeGreaterThanOrEqual(lower - 1e-9);
          expect(reported, `${g.method} ${g.route} p${q * 100}`).toBeLessThanOrEqual(upper + 1e-9);
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
        expectRows(result.rows, expected);
        if (!q.interval) expect(result.rows.map((r) => r[1])).toEqual([route]);
      }
    }
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
    const series = await run(parse({ range, interval: 'day' }), 'nobody');
    expect(series.rows.every((r) => r[1] === 0 && r[4] === null && r[6] === null)).toBe(true);
  });

  it('explains its source', async () => {
    const range = { from: '2026-03-20T00:00:00Z', to: '2026-03-21T00:00:00Z' };
    const explained = async (input: Record<string, unknown>) => {
      const r = await run(parse({ ...input, explain: true }));
      expect(r.meta.explain?.source).toBe(r.meta.source);
      return r.meta.explain!;
    };
    expect(await explained({ range })).toEqual({ source: 'rollup', reason: expect.stringMatching(/hourly/) });
    expect(await explained({ range, statusClass: '5xx' })).toEqual({
      source: 'detail',
      reason: expect.stringMatching(/status class/),
    });
    expect(await explained({ range: { from: range.from, to: '2026-03-20T12:30:00Z' } })).toEqual({
      source: 'detail',
      reason: expect.stringMatching(/hourly latency histograms.*partial hours .*detail rows/),
    });
    expect(await explained({ range: { from: '2026-03-20', to: '2026-03-21' }, tz: 'Asia/Kolkata' })).toEqual({
      source: 'detail',
      reason: expect.stringMatching(/partial hours/),
    });
    expect(await explained({ range: { from: '2026-03-20T10:10:00Z', to: '2026-03-20T10:50:00Z' } })).toEqual({
      source: 'detail',
      reason: expect.stringMatching(/no whole UTC hour/),
    });
    expect(
      await explained({ range: { from: '2026-03-20', to: '2026-03-21' }, tz: 'Asia/Kolkata', interval: 'hour' }),
    ).toEqual({ source: 'detail', reason: expect.stringMatching(/do not start on whole UTC hours/) });
    expect(await explained({ range, interval: 'hour', tz: 'Europe/Berlin' })).toEqual({
      source: 'rollup',
      reason: expect.stringMatching(/Europe\/Berlin/),
    });
    expect((await run(parse({ range }))).meta.explain).toBeUndefined();
  });
});
