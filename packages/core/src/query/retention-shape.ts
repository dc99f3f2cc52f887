/**
 * Retention answers on every engine: the columns, the periods a query reports, and the grid of rows
 * from the counts an engine found. Periods are core's buckets (bucketsBetween), so every engine numbers
 * them from this one list and agrees on every boundary, across DST changes and in half-hour zones.
 */
import type { RetentionQuery } from './model.js';
import type { Cell, Column } from './result.js';
import { bucketsBetween, nextBucket } from './time.js';

export const RETENTION_COLUMNS: Column[] = [
  { name: 'cohort', type: 'time' },
  { name: 'cohort_size', type: 'number' },
  { name: 'period', type: 'number' },
  { name: 'returned', type: 'number' },
  { name: 'rate', type: 'number' },
];

/**
 * The periods that can be reported: those starting in [bucketStart(from), to) and not after now (later
 * ones have not happened yet). Each is whole: the first may start before `from`, the last end after `to`
 * (`end`, the end of the last; `from` itself when there are none).
 */
export function retentionPeriods(
  query: Pick<RetentionQuery, 'period' | 'tz'>,
  range: { from: number; to: number; now: number },
): { starts: number[]; end: number } {
  const starts = bucketsBetween(range.from, range.to, query.period, query.tz).filter((s) => s <= range.now);
  const last = starts[starts.length - 1];
  return { starts, end: last === undefined ? range.from : nextBucket(last, query.period, query.tz) };
}

/** What an engine found for one cohort: its size, and per offset with returns the users returning. */
export interface RetentionCohortCount {
  /** Index of the cohort's period in `starts` (0-based). */
  cohort: number;
  size: number;
  /** Offsets with at least one return (offset → users). */
  returned: ReadonlyMap<number, number>;
}

/** Every (cohort, offset) whose period has started, in order; zeros where the engine found nobody. */
export function retentionGrid(
  query: Pick<RetentionQuery, 'periods'>,
  starts: readonly number[],
  found: readonly RetentionCohortCount[],
  maxRows: number,
): { rows: Cell[][]; truncated: boolean } {
  const byCohort = new Map(found.map((c) => [c.cohort, c]));
  const rows: Cell[][] = [];
  for (let i = 0; i < starts.length; i++) {
    const c = byCohort.get(i);
    const size = c?.size ?? 0;
    for (let n = 0; n < query.periods && i + n < starts.length; n++) {
      if (rows.length === maxRows) return { rows, truncated: true };
      const back = c?.returned.get(n) ?? 0;
      rows.push([new Date(starts[i] as number).toISOString(), size, n, back, size === 0 ? null : back / size]);
    }
  }
  return { rows, truncated: false };
}
