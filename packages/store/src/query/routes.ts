/**
 * Routes: request counts, error counts and latency percentiles of the request logs, per (method, route)
 * as a table, or over time for the routes the filters match. The whole UTC hours of the range are read
 * from path_stats_hourly and the partial hours at its ends from request_logs; all of it from
 * request_logs when a status class is asked for (the histograms are not kept per class), when the range
 * holds no whole hour, or when buckets in the query's zone do not start on UTC hours. Either way the SQL
 * only adds up counts per histogram bucket, and the percentiles, rates and order are computed here from
 * those (routes-histogram.ts), so every source gives the same answer for the same rows.
 */
import { bucketsBetween, type RoutesQuery, type StatusClass } from '@tally/core';
import {
  DETAIL_AGGREGATES,
  detailRows,
  histogramQuantile,
  MERGED_AGGREGATES,
  ROLLUP_AGGREGATES,
  type RouteStats,
  routeStats,
} from './routes-histogram.js';
import { bucketSql, isoSql, Params, timeParam } from './sql.js';
import type { Cell, Column, KindAnswer, KindRunner, QueryContext, QuerySource } from './types.js';

const HOUR = 3_600_000;
/**
 * How the rollup stores a request no route matched (store.ts); detail rows are read the same way. A
 * constant of this file, so it is written into the SQL as a literal.
 */
export const UNMATCHED_ROUTE = '(unmatched)';

/** A stretch of the range [from, to) and the table it is read from. */
interface Part {
  table: 'rollup' | 'detail';
  from: number;
  to: number;
}

