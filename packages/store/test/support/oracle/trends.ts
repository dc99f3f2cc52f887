/**
 * Trends, brute force: loops over the stored rows, written from the semantics (docs/query.md "Trends"),
 * not from the SQL.
 *
 * - Each series: the tenant's events of its name (every name when it is null) passing all its filters, ts
 *   in the range.
 * - Measures: count; unique_users (distinct user id, else anonymous id; events with neither not
 *   counted); sum/avg/min/max/p50/p90/p95/p99 of the property's JSON numbers (other values ignored).
 *   Nothing to measure: 0 for count, unique_users and sum; null for the rest.
 * - Buckets: every bucket of the range in the query's zone.
 * - Breakdown: a value is a scalar's text (objects and arrays count as missing: null). Candidates: the
 *   values of every series' events in the range. Ranked by series A's total over the range (count:
 *   events; unique_users: distinct users; sum: the sum; the others: how many numbers), then by value in
 *   code-point order, null last; the first `limit` are groups, and "other" holds every other value's
 *   events when there is any. Each group's measure is taken over its own events.
 * - Compare: the same over [from − (to − from), from), its buckets paired with the range's by position.
 * - Formula: per bucket and group over the series' values; null operand, division by 0 → null.
 */
import {
  bucketsBetween,
  type FormulaNode,
  type Measure,
  parseFormula,
  parsePropertyPath,
  type TrendsQuery,
  type TrendsSeries,
} from '@tally/core';
import type { EventRow } from '../../../src/index.js';
import { bucketIso, matchesAll, percentileCont, textOf, tsOf, userKey, valueAt } from './common.js';

type Value = number | null;
type Cell = string | number | boolean | null;

function breakdownValue(row: EventRow, path: string): string | null {
  const v = valueAt(row, path);
  if (parsePropertyPath(path)?.root === 'column') return (v as string | undefined) ?? null;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return textOf(v);
  return null;
}

function numbersOf(rows: readonly EventRow[], s: TrendsSeries): number[] {
  const out: number[] = [];
  for (const r of rows) {
    const v = valueAt(r, s.property as string);
    if (typeof v === 'number') out.push(v);
  }
  return out;
}

function measure(rows: readonly EventRow[], s: TrendsSeries): Value {
  const m: Measure = s.measure;
  if (m === 'count') return rows.length;
  if (m === 'unique_users') {
    const users = new Set<string>();
    for (const r of rows) {
      const u = userKey(r);
      if (u !== undefined) users.add(u);
    }
    return users.size;
  }
  const xs = numbersOf(rows, s);
  if (m === 'sum') return xs.reduce((a, b) => a + b, 0);
  if (xs.length === 0) return null;
  if (m === 'avg') return xs.reduce((a, b) => a + b, 0) / xs.length;
  if (m === 'min') return Math.min(...xs);
  if (m === 'max') return Math.max(...xs);
  const sorted = [...xs].sort((a, b) => a - b);
  const q = { p50: 0.5, p90: 0.9, p95: 0.95, p99: 0.99 }[m];
  return percentileCont(sorted, q);
}

function weight(rows: readonly EventRow[], s: TrendsSeries): number {
  if (s.measure === 'count' || s.measure === 'unique_users' || s.measure === 'sum') return measure(rows, s) ?? 0;
  return numbersOf(rows, s).length;
}

function codePointCompare(a: string, b: string): number {
  const x = [...a].map((c) => c.codePointAt(0) as number);
  const y = [...b].map((c) => c.codePointAt(0) as number);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return x.length - y.length;
}

function evaluate(node: FormulaNode, values: readonly Value[]): Value {
  if (node.type === 'series') return values[node.index] ?? null;
  if (node.type === 'number') return node.value;
  if (node.type === 'neg') {
    const v = evaluate(node.arg, values);
    return v === null ? null : -v;
  }
  const l = evaluate(node.left, values);
  const r = evaluate(node.right, values);
  if (l === null || r === null) return null;
  let v: number;
  if (node.op === '+') v = l + r;
  else if (node.op === '-') v = l - r;
  else if (node.op === '*') v = l * r;
  else if (r === 0) return null;
  else v = l / r;
  return Number.isFinite(v) ? v : null;
}

export interface TrendsOracleAnswer {
  columns: string[];
  rows: Cell[][];
  /** A breakdown had more values than its limit. */
  other: boolean;
}

