/**
 * The SQL of a trends query on ClickHouse: one statement, one scan of the events the series select.
 *
 * Every series is measured in the same GROUP BY (period, bucket, breakdown group), each with its own
 * `-If` aggregate over the rows its name and filters select, so a row read once serves every series
 * that wants it (Postgres unions a branch per series; here the sorting key (tenant_id, name, ts_ms)
 * narrows the read to the series' names and range either way). The statement answers one row per
 * (p, b, rank) with a column `v<k>` per series; trends.ts unpivots it into core's TrendsCell.
 *
 * A breakdown of counts, sums, averages and extremes is measured in the same single scan, in two steps
 * (mergedSql): partial aggregates per (period, bucket, value), which the statement ranks and merges
 * into the top values and "other" without reading a row twice. Distinct users and percentiles do not
 * merge from small partials: their values are ranked first, in a scalar subquery (rankedSql). Either
 * way the missing value is a (missing, '') pair like any other, so it ranks and groups as SQL null does
 * on Postgres, and no breakdown value is ever written into the SQL text: they come back with the answer.
 */
import { type Measure, parsePropertyPath, type TrendsQuery, type TrendsSeries } from '@tally/core';
import { T } from '../rows.js';
import { int, num, str } from '../sql.js';
import {
  filterSql,
  nameSql,
  numberSql,
  partitionRangeSql,
  pathSql,
  rangeSql,
  USER_KEY,
  zoneBucketsSql,
  type ZoneBucketsSql,
} from './sql.js';

/** A row of the statement: period, bucket start (epoch ms), group rank and label, and v0…v(n-1). */
export interface TrendsRow {
  p: number;
  b: number;
  rank: number;
  g: string | null;
  [measure: `v${number}`]: number | null;
}

/** A half-open range of epoch ms. */
export type Span = readonly [number, number];

export interface TrendsFrame {
  db: string;
  tenantId: string;
  /** The queried range, and the start of what is read (the previous period's with compare). */
  from: number;
  to: number;
  lo: number;
}

/**
 * A breakdown value: whether it is missing, and its text. Columns are missing when empty (rows.ts stores
 * absent ids as ''); a property is missing unless it is a JSON string, number or boolean (objects and
 * arrays group with the missing value, as on Postgres), and its text is as rows.ts stored it.
 */
function groupSql(path: string): { missing: string; text: string } {
  const p = pathSql(path);
  if (parsePropertyPath(path)?.root === 'column') return { missing: `${p.type} = 0`, text: p.text };
  const missing = `${p.type} NOT IN (${T.string}, ${T.number}, ${T.boolean})`;
  return { missing, text: `if(${missing}, '', ${p.text})` };
}

const PERCENTILES: Partial<Record<Measure, number>> = { p50: 0.5, p90: 0.9, p95: 0.95, p99: 0.99 };

/**
 * A percentile interpolated linearly between the two nearest of the sorted values `xs` (Postgres'
 * percentile_cont): ClickHouse's quantile functions sample or pick one value. The arithmetic is the
 * evaluator's, step for step, so both give the same double.
 */
function percentileSql(q: number, xs: string): string {
  const n = `toInt64(length(${xs}))`;
  const pos = `(${num(q)} * (${n} - 1))`;
  // Clamped at 0: with no values the index is never used, but is still computed.
  const at = (i: string) => `${xs}[toUInt64(greatest(${i}, 0)) + 1]`;
  const lo = at(`floor(${pos})`);
  const hi = at(`ceil(${pos})`);
  return `if(${n} = 0, NULL, ${lo} + (${hi} - ${lo}) * (${pos} - floor(${pos})))`;
}

