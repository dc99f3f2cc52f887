/**
 * The routes kind's arithmetic, the same on every engine: latency histograms over the fixed buckets of
 * LATENCY_BUCKETS_MS (bucket i counts durations ≤ bound i and above bound i − 1, the last bucket the
 * rest), the percentiles read from them, and the answer's columns, order and rows. An engine's SQL only
 * counts per group (a (method, route) or a time bucket) what RouteStats holds; everything from there on
 * is here, so two engines given the same rows give the same answer, to the digit.
 */
import { LATENCY_BUCKETS_MS } from '../analytics-store.js';
import type { Cell, Column } from './result.js';
import type { RoutesQuery, StatusClass } from './model.js';

const BOUNDS: readonly number[] = LATENCY_BUCKETS_MS;

/** Buckets per histogram: one per bound, and the open one above the last bound. */
export const HISTOGRAM_BUCKETS = BOUNDS.length + 1;

/** How a request no route matched is listed and filtered (the rollup of the relational store keeps it so). */
export const UNMATCHED_ROUTE = '(unmatched)';

/** Statuses of a class, inclusive. */
export const STATUS_CLASS_RANGE: Readonly<Record<StatusClass, readonly [number, number]>> = {
  '1xx': [100, 199],
  '2xx': [200, 299],
  '3xx': [300, 399],
  '4xx': [400, 499],
  '5xx': [500, 599],
};

/** What an engine aggregates per group. */
export interface RouteStats {
  count: number;
  /** Statuses 400–499. */
  errors4xx: number;
  /** Statuses from 500 up (the rollup files every status ≥ 500 as 5xx; detail must agree). */
  errors5xx: number;
  /** Sum of durations, ms (for the average). */
  sum: number;
  min: number;
  max: number;
  /** Counts per histogram bucket, HISTOGRAM_BUCKETS of them. */
  buckets: number[];
}

const indexes = Array.from({ length: HISTOGRAM_BUCKETS }, (_, i) => i);

/**
 * A row of an engine's aggregate as RouteStats. Every engine names its columns alike: n, e4, e5, total,
 * lo, hi and h0…h15 (drivers give bigint and numeric as strings, hence Number()).
 */
export function routeStats(row: Record<string, unknown>): RouteStats {
  return {
    count: Number(row.n),
    errors4xx: Number(row.e4),
    errors5xx: Number(row.e5),
    sum: Number(row.total),
    min: Number(row.lo),
    max: Number(row.hi),
    buckets: indexes.map((i) => Number(row[`h${i}`])),
  };
}

/**
 * The q-quantile of a histogram, as Prometheus' histogram_quantile: the bucket where the cumulative count
 * reaches q·count, and a linear interpolation inside it. The bucket's bounds are narrowed to the smallest
 * and largest duration observed: the first bucket starts at the minimum (instead of 0), the open last
 * bucket ends at the maximum, and a route that always takes 3 ms never reports more. The ⌈q·count⌉-th
 * smallest duration lies in the same bucket, so the error is at most the narrowed bucket's width.
 * Null for an empty histogram.
 */
export function histogramQuantile(stats: RouteStats, q: number): number | null {
  if (stats.count === 0) return null;
  const rank = q * stats.count;
  let below = 0;
  for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
    const n = stats.buckets[i] ?? 0;
    if (n > 0 && below + n >= rank) {
      const lower = i === 0 ? stats.min : Math.max(BOUNDS[i - 1] as number, stats.min);
      const upper = i < BOUNDS.length ? Math.min(BOUNDS[i] as number, stats.max) : stats.max;
      return lower + (upper - lower) * ((rank - below) / n);
    }
    below += n;
  }
  // Only reached when the buckets hold fewer rows than `count` says, which no engine stores.
  return stats.max;
}

export const ROUTES_TABLE_COLUMNS: readonly Column[] = [
  { name: 'method', type: 'string' },
  { name: 'route', type: 'string' },
  { name: 'count', type: 'number' },
  { name: 'errors_4xx', type: 'number' },
  { name: 'errors_5xx', type: 'number' },
  { name: 'error_rate', type: 'number' },
  { name: 'avg_ms', type: 'number' },
  { name: 'max_ms', type: 'number' },
  { name: 'p50_ms', type: 'number' },
  { name: 'p95_ms', type: 'number' },
  { name: 'p99_ms', type: 'number' },
];

