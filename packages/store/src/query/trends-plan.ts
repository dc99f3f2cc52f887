/**
 * Where a trends query is answered from, and why. The hourly rollups hold counts per UTC hour: they answer
 * a query exactly when every series is a plain count (no filters), when each of its buckets is a whole
 * number of UTC hours, and — for a breakdown — when the property is a rolled-up dimension complete over
 * the range. Everything else reads the detail rows.
 */
import { parsePropertyPath, type TrendsQuery } from '@tally/core';
import { bucketBoundaryOffHour, firstOffHour } from './hours.js';
import { isoSql } from './sql.js';
import type { QueryContext } from './types.js';

export type TrendsPlan =
  | { source: 'detail'; reason: string }
  | { source: 'rollup'; table: 'event_counts_hourly'; reason: string }
  | { source: 'rollup'; table: 'event_props_hourly'; key: string; reason: string };

const letter = (i: number) => String.fromCharCode(65 + i);

/** The ranges a query reads: its own and, with `compare`, the one of equal length just before it. */
export function trendsRanges(query: TrendsQuery, ctx: QueryContext): { from: number; to: number; lo: number } {
  const lo = query.compare === 'previous_period' ? ctx.from - (ctx.to - ctx.from) : ctx.from;
  return { from: ctx.from, to: ctx.to, lo };
}

/**
 * Why the rollups cannot answer by their shape alone (measures, filters, buckets), or undefined when they
 * can: every bucket boundary inside the range, and the range's own ends, must be whole UTC hours (hours.ts).
 */
function shapeRefusal(query: TrendsQuery, ctx: QueryContext): string | undefined {
  for (const [i, s] of query.series.entries()) {
    if (s.measure !== 'count') {
      return `series ${letter(i)} measures ${s.measure}, which the hourly rollups do not hold: read from the detail rows`;
    }
    const f = s.filters[0];
    if (f) return `a filter on ${f.property} (series ${letter(i)}) needs the detail rows`;
  }
  const { lo, from, to } = trendsRanges(query, ctx);
  if (firstOffHour([lo, from, to]) !== undefined) {
    return 'the range does not start and end on whole UTC hours, which the hourly rollups cannot split: read from the detail rows';
  }
  for (const [start, end] of lo === from
    ? [[from, to]]
    : [
        [lo, from],
        [from, to],
      ]) {
    const off = bucketBoundaryOffHour(start!, end!, query.interval, query.tz);
    if (off !== undefined) {
      return `${query.interval} buckets in ${query.tz} start off the UTC hour (${new Date(off).toISOString()}), which the hourly rollups cannot split: read from the detail rows`;
    }
  }
  return undefined;
}

/** The top-level property key a breakdown names, when it is one (`properties.plan` → `plan`). */
function topLevelKey(path: string): string | undefined {
  const parsed = parsePropertyPath(path);
  return parsed && parsed.root === 'properties' && parsed.keys.length === 1 ? parsed.keys[0] : undefined;
}

/** The dimensions declared for an event name (own keys only: `constructor` is an event name too). */
function declared(ctx: QueryContext, name: string): readonly string[] {
  const keys = Object.hasOwn(ctx.dimensions, name) ? ctx.dimensions[name] : undefined;
  return Array.isArray(keys) ? keys : [];
}

/** Picks the source: the cheapest that answers exactly. Reads rollup_dimensions for a breakdown. */
export async function planTrends(query: TrendsQuery, ctx: QueryContext): Promise<TrendsPlan> {
  const refusal = shapeRefusal(query, ctx);
  if (refusal) return { source: 'detail', reason: refusal };
  const what = `counts by ${query.interval} in ${query.tz}`;
  const b = query.breakdown;
  if (!b) {
    return {
      source: 'rollup',
      table: 'event_counts_hourly',
      reason: `${what}, every bucket whole UTC hours: summed from the hourly rollup`,
    };
  }
  if (query.series.some((s) => s.event === null)) {
    return {
      source: 'detail',
      reason: `a breakdown of all events by ${b.property} needs the detail rows: the per-value rollup holds the catalog's declared events only`,
    };
  }
  const names = [...new Set(query.series.map((s) => s.event as string))];
  const key = topLevelKey(b.property);
  const undeclared = names.find((n) => key === undefined || !declared(ctx, n).includes(key));
  if (key === undefined || undeclared !== undefined) {
    return {
      source: 'detail',
      reason: `a breakdown by ${b.property} needs the detail rows: it is not a rolled-up dimension of ${undeclared ?? names[0]}`,
    };
  }
  // The rollup holds every event of a (name, key) only from complete_from on (see migration 005).
  const { lo } = trendsRanges(query, ctx);
  const rows = await ctx.sql.query<{ name: string; complete: boolean; since: string | null }>(
    `SELECT name, complete_from <= $3::timestamptz AS complete,
            CASE WHEN isfinite(complete_from) THEN ${isoSql('complete_from')} END AS since
       FROM rollup_dimensions WHERE name = ANY($1::text[]) AND key = $2`,
    [names, key, new Date(lo).toISOString()],
  );
  for (const name of names) {
    const row = rows.find((r) => r.name === name);
    if (!row?.complete) {
      const since = row?.since ? `complete only from ${row.since}` : 'not rolled up yet';
      return {
        source: 'detail',
        reason: `the rollup of ${b.property} for ${name} is ${since}, after the range starts: read from the detail rows`,
      };
    }
  }
  return {
    source: 'rollup',
    table: 'event_props_hourly',
    key,
    reason: `${what} by ${b.property}, a rolled-up dimension complete over the range: summed from the hourly per-value rollup`,
  };
}