/** Series k's measure over the rows of its group where `c<k>` holds (x<k>: its number, u: the user). */
export function measureSql(s: TrendsSeries, k: number): string {
  const c = `c${k}`;
  const x = `x${k}`;
  switch (s.measure) {
    case 'count':
      return `countIf(${c})`;
    case 'unique_users':
      return `uniqExactIf(u, ${c})`;
    default: {
      const q = PERCENTILES[s.measure];
      if (q !== undefined) return percentileSql(q, `arraySort(groupArrayIf(${x}, ${c}))`);
      // min of no values is 0 on 18.16, avg nan: nothing to measure is null, said here.
      return `if(countIf(${c} AND ${x} IS NOT NULL) = 0, NULL, ${s.measure}If(${x}, ${c}))`;
    }
  }
}

/**
 * Measures whose partials per value are a number or two that merge (counts, sums, extremes): a
 * breakdown of only these is ranked and merged in the same scan (mergedSql). Distinct users and
 * percentiles would carry every user or value through the merge: those rank first (rankedSql).
 */
const MERGEABLE: ReadonlySet<Measure> = new Set(['count', 'sum', 'avg', 'min', 'max']);

/**
 * A mergeable measure in two steps: partial aggregates per (period, bucket, value), then merged per
 * (period, bucket, group), since "other" is measured over all its values' events together (not summed
 * from their measures). `partials` are aggregates over the rows; `merge` the aggregate over a group's
 * partials (`at(j)`: the j-th); `weight` series A's ranking weight (see weightSql) over a value's
 * partials (`of(j)`: the j-th), of the queried range only (`p = 0`).
 */
interface TwoStep {
  partials: string[];
  merge: (at: (j: number) => string) => string;
  weight: (of: (j: number) => string) => string;
}

function twoStep(s: TrendsSeries, k: number): TwoStep {
  const c = `c${k}`;
  const x = `x${k}`;
  const numbers = `countIf(${c} AND ${x} IS NOT NULL)`;
  const counted = (of: (j: number) => string) => `sumIf(${of(1)}, p = 0)`;
  switch (s.measure) {
    case 'count':
      return {
        partials: [`toInt64(countIf(${c}))`],
        merge: (at) => `sum(${at(0)})`,
        weight: (of) => `sumIf(${of(0)}, p = 0)`,
      };
    case 'sum':
      return {
        partials: [`sumIf(${x}, ${c})`, numbers],
        merge: (at) => `sum(${at(0)})`,
        weight: (of) => `ifNull(sumIf(${of(0)}, p = 0), 0)`,
      };
    case 'avg':
      return {
        partials: [`sumIf(${x}, ${c})`, numbers],
        merge: (at) => `if(sum(${at(1)}) = 0, NULL, sum(${at(0)}) / sum(${at(1)}))`,
        weight: counted,
      };
    case 'min':
    case 'max':
      return {
        partials: [`if(${numbers} = 0, NULL, ${s.measure}If(${x}, ${c}))`, numbers],
        merge: (at) => `if(sum(${at(1)}) = 0, NULL, ${s.measure}(${at(0)}))`,
        weight: counted,
      };
    default:
      throw new Error(`trends: ${s.measure} is not merged from partials`);
  }
}

/**
 * What ranks a breakdown value: series A's total over the queried range — its count, its sum, its
 * distinct users; for avg, min, max and percentiles the number of values they are taken over.
 */
function weightSql(s: TrendsSeries): string {
  switch (s.measure) {
    case 'count':
      return 'countIf(c0)';
    case 'unique_users':
      return 'uniqExactIf(u, c0)';
    case 'sum':
      return 'ifNull(sumIf(x0, c0), 0)';
    default:
      return 'countIf(c0 AND x0 IS NOT NULL)';
  }
}

/** Each series' condition on a row: its name (none for all events) and its filters; `1` when it has neither. */
function conditionSql(s: TrendsSeries): string {
  const terms = [...(s.event === null ? [] : [nameSql(s.event)]), ...s.filters.map(filterSql)];
  return terms.length === 0 ? '1' : `(${terms.join(' AND ')})`;
}

/**
 * The rows in `spans` (half-open ranges of epoch ms) some series selects, with what the measures read:
 * c<k> (series k selects it), x<k> (its number), u (the user) and the breakdown pair (gm, gv). The WHERE
 * names the series' events first, so that the sorting key's index narrows the read.
 */
