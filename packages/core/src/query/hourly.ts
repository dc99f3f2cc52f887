/**
 * Whether hourly rollups can answer a trends query, by its shape alone. Both engines keep counts per
 * UTC hour (Postgres at insert, ClickHouse for sealed days); such counts answer exactly when every
 * series is a plain count (no filters) and each UTC hour falls inside one bucket, which holds when every
 * bucket boundary, and the range's own ends, are whole UTC hours. Boundaries are checked one by one
 * rather than by the zone's offset: half-hour zones, and zones that change offset off the hour, fail it;
 * whole-hour DST changes pass it.
 */
import type { Interval, TrendsQuery } from './model.js';
import { bucketsBetween } from './time.js';
import { parsePropertyPath } from './validate.js';

export const HOUR = 3_600_000;

/** Top-level properties rolled up per hour and value, by event name: what a breakdown can be answered by. */
export type RollupDimensions = Readonly<Record<string, readonly string[]>>;

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

/** The ranges a trends query reads: its own and, with `compare`, the one of equal length just before it. */
export function trendsRanges(query: TrendsQuery, from: number, to: number): { from: number; to: number; lo: number } {
  return { from, to, lo: query.compare === 'previous_period' ? from - (to - from) : from };
}

const letter = (i: number) => String.fromCharCode(65 + i);

/**
 * Why hourly counts cannot answer `query` over [from, to) by its shape (measures, filters, buckets), or
 * undefined when they can.
 */
export function hourlyRefusal(query: TrendsQuery, from: number, to: number): string | undefined {
  for (const [i, s] of query.series.entries()) {
    if (s.measure !== 'count') {
      return `series ${letter(i)} measures ${s.measure}, which the hourly rollups do not hold: read from the detail rows`;
    }
    const f = s.filters[0];
    if (f) return `a filter on ${f.property} (series ${letter(i)}) needs the detail rows`;
  }
  const r = trendsRanges(query, from, to);
  if (firstOffHour([r.lo, r.from, r.to]) !== undefined) {
    return 'the range does not start and end on whole UTC hours, which the hourly rollups cannot split: read from the detail rows';
  }
  const spans: [number, number][] =
    r.lo === r.from
      ? [[r.from, r.to]]
      : [
          [r.lo, r.from],
          [r.from, r.to],
        ];
  for (const [start, end] of spans) {
    const off = bucketBoundaryOffHour(start, end, query.interval, query.tz);
    if (off !== undefined) {
      return `${query.interval} buckets in ${query.tz} start off the UTC hour (${new Date(off).toISOString()}), which the hourly rollups cannot split: read from the detail rows`;
    }
  }
  return undefined;
}

/** The top-level property key a breakdown names, when it is one (`properties.plan` → `plan`). */
export function topLevelKey(path: string): string | undefined {
  const parsed = parsePropertyPath(path);
  return parsed && parsed.root === 'properties' && parsed.keys.length === 1 ? parsed.keys[0] : undefined;
}

/** The dimensions declared for an event name (own keys only: `constructor` is an event name too). */
export function declaredDimensions(dimensions: RollupDimensions, name: string): readonly string[] {
  const keys = Object.hasOwn(dimensions, name) ? dimensions[name] : undefined;
  return Array.isArray(keys) ? keys : [];
}
