/**
 * Trends of plain counts from the hourly rollup of sealed days (rollup.ts), and the detail rows for the
 * rest of the range, in one statement.
 *
 * Core's hourlyRefusal decides by the query's shape (counts without filters, every bucket whole UTC
 * hours); a breakdown must also name a declared dimension of every series' event. Then each UTC day of
 * the range is read from the rollup when its current build was made for the dimensions this store
 * knows, else from the detail rows: the two cover the range exactly once between them. The rollup's
 * rows are turned into the detail's shape (ts_ms of the hour, name, the breakdown pair, a count), so
 * that the periods, the buckets and the breakdown's ranking are the very expressions of trends-sql.ts.
 */
import { declaredDimensions, hourlyRefusal, topLevelKey, type TrendsQuery } from '@tally/core';
import { DAY_MS, dayStates, dimensionsFingerprint } from '../rollup.js';
import { int, str } from '../sql.js';
import { measureSql, mergedSql, partialsSql, periodSql, rowsSql, type Span, type TrendsFrame } from './trends-sql.js';
import { nameSql, zoneBucketsSql } from './sql.js';
import type { QueryContext } from './types.js';

export interface HourlyPlan {
  /** The sealed days read from the rollup, with their current builds. */
  builds: { day: number; build: number }[];
  /** The parts of the range read from the rollup, and from the detail rows. */
  rollup: Span[];
  detail: Span[];
  /** The breakdown's dimension, when there is one. */
  key?: string;
}

/** Adds [a, b) to `spans`, joined to the last one when they touch. */
function extend(spans: Span[], a: number, b: number): void {
  const last = spans[spans.length - 1];
  if (last && last[1] === a) spans[spans.length - 1] = [last[0], b];
  else spans.push([a, b]);
}

/** Whether (and how) the hourly rollup answers: a plan, or why not in words. */
export async function planHourly(
  query: TrendsQuery,
  ctx: QueryContext,
  f: TrendsFrame,
): Promise<{ plan: HourlyPlan; reason: string } | { reason: string }> {
  const refusal = hourlyRefusal(query, ctx.from, ctx.to);
  if (refusal) return { reason: refusal };
  const b = query.breakdown;
  let key: string | undefined;
  if (b) {
    if (query.series.some((s) => s.event === null)) {
      return {
        reason: `a breakdown of all events by ${b.property} needs the detail rows: the per-value rollup holds the catalog's declared events only`,
      };
    }
    key = topLevelKey(b.property);
    const names = [...new Set(query.series.map((s) => s.event as string))];
    const undeclared = names.find((n) => key === undefined || !declaredDimensions(ctx.dimensions, n).includes(key));
    if (key === undefined || undeclared !== undefined) {
      return {
        reason: `a breakdown by ${b.property} needs the detail rows: it is not a rolled-up dimension of ${undeclared ?? names[0]}`,
      };
    }
  }
  const fromDay = Math.floor(f.lo / DAY_MS);
  const toDay = Math.floor((f.to - 1) / DAY_MS);
  const fingerprint = dimensionsFingerprint(ctx.dimensions);
  const states = await dayStates(ctx.client, ctx.db, { tenantId: ctx.tenantId, fromDay, toDay });
  const built = new Map(
    states.filter((s) => s.build !== 0 && s.dimensions === fingerprint).map((s) => [s.day, s.build] as const),
  );
  if (built.size === 0) {
    return {
      reason:
        'no day of the range has its hourly counts built yet (a day is sealed an hour after it ends, and again after late events): read from the detail rows',
    };
  }
  const plan: HourlyPlan = { builds: [], rollup: [], detail: [], ...(key === undefined ? {} : { key }) };
  for (let day = fromDay; day <= toDay; day++) {
    const a = Math.max(f.lo, day * DAY_MS);
    const z = Math.min(f.to, (day + 1) * DAY_MS);
    const build = built.get(day);
    if (build === undefined) extend(plan.detail, a, z);
    else {
      plan.builds.push({ day, build });
      extend(plan.rollup, a, z);
    }
  }
  const days = toDay - fromDay + 1;
  const what = `counts by ${query.interval} in ${query.tz}${b ? ` by ${b.property}` : ''}`;
  return {
    plan,
    reason: `${what}, every bucket whole UTC hours: ${plan.builds.length} of ${days} days summed from the hourly rollup of sealed days${
      plan.detail.length > 0 ? ', the rest measured from the detail rows' : ''
    }`,
  };
}

