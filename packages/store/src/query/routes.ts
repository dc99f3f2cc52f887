/**
 * Routes: request counts, error counts and latency percentiles of the request logs, per (method, route)
 * as a table, or over time for the routes the filters match. Answered from path_stats_hourly when every
 * hour it needs is whole (the range, and with `interval` every bucket, starts and ends on a UTC hour) and
 * no status class is asked for (the histograms are not kept per class); else from request_logs. Either
 * way the SQL only aggregates counts per histogram bucket, and the percentiles, rates and order are
 * computed here from those (routes-histogram.ts), so both sources give the same answer for the same rows.
 */
import { bucketsBetween, type RoutesQuery, type StatusClass } from '@tally/core';
import {
  DETAIL_AGGREGATES,
  histogramQuantile,
  ROLLUP_AGGREGATES,
  type RouteStats,
  routeStats,
} from './routes-histogram.js';
import { bucketSql, isoSql, Params, timeParam } from './sql.js';
import type { Cell, Column, KindAnswer, KindRunner, QueryContext } from './types.js';

const HOUR = 3_600_000;
/**
 * How the rollup stores a request no route matched (store.ts); detail rows are read the same way. A
 * constant of this file, so it is written into the SQL as a literal.
 */
export const UNMATCHED_ROUTE = '(unmatched)';

type Source = 'rollup' | 'detail';

const iso = (ms: number) => new Date(ms).toISOString();

/** The source for this query and the sentence that says why. */
function plan(q: RoutesQuery, ctx: QueryContext): { source: Source; reason: string } {
  if (q.statusClass) {
    return {
      source: 'detail',
      reason: `a statusClass filter (${q.statusClass}) needs the detail rows: the hourly latency histograms are not kept per status class`,
    };
  }
  if (ctx.from % HOUR !== 0 || ctx.to % HOUR !== 0) {
    return {
      source: 'detail',
      reason: `the range ${iso(ctx.from)} – ${iso(ctx.to)} does not start and end on whole UTC hours, which the hourly rollup needs: read from the detail rows`,
    };
  }
  if (!q.interval) {
    return {
      source: 'rollup',
      reason:
        'whole UTC hours and no status class filter: merged from the hourly latency histograms (path_stats_hourly)',
    };
  }
  // A rollup hour belongs to one bucket only when every bucket starts on a UTC hour: not so in a zone
  // with a half- or quarter-hour offset (Asia/Kolkata), whose local hours and days start at :30.
  const starts = bucketsBetween(ctx.from, ctx.to, q.interval, ctx.tz);
  if (starts.some((s) => s % HOUR !== 0)) {
    return {
      source: 'detail',
      reason: `${q.interval} buckets in ${ctx.tz} do not start on whole UTC hours (its offset is not a whole number of hours): read from the detail rows`,
    };
  }
  return {
    source: 'rollup',
    reason: `${q.interval} buckets in ${ctx.tz} start on whole UTC hours: summed from the hourly rollup (path_stats_hourly)`,
  };
}

const CLASS_RANGE: Record<StatusClass, [number, number]> = {
  '1xx': [100, 199],
  '2xx': [200, 299],
  '3xx': [300, 399],
  '4xx': [400, 499],
  '5xx': [500, 599],
};

/** The table, columns and WHERE clause of one source with the query's filters bound. */
function from(q: RoutesQuery, ctx: QueryContext, source: Source, p: Params) {
  const rollup = source === 'rollup';
  // Detail rows without a route read as the rollup stores them, so a filter on '(unmatched)' and the
  // rows it shows are the same from either source.
  const route = rollup ? 'route' : `coalesce(route, '${UNMATCHED_ROUTE}')`;
  const time = rollup ? 'hour' : 'ts';
  const where = [
    `tenant_id = ${p.add(ctx.tenantId)}`,
    `${time} >= ${timeParam(ctx.from, p)}`,
    `${time} < ${timeParam(ctx.to, p)}`,
  ];
  if (q.method) where.push(`method = ${p.add(q.method)}`);
  if (q.route) where.push(`${route} = ${p.add(q.route)}`);
  if (q.statusClass) {
    const [lo, hi] = CLASS_RANGE[q.statusClass];
    where.push(`status BETWEEN ${p.add(lo)}::int AND ${p.add(hi)}::int`);
  }
  return {
    table: rollup ? 'path_stats_hourly' : 'request_logs',
    aggregates: rollup ? ROLLUP_AGGREGATES : DETAIL_AGGREGATES,
    route,
    time,
    where: where.join(' AND '),
  };
}

