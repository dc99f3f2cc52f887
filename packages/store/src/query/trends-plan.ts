/**
 * Where a trends query is answered from, and why. The hourly rollups hold counts per UTC hour: they answer
 * a query exactly when its shape allows (core's hourlyRefusal) and — for a breakdown — when the property
 * is a rolled-up dimension complete over the range. Everything else reads the detail rows.
 */
import {
  declaredDimensions,
  hourlyRefusal,
  topLevelKey,
  type TrendsQuery,
  trendsRanges as rangesOf,
} from '@tally/core';
import { isoSql } from './sql.js';
import type { QueryContext } from './types.js';

export type TrendsPlan =
  | { source: 'detail'; reason: string }
  | { source: 'rollup'; table: 'event_counts_hourly'; reason: string }
  | { source: 'rollup'; table: 'event_props_hourly'; key: string; reason: string };

/** The ranges a query reads: its own and, with `compare`, the one of equal length just before it. */
export const trendsRanges = (query: TrendsQuery, ctx: QueryContext) => rangesOf(query, ctx.from, ctx.to);

/** Picks the source: the cheapest that answers exactly. Reads rollup_dimensions for a breakdown. */
export async function planTrends(query: TrendsQuery, ctx: QueryContext): Promise<TrendsPlan> {
  const refusal = hourlyRefusal(query, ctx.from, ctx.to);
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
  const undeclared = names.find((n) => key === undefined || !declaredDimensions(ctx.dimensions, n).includes(key));
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