export function rowsSql(query: TrendsQuery, f: TrendsFrame, spans: readonly Span[], extra: string[]): string {
  const where = [`tenant_id = ${str(f.tenantId)}`];
  const named = query.series.every((s) => s.event !== null);
  if (named) {
    where.push(`name IN (${[...new Set(query.series.map((s) => s.event as string))].map(str).join(', ')})`);
  }
  const ranges = spans.map(([a, b]) => `${rangeSql(a, b)} AND ${partitionRangeSql(a, b)}`);
  where.push(ranges.length === 1 ? (ranges[0] as string) : `((${ranges.join(') OR (')}))`);
  const conditions = query.series.map(conditionSql);
  // Rows no series selects are left out: needed only when a series has filters (the names are above),
  // and never when one series selects every row. The conditions are written out again, not named by
  // their aliases: 18.16's server crashes (a null pointer while it names columns) on `WHERE a AND c0`
  // when c0 is the alias of an AND.
  const filtered = query.series.some((s) => s.filters.length > 0);
  if (filtered && !conditions.includes('1')) where.push(`(${conditions.join(' OR ')})`);
  // One series selects exactly the rows the WHERE does: its condition need not be tested row by row.
  if (query.series.length === 1) conditions[0] = '1';
  const columns = [
    ...conditions.map((c, k) => `${c} AS c${k}`),
    ...query.series.flatMap((s, k) => (s.property ? [`${numberSql(s.property)} AS x${k}`] : [])),
    ...(query.series.some((s) => s.measure === 'unique_users') ? [`${USER_KEY} AS u`] : []),
    ...extra,
  ];
  if (query.breakdown) {
    const g = groupSql(query.breakdown.property);
    columns.push(`toUInt8(${g.missing}) AS gm`, `${g.text} AS gv`);
  }
  return `SELECT ${columns.join(', ')} FROM ${f.db}.events WHERE ${where.join(' AND ')}`;
}

/** A breakdown's partial aggregates per (period, bucket, value) over the detail rows in `spans`. */
export function partialsSql(
  query: TrendsQuery,
  f: TrendsFrame,
  spans: readonly Span[],
  buckets: ZoneBucketsSql,
): string {
  const partials = query.series.map(twoStep).flatMap((st, k) => st.partials.map((e, j) => `${e} AS a${k}_${j}`));
  const extra = [`${periodSql(f)} AS p`, `${buckets.key} AS k`];
  return `SELECT p, k, gm, gv, ${partials.join(', ')}
              FROM (${rowsSql(query, f, spans, extra)})
              GROUP BY p, k, gm, gv`;
}

/**
 * A breakdown of mergeable measures from `partials`, rows of (p, k, gm, gv, a<k>_<j>…): per value, its
 * weight and its cells; all values in one array, the queried range's ranked by weight, then by value in
 * byte order of UTF-8 (code-point order), the missing value last, and those of the previous period only
 * after them (never a group of their own); each value's cells unfolded with its rank (0 past `limit`:
 * "other") and merged per (period, bucket, rank). A value may have two partials of one (p, k) (from the
 * detail rows and from the hourly rollup): the merges and the weights add them up.
 */
