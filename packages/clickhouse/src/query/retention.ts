/**
 * Retention on ClickHouse: one scan of the start and return events and one group per user, then one row
 * per cohort with its size and the users returning at each offset.
 *
 * Periods are core's (retentionPeriods: those starting in the range and not after now), numbered from
 * the first: an event's period is its local calendar day, ISO week (from Monday) or month in the query's
 * time zone, less the first period's — ClickHouse's toRelative{Day,Week,Month}Num in the zone, which
 * place an instant on the same local date as core's bucketStart does, across DST changes and in
 * half-hour zones (the tests hold the two to the brute-force evaluator at those edges).
 *
 * Per user: with at most 64 periods, the periods with a start event and those with a return event as
 * two bitmasks (an OR per event, no set per user); with more, as arrays of distinct periods. first_time
 * cohorts take the user's first start event over all history before the periods' end (a user whose
 * first start lies before the first period is in no cohort); recurring ones every period with a start.
 * Per (user, cohort c), the returns of periods c … c + periods − 1 shifted to offsets 0 … periods − 1
 * form a mask (periods ≤ 52), summed per offset over the cohort's users.
 */
import {
  RETENTION_COLUMNS,
  type RetentionCohortCount,
  type RetentionQuery,
  retentionGrid,
  retentionPeriods,
} from '@tally/core';
import { int, str } from '../sql.js';
import { filtersSql, nameSql } from './sql.js';
import type { KindAnswer, KindRunner, QueryContext } from './types.js';

/** Most periods a UInt64 mask holds. */
const MASK_PERIODS = 64;

/** The local period number of DateTime `ts` in `tz`. */
function periodNumSql(period: RetentionQuery['period'], tz: string, ts: string): string {
  const fn = { day: 'toRelativeDayNum', week: 'toRelativeWeekNum', month: 'toRelativeMonthNum' }[period];
  return `${fn}(${ts}, ${str(tz)})`;
}

/**
 * `value` repeated `times` times: what a lambda reads as a second array rather than capturing it (18.16
 * drops a column from a subquery when only a lambda names it: `Unknown identifier`).
 */
const repeat = (value: string, times: number | string, type: string) =>
  `arrayResize(emptyArray${type}(), ${typeof times === 'number' ? int(times) : times}, to${type}(${value}))`;

interface Row {
  c: number;
  size: number;
  returned: number[];
}

export function retentionStatement(query: RetentionQuery, ctx: QueryContext, starts: number[], end: number): string {
  const first = starts[0] as number;
  const count = starts.length;
  const tz = ctx.tz;
  const n = query.periods;
  const user = `if(user_id != '', user_id, anonymous_id)`;
  // Period index of an event (its `ts`, whole seconds: period starts are whole seconds too).
  const period = `toInt64(${periodNumSql(query.period, tz, 'ts')}) - ${periodNumSql(query.period, tz, `toDateTime(${int(Math.floor(first / 1000))}, 'UTC')`)}`;
  const inPeriods = `ts_ms >= ${int(first)} AND ts_ms < ${int(end)}`;
  const selector = (s: RetentionQuery['start']) => `(${nameSql(s.event)} AND ${filtersSql(s.filters)})`;
  const isStart = selector(query.start);
  const isReturn = selector(query.return);
  // first_time looks at every start event before the end, however old: the first decides the cohort.
  const startRange = query.mode === 'first_time' ? `ts_ms < ${int(end)}` : inPeriods;
  const scan = `SELECT ${user} AS u, ts_ms, greatest(${period}, 0) AS p,
      ${isStart} AND ${startRange} AS s, ${isReturn} AND ${inPeriods} AS r
    FROM ${ctx.db}.events
    WHERE tenant_id = ${str(ctx.tenantId)} AND (user_id != '' OR anonymous_id != '')
      AND ((${isStart} AND ${startRange}) OR (${isReturn} AND ${inPeriods}))`;

  const masks = count <= MASK_PERIODS;
  const bit = 'toUInt64(bitShiftLeft(toUInt64(1), p))';
  const firstCohort = `if(first_ms >= ${int(first)}, [toInt64(${periodNumSql(query.period, tz, "toDateTime(intDiv(first_ms, 1000), 'UTC')")}) - ${periodNumSql(query.period, tz, `toDateTime(${int(Math.floor(first / 1000))}, 'UTC')`)}], emptyArrayInt64())`;
  const perUser = masks
    ? `SELECT ${query.mode === 'first_time' ? firstCohort : `arrayFilter((i, m) -> bitAnd(bitShiftRight(m, i), 1) = 1, range(${int(count)}), ${repeat('starts', count, 'UInt64')})`} AS cohorts,
        returns
      FROM (
        SELECT ${query.mode === 'first_time' ? 'minIf(ts_ms, s) AS first_ms' : `groupBitOrIf(${bit}, s) AS starts`},
          groupBitOrIf(${bit}, r) AS returns
        FROM (${scan}) GROUP BY u)`
    : `SELECT ${query.mode === 'first_time' ? firstCohort : 'starts'} AS cohorts, returns
      FROM (
        SELECT ${query.mode === 'first_time' ? 'minIf(ts_ms, s) AS first_ms' : 'groupUniqArrayIf(p, s) AS starts'},
          groupUniqArrayIf(p, r) AS returns
        FROM (${scan}) GROUP BY u)`;
  // Per (user, cohort c): bit k set when the user returned in period c + k (k < periods).
  const window = int(2 ** n - 1);
  const offsets = masks
    ? `bitAnd(bitShiftRight(returns, c), ${window})`
    : `arraySum(arrayMap((x, y) -> if(x >= y AND x < y + ${int(n)}, toUInt64(bitShiftLeft(toUInt64(1), least(greatest(x - y, 0), 63))), toUInt64(0)), returns, ${repeat('c', 'length(returns)', 'Int64')}))`;
  return `SELECT c, count() AS size, sumForEach(back) AS returned
    FROM (
      SELECT c, arrayMap((k, x) -> bitAnd(bitShiftRight(x, k), 1), range(${int(n)}), ${repeat('o', n, 'UInt64')}) AS back
      FROM (SELECT c, ${offsets} AS o FROM (${perUser}) ARRAY JOIN cohorts AS c))
    GROUP BY c`;
}

/** The cohorts and returns a query asks for, in words. */
function what(query: RetentionQuery, tz: string): string {
  const start = query.start.event === null ? 'event of any name' : 'start event';
  const cohorts = query.mode === 'first_time' ? `each user's first ${start} over all history` : `every ${start}`;
  return `cohorts by ${cohorts} and returns by ${query.period} in ${tz}`;
}

export const retention: KindRunner<RetentionQuery> = async (query, ctx): Promise<KindAnswer> => {
  const { starts, end } = retentionPeriods({ ...query, tz: ctx.tz }, ctx);
  const base = {
    columns: RETENTION_COLUMNS,
    source: 'detail' as const,
    reason: `${what(query, ctx.tz)}: read from the detail rows (ClickHouse's hourly counts hold no users)`,
  };
  if (starts.length === 0) return { ...base, rows: [] };
  const found = await ctx.client.query<Row>(retentionStatement(query, ctx, starts, end), ctx.settings);
  const counts: RetentionCohortCount[] = found.map((r) => ({
    cohort: Number(r.c),
    size: Number(r.size),
    returned: new Map(r.returned.map((v, k) => [k, Number(v)] as const).filter(([, v]) => v > 0)),
  }));
  const { rows, truncated } = retentionGrid(query, starts, counts, ctx.maxRows);
  return { ...base, rows, truncated };
};
