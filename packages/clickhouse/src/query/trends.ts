/**
 * Trends on ClickHouse: series of a measure over time buckets, optionally by a property's top values,
 * against the previous period, with a formula across series. One statement measures: over the detail
 * rows (trends-sql.ts), or for plain counts over the hourly rollup of sealed days and the detail rows of
 * the others (trends-hourly.ts). Core's shapeTrends lays the answer out exactly as it does for the
 * Postgres engine.
 */
import { shapeTrends, type TrendsCell, type TrendsQuery, trendsRanges } from '@tally/core';
import { hourlyTrendsSql, planHourly } from './trends-hourly.js';
import { type TrendsRow, trendsSql } from './trends-sql.js';
import type { KindRunner } from './types.js';

export const trends: KindRunner<TrendsQuery> = async (query, ctx) => {
  const { lo } = trendsRanges(query, ctx.from, ctx.to);
  const frame = { db: ctx.db, tenantId: ctx.tenantId, from: ctx.from, to: ctx.to, lo };
  const hourly = await planHourly(query, ctx, frame);
  const sql = 'plan' in hourly ? hourlyTrendsSql(query, frame, hourly.plan) : trendsSql(query, frame);
  const rows = await ctx.client.query<TrendsRow>(sql, ctx.settings);
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
  return { ...shaped, source: 'plan' in hourly ? 'rollup' : 'detail', reason: hourly.reason };
};
