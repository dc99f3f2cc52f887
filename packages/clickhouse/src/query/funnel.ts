/**
 * Funnels on ClickHouse: one statement (funnel-sql.ts: each user's events as one sorted array, followed
 * with array functions) answers per group the users reaching each step and the order statistics of
 * their times to convert; core shapes them into a row per step with the ratios, as on Postgres.
 */
import { type Cell, type FunnelQuery, funnelColumns, funnelGroupRows, percentileContAt } from '@tally/core';
import { FUNNEL_PERCENTILES, type FunnelSqlRow, funnelStatement } from './funnel-sql.js';
import type { KindAnswer, KindRunner } from './types.js';

/** The statement's row as core's group: counts, and each percentile interpolated from its two values. */
function groupOf(query: FunnelQuery, row: FunnelSqlRow) {
  const entered = query.steps.map((_, k) => Number(row[`e${k}`] ?? 0));
  const times = query.steps.map((_, k) => {
    if (k === 0) return null;
    const picks = (row[`s${k}`] as number[] | undefined) ?? [];
    const count = entered[k] as number;
    const [median, p90] = FUNNEL_PERCENTILES.map((p, i) => {
      const lo = Math.floor(p * (count - 1));
      // Seconds as the brute-force evaluator makes them (ms / 1000), then percentile_cont's arithmetic.
      return percentileContAt(count, p, (index) => Number(picks[index === lo ? 2 * i : 2 * i + 1]) / 1000);
    });
    return [median ?? null, p90 ?? null] as const;
  });
  return { entered, times };
}

/** A breakdown value as the statement carries it: '' for none, else 'v' and the text. */
const breakdownValue = (bd: string): string | null => (bd === '' ? null : bd.slice(1));

export const funnel: KindRunner<FunnelQuery> = async (query, ctx): Promise<KindAnswer> => {
  const groups = await ctx.client.query<FunnelSqlRow>(funnelStatement(query, ctx), ctx.settings);
  const limit = query.breakdown?.limit ?? 0;
  let rows: Cell[][];
  if (query.breakdown) {
    rows = groups.flatMap((g) =>
      funnelGroupRows(query, groupOf(query, g), [Number(g.rank) > limit ? 'other' : breakdownValue(g.bd)]),
    );
  } else {
    // One group, all zeros when nobody entered.
    const g = groups[0];
    rows = funnelGroupRows(query, g && groupOf(query, g), []);
  }
  const other = query.breakdown !== undefined && groups.some((g) => Number(g.rank) === limit + 1);
  return {
    columns: funnelColumns(query),
    rows: rows.slice(0, ctx.maxRows),
    source: 'detail',
    reason:
      "funnels follow each user's events in time order, which no rollup keeps: read from the detail rows (each user's events as one sorted array)",
    truncated: rows.length > ctx.maxRows || other,
  };
};
