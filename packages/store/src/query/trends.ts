/**
 * Trends: series of a measure over time buckets, optionally by a property's top values, against the
 * previous period, with a formula across series. planTrends picks the source (trends-plan.ts), one
 * statement answers (trends-sql.ts), core's shapeTrends lays the answer out.
 */
import { shapeTrends, type TrendsCell, type TrendsQuery } from '@tally/core';
import { Params } from './sql.js';
import { planTrends, type TrendsPlan, trendsRanges } from './trends-plan.js';
import { detailSql, dimensionSql, hourlySql } from './trends-sql.js';
import type { KindAnswer, KindRunner, QueryContext } from './types.js';

/** The answer from the source `plan` names (exported so that tests can force each source). */
export async function answerTrends(query: TrendsQuery, ctx: QueryContext, plan: TrendsPlan): Promise<KindAnswer> {
  const range = trendsRanges(query, ctx);
  const p = new Params();
  const text =
    plan.source === 'detail'
      ? detailSql(query, ctx, range.lo, p)
      : plan.table === 'event_counts_hourly'
        ? hourlySql(query, ctx, range.lo, p)
        : dimensionSql(query, ctx, range.lo, plan.key, p);
  const cells = await ctx.sql.query<TrendsCell>(text, p.values);
  const shaped = shapeTrends(query, range, cells, ctx.maxRows);
  return { ...shaped, source: plan.source, reason: plan.reason };
}

export const trends: KindRunner<TrendsQuery> = async (query, ctx) =>
  answerTrends(query, ctx, await planTrends(query, ctx));
