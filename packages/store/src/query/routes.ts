/**
 * Routes: request counts, error counts and latency percentiles of the request logs, per (method, route)
 * as a table, or over time for the routes the filters match. The whole UTC hours of the range are read
 * from path_stats_hourly and the partial hours at its ends from request_logs; all of it from
 * request_logs when a status class is asked for (the histograms are not kept per class), when the range
 * holds no whole hour, or when buckets in the query's zone do not start on UTC hours. Either way the SQL
 * only adds up counts per histogram bucket (routes-histogram.ts), and the percentiles, rates, order and
 * rows are core's (routesTable, routesSeries), so every source, and every engine, gives the same answer
 * for the same rows.
 */
import {
  bucketsBetween,
  routeStats,
  routesSeries,
  routesTable,
  type RoutesQuery,
  STATUS_CLASS_RANGE,
  UNMATCHED_ROUTE,
} from '@tally/core';
import { DETAIL_AGGREGATES, detailRows, MERGED_AGGREGATES, ROLLUP_AGGREGATES } from './routes-histogram.js';
import { bucketSql, isoSql, Params, timeParam } from './sql.js';
import type { KindAnswer, KindRunner, QueryContext, QuerySource } from './types.js';

const HOUR = 3_600_000;

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

/** A group key: output names and SQL expressions over a part's time and route columns. */
type Groups = (time: string, route: string) => Record<string, string>;

/** The aggregates of one part of the range, grouped by `groups`. */
function partSql(q: RoutesQuery, ctx: QueryContext, part: Part, p: Params, groups: Groups): string {
  const rollup = part.table === 'rollup';
  // Detail rows without a route read as the rollup stores them, so a filter on '(unmatched)' and the
  // rows it shows are the same from either table. A constant of core, written into the SQL as a literal.
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
    const [lo, hi] = STATUS_CLASS_RANGE[q.statusClass];
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

async function table(
  q: RoutesQuery,
  ctx: QueryContext,
  parts: Part[],
): Promise<Pick<KindAnswer, 'columns' | 'rows' | 'truncated'>> {
  const found = await aggregate(q, ctx, parts, (_, route) => ({ method: 'method', route }), new Params());
  const groups = found.map((r) => ({ method: String(r.method), route: String(r.route), stats: routeStats(r) }));
  return routesTable(q.sort, groups, Math.min(q.limit, ctx.maxRows));
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
  return routesSeries(bucketsBetween(ctx.from, ctx.to, interval, ctx.tz), byTime, ctx.maxRows);
}

export const routes: KindRunner<RoutesQuery> = async (q, ctx) => {
  const { parts, source, reason } = plan(q, ctx);
  const answer = q.interval ? await series(q, ctx, parts) : await table(q, ctx, parts);
  return { ...answer, source, reason };
};
