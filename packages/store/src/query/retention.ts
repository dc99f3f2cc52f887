/**
 * Retention: cohorts of users by the period of their start event, and per cohort and offset n how many
 * of them did the return event in the n-th period after. Answered in one statement: cohort membership,
 * the distinct (user, period) pairs of return events, and a join of the two on the user. Those pairs are
 * read from user_activity_hourly (each user per event name and UTC hour) when every period boundary is a
 * whole UTC hour, neither event is filtered and the rollup is complete over what the query reads: an
 * event's hour then lies in the event's period, so the pairs are the same; else from the detail rows.
 *
 * Periods are numbered by the list of period starts core's bucketsBetween computes, bound as one
 * timestamptz[] and looked up with width_bucket (a binary search): SQL and JS then agree on every
 * boundary, across DST changes and in half-hour zones, with no week or month arithmetic in SQL.
 */
import {
  firstOffHour,
  RETENTION_COLUMNS,
  type RetentionQuery,
  retentionGrid,
  retentionPeriods as periodsOf,
} from '@tally/core';
import { rollupCoverageOf } from '../rollups.js';
import { filtersSql, nameSql, Params, timeParam, userKeySql } from './sql.js';
import type { KindAnswer, KindRunner, QueryContext } from './types.js';

/** The periods that can be reported (core's retentionPeriods, in the query's resolved range). */
const retentionPeriods = (query: RetentionQuery, ctx: QueryContext) => periodsOf({ ...query, tz: ctx.tz }, ctx);

/** Where the (user, time) of one event name's (or every event's) occurrences are read from, and how. */
interface Reader {
  table: string;
  /** The occurrence's time: the event's, or the start of its UTC hour. */
  ts: string;
  key: string;
  /** The occurrences of the selector's event (with a user) of the frame's tenant. */
  where: (sel: RetentionQuery['start'], f: Frame) => string;
}

/** What the SQL of one answer shares: the tenant, the period list and the span of the periods. */
interface Frame {
  read: Reader;
  p: Params;
  tenant: string;
  periods: string;
  from: string;
  end: string;
}

/**
 * The user key in byte order: the sorts and merge joins on it then compare bytes instead of calling the
 * locale's collation (an eighth of the statement's CPU time on 10M events); equality is the same either way.
 */
const userKey = () => `(${userKeySql()} COLLATE "C")`;

/** The events of one name and filters with a user, from the index on (tenant, name, ts). */
const DETAIL: Reader = {
  table: 'events e',
  ts: 'e.ts',
  key: userKey(),
  where: (sel, f) => `e.tenant_id = ${f.tenant} AND ${nameSql('e.name', sel.event, f.p)}
      AND (e.user_id IS NOT NULL OR e.anonymous_id IS NOT NULL) AND ${filtersSql(sel.filters, f.p)}`,
};

/**
 * The hours in which each user did the event (user_activity_hourly holds users only; no filters). Its
 * hours stand for the events' times: with every period boundary a whole UTC hour, an event and its hour
 * fall in the same period and on the same side of each bound.
 */
const ROLLUP: Reader = {
  table: 'user_activity_hourly e',
  ts: 'e.hour',
  key: `(e.user_key COLLATE "C")`,
  where: (sel, f) => `e.tenant_id = ${f.tenant} AND ${nameSql('e.name', sel.event, f.p)}`,
};

/**
 * (u, c): user and cohort number (1-based). first_time: the user's first start event ever must fall in
 * a period of the list, so the minimum runs over all history before the periods' end (a user who started
 * before the first period has a minimum before it and drops out); recurring: every period with a start.
 */
function cohortSql(query: RetentionQuery, f: Frame): string {
  const { table, ts, key, where } = f.read;
  if (query.mode === 'first_time') {
    return `firsts AS (
      SELECT ${key} AS u, min(${ts}) AS first FROM ${table}
      WHERE ${where(query.start, f)} AND ${ts} < ${f.end}
      GROUP BY 1
    ),
    cohort AS (SELECT u, width_bucket(first, ${f.periods}) AS c FROM firsts WHERE first >= ${f.from})`;
  }
  return `cohort AS (
      SELECT DISTINCT ${key} AS u, width_bucket(${ts}, ${f.periods}) AS c FROM ${table}
      WHERE ${where(query.start, f)} AND ${ts} >= ${f.from} AND ${ts} < ${f.end}
    )`;
}

/** (u, p): each user and period number in which the user did the return event. */
function returnsSql(query: RetentionQuery, f: Frame): string {
  const { table, ts, key, where } = f.read;
  return `returns AS (
      SELECT DISTINCT ${key} AS u, width_bucket(${ts}, ${f.periods}) AS p FROM ${table}
      WHERE ${where(query.return, f)} AND ${ts} >= ${f.from} AND ${ts} < ${f.end}
    )`;
}

