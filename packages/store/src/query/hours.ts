/**
 * Whether the hourly rollups can answer by a query's time buckets: each UTC hour of a rollup must fall
 * inside one bucket, which holds exactly when every bucket boundary is a whole UTC hour. Boundaries are
 * checked one by one rather than by the zone's offset: half-hour zones, and zones that change offset off
 * the hour, fail it; whole-hour DST changes pass it.
 */
import { bucketsBetween, type Interval } from '@tally/core';

export const HOUR = 3_600_000;

/** The first of `instants` (epoch ms) that is not a whole UTC hour, or undefined when all are. */
export function firstOffHour(instants: Iterable<number>): number | undefined {
  for (const t of instants) if (t % HOUR !== 0) return t;
  return undefined;
}

/**
 * The first boundary between `interval` buckets in `tz` inside [from, to) that is not a whole UTC hour, or
 * undefined when all are (the range's own ends are the caller's to check).
 */
export function bucketBoundaryOffHour(from: number, to: number, interval: Interval, tz: string): number | undefined {
  return firstOffHour(bucketsBetween(from, to, interval, tz).slice(1));
}
