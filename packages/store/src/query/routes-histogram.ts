/**
 * The latency histograms of the routes kind in SQL: the same fixed buckets path_stats_hourly keeps
 * (LATENCY_BUCKETS_MS: bucket i counts durations ≤ bound i, the last bucket the rest), summed over hours
 * from the rollup or counted over detail rows. Both sources' aggregates have the columns core's
 * routeStats reads, and the percentiles come from core's histogramQuantile, so for the same rows they
 * answer identically (and as the ClickHouse engine does).
 */
import { HISTOGRAM_BUCKETS } from '@tally/core';
import { LATENCY_BUCKETS_MS } from '../rows.js';

const BOUNDS: readonly number[] = LATENCY_BUCKETS_MS;

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
