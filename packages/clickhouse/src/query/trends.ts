/**
 * Trends on ClickHouse: series of a measure over time buckets, optionally by a property's top values,
 * against the previous period, with a formula across series. One statement measures (trends-sql.ts);
 * core's shapeTrends lays the answer out exactly as it does for the Postgres engine.
 */
import { shapeTrends, type TrendsCell, type TrendsQuery } from '@tally/core';
import { type TrendsRow, trendsSql } from './trends-sql.js';
import type { KindRunner } from './types.js';

const letter = (i: number) => String.fromCharCode(65 + i);

/** Why the detail rows, in words: the store keeps no rollups (see store.ts). */
function reason(query: TrendsQuery): string {
  const what = query.series.map((s, i) => `${letter(i)} ${s.measure}`).join(', ');
  const by = query.breakdown ? ` by ${query.breakdown.property}` : '';
  return `series ${what} by ${query.interval} in ${query.tz}${by}: measured from the detail rows in one scan (the ClickHouse store keeps no rollups; every answer is computed from the stored events)`;
}

export const trends: KindRunner<TrendsQuery> = async (query, ctx) => {
  const lo = query.compare === 'previous_period' ? ctx.from - (ctx.to - ctx.from) : ctx.from;
  const frame = { db: ctx.db, tenantId: ctx.tenantId, from: ctx.from, to: ctx.to, lo };
  const rows = await ctx.client.query<TrendsRow>(trendsSql(query, frame), ctx.settings);
  const cells: TrendsCell[] = [];
  for (const r of rows) {
    const b = new Date(Number(r.b)).toISOString();
    const p = Number(r.p) === 1;
    const rank = Number(r.rank);
    for (let s = 0; s < query.series.length; s++) {
      cells.push({ s, p, b, rank, g: r.g, v: r[`v${s}`] ?? null });
    }
  }
  const shaped = shapeTrends(query, { from: ctx.from, to: ctx.to, lo }, cells, ctx.maxRows);
  return { ...shaped, source: 'detail', reason: reason(query) };
};