interface Plan {
  parts: Part[];
  source: QuerySource;
  reason: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The parts of the range, the answer's source and the sentence that says why. */
function plan(q: RoutesQuery, ctx: QueryContext): Plan {
  const detail = (reason: string): Plan => ({
    parts: [{ table: 'detail', from: ctx.from, to: ctx.to }],
    source: 'detail',
    reason,
  });
  if (q.statusClass) {
    return detail(
      `a statusClass filter (${q.statusClass}) needs the detail rows: the hourly latency histograms are not kept per status class`,
    );
  }
  const inner = { from: Math.ceil(ctx.from / HOUR) * HOUR, to: Math.floor(ctx.to / HOUR) * HOUR };
  if (inner.from >= inner.to) return detail('the range holds no whole UTC hour: read from the detail rows');
  // A rollup hour belongs to one bucket only when no bucket starts inside it: not so in a zone with a
  // half- or quarter-hour offset (Asia/Kolkata), whose local hours and days start at :30.
  if (
    q.interval &&
    bucketsBetween(ctx.from, ctx.to, q.interval, ctx.tz).some((s) => s > inner.from && s < inner.to && s % HOUR !== 0)
  ) {
    return detail(
      `${q.interval} buckets in ${ctx.tz} do not start on whole UTC hours (its offset is not a whole number of hours): read from the detail rows`,
    );
  }
  const parts: Part[] = [{ table: 'rollup', ...inner }];
  if (ctx.from < inner.from) parts.unshift({ table: 'detail', from: ctx.from, to: inner.from });
  if (inner.to < ctx.to) parts.push({ table: 'detail', from: inner.to, to: ctx.to });
  const what = q.interval ? `${q.interval} buckets in ${ctx.tz} start on whole UTC hours` : 'no status class filter';
  if (parts.length === 1) {
    return {
      parts,
      source: 'rollup',
      reason: `whole UTC hours and ${what}: summed from the hourly latency histograms (path_stats_hourly)`,
    };
  }
  // Any detail read makes the source 'detail'; the partial hours are at most two hours of rows.
  return {
    parts,
    source: 'detail',
    reason: `${what}: the whole UTC hours ${iso(inner.from)} – ${iso(inner.to)} from the hourly latency histograms (path_stats_hourly), the partial hours at the ends of the range from the detail rows`,
  };
}

const CLASS_RANGE: Record<StatusClass, [number, number]> = {
  '1xx': [100, 199],
  '2xx': [200, 299],
  '3xx': [300, 399],
  '4xx': [400, 499],
  '5xx': [500, 599],
};

/** A group key: output names and SQL expressions over a part's time and route columns. */
type Groups = (time: string, route: string) => Record<string, string>;

/** The aggregates of one part of the range, grouped by `groups`. */
function partSql(q: RoutesQuery, ctx: QueryContext, part: Part, p: Params, groups: Groups): string {
  const rollup = part.table === 'rollup';
  // Detail rows without a route read as the rollup stores them, so a filter on '(unmatched)' and the
  // rows it shows are the same from either table.
  const route = rollup ? 'route' : `coalesce(route, '${UNMATCHED_ROUTE}')`;
  const time = rollup ? 'hour' : 'ts';
  const where = [
    `tenant_id = ${p.add(ctx.tenantId)}`,
    `${time} >= ${timeParam(part.from, p)}`,
    `${time} < ${timeParam(part.to, p)}`,
  ];
  if (q.method) where.push(`method = ${p.add(q.method)}`);
  if (q.route) where.push(`${route} = ${p.add(q.route)}`);
  if (q.statusClass) {
    const [lo, hi] = CLASS_RANGE[q.statusClass];
    where.push(`status BETWEEN ${p.add(lo)}::int AND ${p.add(hi)}::int`);
  }
  const keys = Object.entries(groups(time, route));
  const select = keys.map(([name, expr]) => `${expr} AS ${name}`).join(', ');
  const positions = keys.map((_, i) => i + 1).join(', ');
  return rollup
    ? `SELECT ${select}, ${ROLLUP_AGGREGATES} FROM path_stats_hourly WHERE ${where.join(' AND ')} GROUP BY ${positions}`
    : `SELECT ${select}, ${DETAIL_AGGREGATES} FROM ${detailRows(where.join(' AND '))} GROUP BY ${positions}`;
}

/**
 * The aggregates of every group over all parts of the plan, in one statement: the parts' sums added up
 * per group, and the group columns written as `output` says (the ISO text of a bucket is made once per
 * bucket here, not once per row in the parts).
 */
function aggregate(
  q: RoutesQuery,
  ctx: QueryContext,
  parts: Part[],
  groups: Groups,
  p: Params,
  output: Record<string, string> = {},
) {
  const selects = parts.map((part) => partSql(q, ctx, part, p, groups));
  const names = Object.keys(groups('', ''));
  const columns = names.map((n) => `${output[n] ?? `u.${n}`} AS ${n}`).join(', ');
  const keys = names.map((n) => `u.${n}`).join(', ');
  return ctx.sql.query<Record<string, unknown>>(
    `SELECT ${columns}, ${MERGED_AGGREGATES} FROM (${selects.join(' UNION ALL ')}) u GROUP BY ${keys}`,
    p.values,
  );
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

async function table(
  q: RoutesQuery,
  ctx: QueryContext,
  parts: Part[],
): Promise<Pick<KindAnswer, 'columns' | 'rows' | 'truncated'>> {
  const found = await aggregate(q, ctx, parts, (_, route) => ({ method: 'method', route }), new Params());
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
  return { columns: TABLE_COLUMNS, rows, truncated: ranked.length > limit };
}

async function series(
  q: RoutesQuery,
  ctx: QueryContext,
  parts: Part[],
): Promise<Pick<KindAnswer, 'columns' | 'rows' | 'truncated'>> {
  const interval = q.interval!;
  const p = new Params();
  const tz = p.add(ctx.tz);
  const found = await aggregate(q, ctx, parts, (time) => ({ time: bucketSql(interval, time, tz) }), p, {
    time: isoSql('u.time'),
  });
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
  return { columns: SERIES_COLUMNS, rows, truncated: starts.length > shown.length };
}

export const routes: KindRunner<RoutesQuery> = async (q, ctx) => {
  const { parts, source, reason } = plan(q, ctx);
  const answer = q.interval ? await series(q, ctx, parts) : await table(q, ctx, parts);
  return { ...answer, source, reason };
};