const errorRate = (s: RouteStats): number | null => (s.count === 0 ? null : (s.errors4xx + s.errors5xx) / s.count);

const percentiles = (s: RouteStats): Cell[] => [
  histogramQuantile(s, 0.5),
  histogramQuantile(s, 0.95),
  histogramQuantile(s, 0.99),
];

const TABLE_COLUMNS: Column[] = [
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

const SERIES_COLUMNS: Column[] = [
  { name: 'time', type: 'time' },
  { name: 'count', type: 'number' },
  { name: 'errors_4xx', type: 'number' },
  { name: 'errors_5xx', type: 'number' },
  { name: 'error_rate', type: 'number' },
  { name: 'p50_ms', type: 'number' },
  { name: 'p95_ms', type: 'number' },
  { name: 'p99_ms', type: 'number' },
];

/** Code-point order (as COLLATE "C"), for ties: JS's `<` compares UTF-16 units instead. */
function compareText(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = (x[i] as string).codePointAt(0)! - (y[i] as string).codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

interface RouteRow {
  method: string;
  route: string;
  stats: RouteStats;
  key: number;
}

function sortKey(q: RoutesQuery, s: RouteStats): number {
  switch (q.sort) {
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

async function table(q: RoutesQuery, ctx: QueryContext, source: Source): Promise<Omit<KindAnswer, 'reason'>> {
  const p = new Params();
  const f = from(q, ctx, source, p);
  const found = await ctx.sql.query<Record<string, unknown>>(
    `SELECT method, ${f.route} AS route, ${f.aggregates} FROM ${f.table} WHERE ${f.where} GROUP BY 1, 2`,
    p.values,
  );
  // Sorted here, not in SQL: the percentiles the sorts use are computed from the histograms below. A
  // tenant has one group per (method, route) it serves, few enough to rank in memory.
  const ranked: RouteRow[] = found.map((r) => {
    const stats = routeStats(r);
    return { method: String(r.method), route: String(r.route), stats, key: sortKey(q, stats) };
  });
  ranked.sort((a, b) => b.key - a.key || compareText(a.method, b.method) || compareText(a.route, b.route));
  const limit = Math.min(q.limit, ctx.maxRows);
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
  return { columns: TABLE_COLUMNS, rows, source, truncated: ranked.length > limit };
}

async function series(q: RoutesQuery, ctx: QueryContext, source: Source): Promise<Omit<KindAnswer, 'reason'>> {
  const interval = q.interval!;
  const p = new Params();
  const f = from(q, ctx, source, p);
  const bucket = bucketSql(interval, f.time, p.add(ctx.tz));
  const found = await ctx.sql.query<Record<string, unknown>>(
    `SELECT ${isoSql(bucket)} AS time, ${f.aggregates} FROM ${f.table} WHERE ${f.where} GROUP BY ${bucket}`,
    p.values,
  );
  const byTime = new Map(found.map((r) => [String(r.time), routeStats(r)]));
  const starts = bucketsBetween(ctx.from, ctx.to, interval, ctx.tz);
  const shown = starts.slice(0, ctx.maxRows);
  const rows = shown.map((start): Cell[] => {
    const time = iso(start);
    const s = byTime.get(time);
    // A bucket without requests: zero counts, and no rate or percentile (there is nothing to divide).
    if (!s) return [time, 0, 0, 0, null, null, null, null];
    return [time, s.count, s.errors4xx, s.errors5xx, errorRate(s), ...percentiles(s)];
  });
  return { columns: SERIES_COLUMNS, rows, source, truncated: starts.length > shown.length };
}

export const routes: KindRunner<RoutesQuery> = async (q, ctx) => {
  const { source, reason } = plan(q, ctx);
  const answer = q.interval ? await series(q, ctx, source) : await table(q, ctx, source);
  return { ...answer, reason };
};
