/**
 * A trends answer from an engine's cells, the same on every engine: every bucket of the range, every
 * series (and the formula), every breakdown group, in long format; the previous period aligned bucket by
 * bucket by index; formulas evaluated here over the series' values. Engines only measure: each answers
 * one cell per (series, period, bucket, breakdown group) that has events.
 */
import { parseFormula, type FormulaNode } from './formula.js';
import type { Measure, TrendsQuery } from './model.js';
import type { Cell, Column } from './result.js';
import { bucketsBetween } from './time.js';

/** One measured cell of a trends answer. */
export interface TrendsCell {
  /** The series' index. */
  s: number;
  /** True for the previous period (compare), false for the queried range. */
  p: boolean;
  /** The bucket's start, ISO (UTC, ms). */
  b: string;
  /** The breakdown group: 1… for the top values in order, 0 for "other" (1 without a breakdown). */
  rank: number;
  /** The group's value (the top value itself; null for "other" and without a breakdown). */
  g: string | null;
  /** The measure (numbers may come as text from a driver); null when there was nothing to measure. */
  v: number | string | null;
}

type Value = number | null;

/** A bucket without events: nothing counted is 0; an average (min, max, percentile) of nothing is null. */
const emptyValue = (m: Measure): Value => (m === 'count' || m === 'unique_users' || m === 'sum' ? 0 : null);

/** The formula over one bucket's values: null when an operand is null, a divisor is 0, or it overflows. */
export function evaluateFormula(node: FormulaNode, values: readonly Value[]): Value {
  switch (node.type) {
    case 'series':
      return values[node.index] ?? null;
    case 'number':
      return node.value;
    case 'neg': {
      const v = evaluateFormula(node.arg, values);
      return v === null ? null : -v;
    }
    case 'binary': {
      const l = evaluateFormula(node.left, values);
      const r = evaluateFormula(node.right, values);
      if (l === null || r === null) return null;
      if (node.op === '/' && r === 0) return null;
      const v = node.op === '+' ? l + r : node.op === '-' ? l - r : node.op === '*' ? l * r : l / r;
      return Number.isFinite(v) ? v : null;
    }
  }
}

interface Group {
  rank: number;
  label: string | null;
}

/**
 * The breakdown groups in order: the top values by rank, then "other" when the range had events of any
 * other value. A top value always has events in the range (that is how it got ranked), so the range's
 * cells name them all.
 */
function groupsOf(query: TrendsQuery, cells: readonly TrendsCell[]): { groups: Group[]; other: boolean } {
  if (!query.breakdown) return { groups: [{ rank: 1, label: null }], other: false };
  const labels = new Map<number, string | null>();
  let other = false;
  for (const c of cells) {
    if (c.p) continue;
    if (c.rank === 0) other = true;
    else labels.set(c.rank, c.g);
  }
  const groups = [...labels].sort((a, b) => a[0] - b[0]).map(([rank, label]) => ({ rank, label }));
  if (other) groups.push({ rank: 0, label: 'other' });
  return { groups, other };
}

export interface ShapedTrends {
  columns: Column[];
  rows: Cell[][];
  truncated: boolean;
}

export function shapeTrends(
  query: TrendsQuery,
  range: { from: number; to: number; lo: number },
  cells: readonly TrendsCell[],
  maxRows: number,
): ShapedTrends {
  const compare = query.compare === 'previous_period';
  const buckets = bucketsBetween(range.from, range.to, query.interval, query.tz).map((t) => new Date(t).toISOString());
  const prevBuckets = compare
    ? bucketsBetween(range.lo, range.from, query.interval, query.tz).map((t) => new Date(t).toISOString())
    : [];
  const index = [new Map(buckets.map((b, i) => [b, i])), new Map(prevBuckets.map((b, i) => [b, i]))];
  const { groups, other } = groupsOf(query, cells);
  const groupIndex = new Map(groups.map((g, i) => [g.rank, i]));

  // values[period][series][group][bucket]
  const values = [buckets, prevBuckets].map((bs) =>
    query.series.map((s) => groups.map(() => bs.map(() => emptyValue(s.measure)))),
  );
  for (const c of cells) {
    const gi = groupIndex.get(c.rank);
    // The previous period's events of values outside the top are "other" only if the range has one.
    if (gi === undefined) continue;
    const period = c.p ? 1 : 0;
    const bi = index[period]!.get(c.b);
    // The engine's buckets and bucketsBetween must agree: a stray one is a bug, not data.
    if (bi === undefined) throw new Error(`trends: bucket ${c.b} is not a bucket of the range`);
    const measure = query.series[c.s]!.measure;
    values[period]![c.s]![gi]![bi] = c.v === null ? emptyValue(measure) : Number(c.v);
  }

  const letters = query.series.map((_, i) => String.fromCharCode(65 + i));
  const parsed = query.formula === undefined ? undefined : parseFormula(query.formula, query.series.length);
  if (parsed && !parsed.ok) throw new Error(`trends: a validated formula does not parse: ${parsed.message}`);
  const formula = parsed?.ast;
  const at = (period: number, gi: number, bi: number): Value[] => values[period]!.map((s) => s[gi]![bi] ?? null);

  const columns: Column[] = [
    { name: 'time', type: 'time' },
    { name: 'series', type: 'string' },
    ...(query.breakdown ? [{ name: 'breakdown', type: 'string' as const }] : []),
    { name: 'value', type: 'number' },
    ...(compare ? [{ name: 'previous', type: 'number' as const }] : []),
  ];
  const rows: Cell[][] = [];
  const push = (time: string, series: string, group: Group, value: Value, previous: Value) => {
    const row: Cell[] = [time, series];
    if (query.breakdown) row.push(group.label);
    row.push(value);
    if (compare) row.push(previous);
    rows.push(row);
  };
  // Previous-period buckets pair with the range's by position; past the end of the shorter list, null.
  const hasPrev = (bi: number) => bi < prevBuckets.length;
  for (const [bi, time] of buckets.entries()) {
    for (const [k, letter] of letters.entries()) {
      for (const [gi, group] of groups.entries()) {
        push(time, letter, group, values[0]![k]![gi]![bi]!, hasPrev(bi) ? values[1]![k]![gi]![bi]! : null);
      }
    }
    if (formula) {
      for (const [gi, group] of groups.entries()) {
        const value = evaluateFormula(formula, at(0, gi, bi));
        push(time, 'formula', group, value, hasPrev(bi) ? evaluateFormula(formula, at(1, gi, bi)) : null);
      }
    }
  }
  const cut = rows.length > maxRows;
  return { columns, rows: cut ? rows.slice(0, maxRows) : rows, truncated: cut || other };
}