export const ROUTES_SERIES_COLUMNS: readonly Column[] = [
  { name: 'time', type: 'time' },
  { name: 'count', type: 'number' },
  { name: 'errors_4xx', type: 'number' },
  { name: 'errors_5xx', type: 'number' },
  { name: 'error_rate', type: 'number' },
  { name: 'p50_ms', type: 'number' },
  { name: 'p95_ms', type: 'number' },
  { name: 'p99_ms', type: 'number' },
];

const errorRate = (s: RouteStats): number | null => (s.count === 0 ? null : (s.errors4xx + s.errors5xx) / s.count);

const percentiles = (s: RouteStats): Cell[] => [
  histogramQuantile(s, 0.5),
  histogramQuantile(s, 0.95),
  histogramQuantile(s, 0.99),
];

/**
 * Code-point order (Postgres' COLLATE "C", ClickHouse's byte order of UTF-8), for ties: JS's `<`
 * compares UTF-16 units instead, which differs above the BMP.
 */
export function compareCodePoints(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = (x[i] as string).codePointAt(0)! - (y[i] as string).codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function sortKey(sort: RoutesQuery['sort'], s: RouteStats): number {
  switch (sort) {
    case 'count':
      return s.count;
    case 'errors':
      return s.errors4xx + s.errors5xx;
    case 'error_rate':
      return errorRate(s) ?? 0;
    case 'p50':
      return histogramQuantile(s, 0.5) ?? 0;
    case 'p95':
      return histogramQuantile(s, 0.95) ?? 0;
    case 'p99':
      return histogramQuantile(s, 0.99) ?? 0;
  }
}

/** One (method, route) group of a routes table. */
export interface RouteGroup {
  method: string;
  route: string;
  stats: RouteStats;
}

/**
 * The routes table: groups ranked by the query's sort (descending; ties by method, then route, in
 * code-point order), the first `limit` of them as rows. Ranked here, not in SQL: the percentiles the
 * sorts use come from the histograms, and a tenant serves few enough routes to rank in memory.
 */
export function routesTable(
  sort: RoutesQuery['sort'],
  groups: readonly RouteGroup[],
  limit: number,
): { columns: Column[]; rows: Cell[][]; truncated: boolean } {
  const ranked = groups.map((g) => ({ ...g, key: sortKey(sort, g.stats) }));
  ranked.sort((a, b) => b.key - a.key || compareCodePoints(a.method, b.method) || compareCodePoints(a.route, b.route));
  const rows = ranked
    .slice(0, limit)
    .map(({ method, route, stats: s }): Cell[] => [
      method,
      route,
      s.count,
      s.errors4xx,
      s.errors5xx,
      errorRate(s),
      s.sum / s.count,
      s.max,
      ...percentiles(s),
    ]);
  return { columns: [...ROUTES_TABLE_COLUMNS], rows, truncated: ranked.length > limit };
}

/**
 * A routes series: one row per bucket start (epoch ms, as bucketsBetween gives them; at most `maxRows`),
 * from the stats found per bucket's ISO start. A bucket without requests has zero counts and no rate or
 * percentile (there is nothing to divide).
 */
export function routesSeries(
  starts: readonly number[],
  byTime: ReadonlyMap<string, RouteStats>,
  maxRows: number,
): { columns: Column[]; rows: Cell[][]; truncated: boolean } {
  const shown = starts.slice(0, maxRows);
  const rows = shown.map((start): Cell[] => {
    const time = new Date(start).toISOString();
    const s = byTime.get(time);
    if (!s) return [time, 0, 0, 0, null, null, null, null];
    return [time, s.count, s.errors4xx, s.errors5xx, errorRate(s), ...percentiles(s)];
  });
  return { columns: [...ROUTES_SERIES_COLUMNS], rows, truncated: starts.length > shown.length };
}