/** One row per cohort with members: its size, and per offset with returns (n null when none) the count. */
function statement(query: RetentionQuery, ctx: QueryContext, read: Reader, starts: number[], end: number) {
  const p = new Params();
  const f: Frame = {
    read,
    p,
    tenant: p.add(ctx.tenantId),
    periods: `${p.add(starts.map((s) => new Date(s).toISOString()))}::timestamptz[]`,
    from: timeParam(starts[0] as number, p),
    end: timeParam(end, p),
  };
  const text = `WITH ${cohortSql(query, f)},
    ${returnsSql(query, f)},
    sizes AS (SELECT c, count(*) AS size FROM cohort GROUP BY c),
    grid AS (
      SELECT m.c, r.p - m.c AS n, count(*) AS returned
      FROM cohort m JOIN returns r ON r.u = m.u AND r.p >= m.c AND r.p < m.c + ${p.add(query.periods)}::int
      GROUP BY 1, 2
    )
    SELECT s.c, s.size, g.n, g.returned FROM sizes s LEFT JOIN grid g ON g.c = s.c`;
  return { text, values: p.values };
}

/** The statement's rows as core's cohort counts (its cohorts are 1-based, n null for a cohort without returns). */
function grid(query: RetentionQuery, starts: number[], found: Row[], maxRows: number) {
  const counts = new Map<number, { cohort: number; size: number; returned: Map<number, number> }>();
  for (const r of found) {
    const cohort = Number(r.c) - 1;
    let c = counts.get(cohort);
    if (!c) counts.set(cohort, (c = { cohort, size: Number(r.size), returned: new Map() }));
    if (r.n !== null) c.returned.set(Number(r.n), Number(r.returned));
  }
  return retentionGrid(query, starts, [...counts.values()], maxRows);
}

interface Row {
  c: number;
  size: string | number;
  n: number | null;
  returned: string | number | null;
}

export type RetentionPlan = { source: 'detail' | 'rollup'; reason: string };

/** The cohorts and returns a query asks for, in words. */
function what(query: RetentionQuery, tz: string): string {
  const start = query.start.event === null ? 'event of any name' : 'start event';
  const cohorts = query.mode === 'first_time' ? `each user's first ${start} over all history` : `every ${start}`;
  return `cohorts by ${cohorts} and returns by ${query.period} in ${tz}`;
}

const since = (ms: number) => (ms === Number.NEGATIVE_INFINITY ? 'all time' : new Date(ms).toISOString());

/**
 * Picks the source: user_activity_hourly when it answers exactly (no filters, every period boundary a
 * whole UTC hour, the rollup complete over every hour read: all history for first_time cohorts, from the
 * first period on for recurring ones), else the detail rows. Reads rollup_coverage.
 */
export async function planRetention(query: RetentionQuery, ctx: QueryContext): Promise<RetentionPlan> {
  const words = what(query, ctx.tz);
  const filtered = (['start', 'return'] as const).find((s) => query[s].filters.length > 0);
  if (filtered) {
    const f = query[filtered].filters[0]?.property;
    return { source: 'detail', reason: `${words}: a filter on ${f} (${filtered} event) needs the detail rows` };
  }
  const { starts, end } = retentionPeriods(query, ctx);
  const off = firstOffHour([...starts, end]);
  if (off !== undefined) {
    return {
      source: 'detail',
      reason: `${words}: a period starts off the UTC hour (${new Date(off).toISOString()}), which the hourly user activity rollup cannot split: read from the detail rows`,
    };
  }
  const earliest = query.mode === 'first_time' ? Number.NEGATIVE_INFINITY : (starts[0] ?? ctx.from);
  const complete = await rollupCoverageOf(ctx.sql, 'user_activity_hourly');
  if (complete === undefined || complete > earliest) {
    const why =
      complete === undefined
        ? 'the hourly user activity rollup is not kept (--activity-rollup off)'
        : `the hourly user activity rollup is complete only from ${since(complete)}, after the first hour read (${since(earliest)}; tally rollups rebuild fills it in)`;
    return { source: 'detail', reason: `${words}: ${why}: read from the detail rows` };
  }
  return {
    source: 'rollup',
    reason: `${words}, every period whole UTC hours: read from the hourly user activity rollup`,
  };
}

/** The answer from the source `plan` names (exported so that tests can force each source). */
export async function answerRetention(
  query: RetentionQuery,
  ctx: QueryContext,
  plan: RetentionPlan,
): Promise<KindAnswer> {
  const { starts, end } = retentionPeriods(query, ctx);
  const base = { columns: RETENTION_COLUMNS, source: plan.source, reason: plan.reason };
  if (starts.length === 0) return { ...base, rows: [] };
  const read = plan.source === 'rollup' ? ROLLUP : DETAIL;
  const { text, values } = statement(query, ctx, read, starts, end);
  const { rows, truncated } = grid(query, starts, await ctx.sql.query<Row>(text, values), ctx.maxRows);
  return { ...base, rows, truncated };
}

export const retention: KindRunner<RetentionQuery> = async (query, ctx) =>
  answerRetention(query, ctx, await planRetention(query, ctx));