/**
 * The rollup's rows in the plan's days and range, in the detail's shape: ts_ms (the hour), name, n; with
 * a breakdown also (gm, gv). A value's events count under (0, value); the missing value's are the
 * total's minus every value's, so they come as (1, '') rows of +total and −value counts that sum to it.
 */
function rollupRowsSql(query: TrendsQuery, f: TrendsFrame, plan: HourlyPlan): string {
  const where = [`tenant_id = ${str(f.tenantId)}`];
  if (query.series.every((s) => s.event !== null)) {
    where.push(`name IN (${[...new Set(query.series.map((s) => s.event as string))].map(str).join(', ')})`);
  }
  // Days as numbers: a set of (UInt32, UInt64) pairs is built several times faster than one of dates.
  where.push(`(toUInt32(day), build) IN (${plan.builds.map((x) => `(${int(x.day)}, ${int(x.build)})`).join(', ')})`);
  const hours = plan.rollup.map(
    ([a, b]) => `hour >= toDateTime(${int(a / 1000)}, 'UTC') AND hour < toDateTime(${int(b / 1000)}, 'UTC')`,
  );
  where.push(hours.length === 1 ? (hours[0] as string) : `((${hours.join(') OR (')}))`);
  const ts = 'toInt64(toUInt32(hour)) * 1000 AS ts_ms';
  const from = `FROM ${f.db}.events_hourly WHERE ${where.join(' AND ')}`;
  if (plan.key === undefined) return `SELECT ${ts}, name, toInt64(count) AS n ${from} AND key = ''`;
  // One read of the rows: a value's row counts under itself and, negated, under the missing value.
  const g = `arrayJoin(if(key = '', [(toUInt8(1), '', toInt64(count))],
      [(toUInt8(0), value, toInt64(count)), (toUInt8(1), '', -toInt64(count))]))`;
  return `SELECT ${ts}, name, t.1 AS gm, t.2 AS gv, t.3 AS n FROM (
      SELECT hour, name, ${g} AS t ${from} AND key IN ('', ${str(plan.key)}))`;
}

/** The statement of a planned query: the same rows as trendsSql's, summed from both sources. */
export function hourlyTrendsSql(query: TrendsQuery, f: TrendsFrame, plan: HourlyPlan): string {
  const buckets = zoneBucketsSql(query.interval, query.tz, f.lo, f.to);
  const group = plan.key === undefined ? 'p, k' : 'p, k, gm, gv';
  const counts = query.series.map(
    (s, i) => `toInt64(sumIf(n, ${nameSql(s.event)})) AS ${plan.key ? `a${i}_0` : `v${i}`}`,
  );
  const rollup = `SELECT ${group}, ${counts.join(', ')}
    FROM (SELECT *, ${periodSql(f)} AS p, ${buckets.key} AS k FROM (${rollupRowsSql(query, f, plan)}))
    GROUP BY ${group}`;
  const extra = [`${periodSql(f)} AS p`, `${buckets.key} AS k`];
  if (plan.key !== undefined && query.breakdown) {
    // A (p, k, value) whose every count is 0 has no events: the detail rows would not show it.
    const some = query.series.map((_, i) => `a${i}_0 != 0`).join(' OR ');
    const arms = [`${rollup} HAVING ${some}`];
    if (plan.detail.length > 0) arms.push(partialsSql(query, f, plan.detail, buckets));
    return mergedSql(query, query.breakdown.limit, buckets, arms.join('\n UNION ALL \n'));
  }
  const arms = [rollup];
  if (plan.detail.length > 0) {
    const measures = query.series.map((s, i) => `toInt64(${measureSql(s, i)}) AS v${i}`);
    arms.push(`SELECT p, k, ${measures.join(', ')} FROM (${rowsSql(query, f, plan.detail, extra)}) GROUP BY p, k`);
  }
  const sums = query.series.map((_, i) => `sum(v${i}) AS v${i}`);
  return `SELECT p, ${buckets.start('k')} AS b, toUInt32(1) AS rank, NULL AS g, ${sums.join(', ')}
    FROM (${arms.join('\n UNION ALL \n')})
    GROUP BY p, k`;
}