export function mergedSql(query: TrendsQuery, limit: number, buckets: ZoneBucketsSql, partials: string): string {
  const steps = query.series.map(twoStep);
  const names = steps.flatMap((st, k) => st.partials.map((_, j) => `a${k}_${j}`));
  // A cell: (p, k, a0_0, a0_1, …); a partial's place in it is 3 + its index among all partials.
  const place = (k: number, j: number) => 3 + names.indexOf(`a${k}_${j}`);
  const merges = steps.map((st, k) => `${st.merge((j) => `c.${place(k, j)}`)} AS v${k}`);
  const weight = steps[0]!.weight((j) => `a0_${j}`);
  const n = int(limit);
  return `SELECT c.1 AS p, ${buckets.start('c.2')} AS b, rank, any(label) AS g, ${merges.join(', ')}
    FROM (
      SELECT t.1 AS rank, t.2 AS label, t.3 AS cells
      FROM (
        SELECT arrayJoin(arrayConcat(
          arrayMap((x, i) -> (toUInt32(if(i <= ${n}, i, 0)), if(i <= ${n} AND x.2 = 0, toNullable(x.3), NULL), x.4),
                   ranked, arrayEnumerate(ranked)),
          arrayMap(cs -> (toUInt32(0), CAST(NULL AS Nullable(String)), cs), rest))) AS t
        FROM (
          SELECT arraySort(x -> (-x.1, x.2, x.3), groupArrayIf((w, gm, gv, cells), cur = 1)) AS ranked,
                 groupArrayIf(cells, cur = 0) AS rest
          FROM (
            SELECT gm, gv, max(p = 0) AS cur, toFloat64(${weight}) AS w, groupArray((p, k, ${names.join(', ')})) AS cells
            FROM (
              ${partials}
            )
            GROUP BY gm, gv
          )
        )
      )
    )
    ARRAY JOIN cells AS c
    GROUP BY p, b, rank`;
}

/**
 * A breakdown with distinct users or percentiles: the top values first, in a scalar subquery over the
 * queried range (the same order as mergedSql's), as an array of (missing, text) pairs; then each row's
 * group is its value's position in it (0: "other"), and every series is measured per (period, bucket,
 * group) over its rows. The rows are read twice, but no user or value is carried through a merge.
 */
function rankedSql(query: TrendsQuery, f: TrendsFrame, limit: number, buckets: ZoneBucketsSql): string {
  const top = `(SELECT groupArray((gm, gv)) FROM (
      SELECT gm, gv, toFloat64(${weightSql(query.series[0]!)}) AS w
      FROM (${rowsSql(query, f, [[f.from, f.to]], [])})
      GROUP BY gm, gv
      ORDER BY w DESC, gm ASC, gv ASC
      LIMIT ${int(limit)}))`;
  const extra = [`${periodSql(f)} AS p`, `${buckets.key} AS k`];
  const measures = query.series.map((s, k) => `${measureSql(s, k)} AS v${k}`);
  return `WITH ${top} AS top
    SELECT p, ${buckets.start('k')} AS b, toUInt32(indexOf(top, (gm, gv))) AS rank,
      if(rank = 0 OR top[rank].1 = 1, NULL, top[rank].2) AS g, ${measures.join(', ')}
    FROM (${rowsSql(query, f, [[f.lo, f.to]], extra)})
    GROUP BY p, k, rank`;
}

/** 1 for the previous period's rows (compare), 0 for the queried range's. */
export const periodSql = (f: TrendsFrame): string => (f.lo < f.from ? `toUInt8(ts_ms < ${int(f.from)})` : 'toUInt8(0)');

/** The statement: one row per (period, bucket, group) with every series' measure (see the module comment). */
export function trendsSql(query: TrendsQuery, f: TrendsFrame): string {
  const buckets = zoneBucketsSql(query.interval, query.tz, f.lo, f.to);
  const b = query.breakdown;
  if (b) {
    if (!query.series.every((s) => MERGEABLE.has(s.measure))) return rankedSql(query, f, b.limit, buckets);
    return mergedSql(query, b.limit, buckets, partialsSql(query, f, [[f.lo, f.to]], buckets));
  }
  const extra = [`${periodSql(f)} AS p`, `${buckets.key} AS k`];
  const measures = query.series.map((s, k) => `${measureSql(s, k)} AS v${k}`);
  return `SELECT p, ${buckets.start('k')} AS b, toUInt32(1) AS rank, NULL AS g, ${measures.join(', ')}
    FROM (${rowsSql(query, f, [[f.lo, f.to]], extra)})
    GROUP BY p, k`;
}
