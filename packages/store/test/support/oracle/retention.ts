/**
 * Retention, plainly (docs/query.md "Retention"): loops over the stored rows, no SQL. Periods are core's
 * buckets; a period's users are found by the bucket start of each event, and offsets by stepping from
 * one period start to the next.
 */
import { bucketStart, nextBucket, type RetentionQuery } from '@tally/core';
import type { EventRow } from '../../../src/index.js';
import { matchesAll, tsOf, userKey } from './common.js';

export interface RetentionFrame {
  tenant: string;
  /** The resolved range, epoch ms, half-open. */
  from: number;
  to: number;
  now: number;
}

/** Rows `[cohort ISO, cohort_size, period, returned, rate]`, cohorts in order, offsets in order. */
export function retentionOracle(rows: readonly EventRow[], q: RetentionQuery, frame: RetentionFrame): unknown[][] {
  const tz = q.tz;
  const mine = rows.filter((r) => r.tenantId === frame.tenant && userKey(r) !== undefined);
  const isStart = (r: EventRow) =>
    (q.start.event === null || r.name === q.start.event) && matchesAll(r, q.start.filters);
  const isReturn = (r: EventRow) =>
    (q.return.event === null || r.name === q.return.event) && matchesAll(r, q.return.filters);

  // Cohort periods: every period whose start lies in [bucketStart(from), to).
  const cohortStarts: number[] = [];
  for (let b = bucketStart(frame.from, q.period, tz); b < frame.to; b = nextBucket(b, q.period, tz)) {
    cohortStarts.push(b);
  }

  // Members of each cohort period, by its start.
  const members = new Map<number, Set<string>>(cohortStarts.map((s) => [s, new Set<string>()]));
  if (q.mode === 'first_time') {
    const first = new Map<string, number>();
    for (const r of mine) {
      if (!isStart(r)) continue;
      const u = userKey(r) as string;
      const t = tsOf(r);
      if (!first.has(u) || t < (first.get(u) as number)) first.set(u, t);
    }
    for (const [u, t] of first) members.get(bucketStart(t, q.period, tz))?.add(u);
  } else {
    for (const r of mine) {
      if (isStart(r)) members.get(bucketStart(tsOf(r), q.period, tz))?.add(userKey(r) as string);
    }
  }

  // Who did the return event in each period (any period, by its start).
  const returners = new Map<number, Set<string>>();
  for (const r of mine) {
    if (!isReturn(r)) continue;
    const s = bucketStart(tsOf(r), q.period, tz);
    if (!returners.has(s)) returners.set(s, new Set());
    returners.get(s)?.add(userKey(r) as string);
  }

  const out: unknown[][] = [];
  for (const c of cohortStarts) {
    const cohort = members.get(c) as Set<string>;
    let s = c;
    for (let n = 0; n < q.periods; n++) {
      // A period that starts at or after `to`, or after now, has not been reached: no row.
      if (s >= frame.to || s > frame.now) break;
      let returned = 0;
      for (const u of cohort) if (returners.get(s)?.has(u)) returned++;
      out.push([
        new Date(c).toISOString(),
        cohort.size,
        n,
        returned,
        cohort.size === 0 ? null : returned / cohort.size,
      ]);
      s = nextBucket(s, q.period, tz);
    }
  }
  return out;
}