export function trendsOracle(
  stored: readonly EventRow[],
  tenant: string,
  query: TrendsQuery,
  range: { from: number; to: number },
): TrendsOracleAnswer {
  const { from, to } = range;
  const compare = query.compare === 'previous_period';
  const lo = from - (to - from);
  const b = query.breakdown;

  const eventsOf = (s: TrendsSeries, start: number, end: number): EventRow[] =>
    stored.filter(
      (r) =>
        r.tenantId === tenant &&
        (s.event === null || r.name === s.event) &&
        tsOf(r) >= start &&
        tsOf(r) < end &&
        matchesAll(r, s.filters),
    );
  const current = query.series.map((s) => eventsOf(s, from, to));
  const previous = query.series.map((s) => eventsOf(s, lo, from));

  // Breakdown groups.
  let top: (string | null)[] = [null];
  let other = false;
  if (b) {
    const candidates: (string | null)[] = [];
    for (const rows of current) {
      for (const r of rows) {
        const v = breakdownValue(r, b.property);
        if (!candidates.includes(v)) candidates.push(v);
      }
    }
    const a = query.series[0] as TrendsSeries;
    const weights = new Map(
      candidates.map((v) => [
        v,
        weight(
          (current[0] as EventRow[]).filter((r) => breakdownValue(r, b.property) === v),
          a,
        ),
      ]),
    );
    candidates.sort((x, y) => {
      const w = (weights.get(y) as number) - (weights.get(x) as number);
      if (w !== 0) return w;
      if (x === null) return 1;
      if (y === null) return -1;
      return codePointCompare(x, y);
    });
    top = candidates.slice(0, b.limit);
    other = candidates.length > b.limit;
  }
  const groups: { label: string | null; has: (r: EventRow) => boolean }[] = b
    ? top.map((v) => ({ label: v, has: (r: EventRow) => breakdownValue(r, b.property) === v }))
    : [{ label: null, has: () => true }];
  if (b && other) {
    groups.push({ label: 'other', has: (r) => !top.includes(breakdownValue(r, b.property)) });
  }

  const buckets = bucketsBetween(from, to, query.interval, query.tz).map((t) => new Date(t).toISOString());
  const prevBuckets = bucketsBetween(lo, from, query.interval, query.tz).map((t) => new Date(t).toISOString());
  // Each row's bucket, worked out once (core's bucketStart asks Intl, too slow to repeat per bucket).
  const bucketOf = new Map<EventRow, string>();
  for (const rows of [...current, ...previous]) {
    for (const r of rows) if (!bucketOf.has(r)) bucketOf.set(r, bucketIso(tsOf(r), query.interval, query.tz));
  }
  const valueIn = (rows: EventRow[], s: TrendsSeries, bucket: string, group: (r: EventRow) => boolean): Value =>
    measure(
      rows.filter((r) => bucketOf.get(r) === bucket && group(r)),
      s,
    );

  const formula = query.formula === undefined ? undefined : parseFormula(query.formula, query.series.length);
  if (formula && !formula.ok) throw new Error(formula.message);

  const columns = ['time', 'series', ...(b ? ['breakdown'] : []), 'value', ...(compare ? ['previous'] : [])];
  const rows: Cell[][] = [];
  for (let i = 0; i < buckets.length; i++) {
    const bucket = buckets[i] as string;
    const prevBucket = prevBuckets[i];
    const cur: Value[][] = query.series.map((s, k) =>
      groups.map((g) => valueIn(current[k] as EventRow[], s, bucket, g.has)),
    );
    const prev: (Value[] | undefined)[] = query.series.map((s, k) =>
      prevBucket === undefined
        ? undefined
        : groups.map((g) => valueIn(previous[k] as EventRow[], s, prevBucket, g.has)),
    );
    const row = (series: string, label: string | null, value: Value, before: Value): Cell[] => [
      bucket,
      series,
      ...(b ? [label] : []),
      value,
      ...(compare ? [before] : []),
    ];
    query.series.forEach((_, k) => {
      groups.forEach((g, gi) => {
        rows.push(row(String.fromCharCode(65 + k), g.label, cur[k]?.[gi] ?? null, prev[k]?.[gi] ?? null));
      });
    });
    if (formula?.ok) {
      groups.forEach((g, gi) => {
        const now = evaluate(
          formula.ast,
          cur.map((v) => v[gi] ?? null),
        );
        const before =
          prevBucket === undefined
            ? null
            : evaluate(
                formula.ast,
                prev.map((v) => v?.[gi] ?? null),
              );
        rows.push(row('formula', g.label, now, before));
      });
    }
  }
  return { columns, rows, other };
}
