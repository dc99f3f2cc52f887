/**
 * Funnels: per step, how many users reached it, how many went on, and how long they took. Answered from
 * the detail rows in one statement (funnel-sql.ts); here the statement's (group, step, entered, times)
 * rows become the answer's, with the ratios and the steps nobody reached filled in.
 */
import type { FunnelQuery } from '@tally/core';
import { type FunnelSqlRow, funnelStatement } from './funnel-sql.js';
import type { Cell, Column, KindAnswer, KindRunner } from './types.js';

function columns(query: FunnelQuery): Column[] {
  return [
    { name: 'step', type: 'number' },
    { name: 'event', type: 'string' },
    ...(query.breakdown ? [{ name: 'breakdown', type: 'string' } as const] : []),
    { name: 'entered', type: 'number' },
    { name: 'converted', type: 'number' },
    { name: 'dropped', type: 'number' },
    { name: 'conversion_from_first', type: 'number' },
    { name: 'conversion_from_previous', type: 'number' },
    { name: 'median_seconds', type: 'number' },
    { name: 'p90_seconds', type: 'number' },
  ];
}

const ratio = (a: number, b: number): number | null => (b === 0 ? null : a / b);

/** The rows of one group: every step, those nobody reached with zeros. */
function groupRows(query: FunnelQuery, found: FunnelSqlRow[], breakdown: Cell[]): Cell[][] {
  const n = query.steps.length;
  const entered = Array.from({ length: n }, (_, i) => found.find((r) => r.k === i + 1)?.entered ?? 0);
  return query.steps.map((step, i) => {
    const row = found.find((r) => r.k === i + 1);
    const e = entered[i] as number;
    const converted = i + 1 < n ? (entered[i + 1] as number) : e;
    return [
      i + 1,
      step.event,
      ...breakdown,
      e,
      converted,
      e - converted,
      ratio(e, entered[0] as number),
      i === 0 ? ratio(e, e) : ratio(e, entered[i - 1] as number),
      row?.pct?.[0] ?? null,
      row?.pct?.[1] ?? null,
    ];
  });
}

export const funnel: KindRunner<FunnelQuery> = async (query, ctx): Promise<KindAnswer> => {
  const { text, values } = funnelStatement(query, ctx);
  const found = await ctx.sql.query<FunnelSqlRow>(text, values);
  const groups = new Map<number, FunnelSqlRow[]>();
  for (const r of found) groups.set(r.rank, [...(groups.get(r.rank) ?? []), r]);
  let rows: Cell[][];
  if (!query.breakdown) {
    rows = groupRows(query, groups.get(1) ?? [], []);
  } else {
    rows = [...groups.values()].flatMap((g) => groupRows(query, g, [(g[0] as FunnelSqlRow).bd]));
  }
  const limit = query.breakdown?.limit ?? Infinity;
  const truncated = rows.length > ctx.maxRows || groups.has(limit + 1);
  return {
    columns: columns(query),
    rows: rows.slice(0, ctx.maxRows),
    source: 'detail',
    reason:
      "funnels follow each user's events in time order, which no rollup keeps: read from the detail rows (index on event name and time)",
    truncated,
  };
};
