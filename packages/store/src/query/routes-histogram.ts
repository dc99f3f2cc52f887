/**
 * The latency histograms of the routes kind: the same fixed buckets path_stats_hourly keeps
 * (LATENCY_BUCKETS_MS: bucket i counts durations ≤ bound i, the last bucket the rest), summed over hours
 * from the rollup or counted over detail rows, and the percentiles read from them. Both sources end in
 * the same `RouteStats` and the same `histogramQuantile`, so for the same rows they answer identically.
 */
import { LATENCY_BUCKETS_MS } from '../rows.js';

const BOUNDS: readonly number[] = LATENCY_BUCKETS_MS;
/** Buckets per histogram: one per bound, and the open one above the last bound. */
export const HISTOGRAM_BUCKETS = BOUNDS.length + 1;

/** What both sources aggregate per group: a (method, route) or a time bucket. */
export interface RouteStats {
  count: number;
  errors4xx: number;
  errors5xx: number;
  /** Sum of durations, ms (for the average). */
  sum: number;
  min: number;
  max: number;
  /** Counts per histogram bucket, HISTOGRAM_BUCKETS of them. */
  buckets: number[];
}

const indexes = Array.from({ length: HISTOGRAM_BUCKETS }, (_, i) => i);

// The 1-based bucket of a detail row, computed as the writer files it (store.ts): width_bucket() over
// the negated bounds in ascending order counts the bounds ≥ the duration, and the bucket is 1 + the
// number of bounds below it, so a duration equal to a bound lands in that bound's bucket.
const NEGATED_BOUNDS = `ARRAY[${[...BOUNDS]
  .reverse()
  .map((b) => -b)
  .join(', ')}]::float8[]`;
/**
 * request_logs rows matching `where`, each with its bucket `b` computed once (the aggregates below count
 * per bucket sixteen times).
 */
export const detailRows = (where: string) =>
  `(SELECT method, route, status, duration_ms, ts,
           ${HISTOGRAM_BUCKETS} - width_bucket(-duration_ms, ${NEGATED_BOUNDS}) AS b
    FROM request_logs WHERE ${where}) d`;

/** The RouteStats aggregates over detailRows (columns n, e4, e5, total, lo, hi, h0…). */
export const DETAIL_AGGREGATES = [
  'count(*) AS n',
  'count(*) FILTER (WHERE status BETWEEN 400 AND 499) AS e4',
  // ≥ 500, not 500–599: the rollup files every status from 500 up as 5xx, and the two must agree.
  'count(*) FILTER (WHERE status >= 500) AS e5',
  'sum(duration_ms) AS total',
  'min(duration_ms) AS lo',
  'max(duration_ms) AS hi',
  ...indexes.map((i) => `count(*) FILTER (WHERE b = ${i + 1}) AS h${i}`),
].join(', ');

/** The RouteStats aggregates over path_stats_hourly rows (same columns as DETAIL_AGGREGATES). */
export const ROLLUP_AGGREGATES = [
  'sum(count) AS n',
  'sum(status_4xx) AS e4',
  'sum(status_5xx) AS e5',
  'sum(duration_sum) AS total',
  'min(duration_min) AS lo',
  'max(duration_max) AS hi',
  // Element by element: sixteen sums over the rows are cheaper than unnesting every array.
  ...indexes.map((i) => `sum(latency_buckets[${i + 1}]) AS h${i}`),
].join(', ');

/** Aggregates of the two above merged (rollup hours and detail edges of one range): they add up. */
export const MERGED_AGGREGATES = [
  'sum(n) AS n',
  'sum(e4) AS e4',
  'sum(e5) AS e5',
  'sum(total) AS total',
  'min(lo) AS lo',
  'max(hi) AS hi',
  ...indexes.map((i) => `sum(h${i}) AS h${i}`),
].join(', ');

/** A row of either aggregate as RouteStats (drivers return bigint and numeric as strings). */
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
  // Only reached when the buckets hold fewer rows than `count` says, which the rollup never stores.
  return stats.max;
}
