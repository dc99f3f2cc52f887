/**
 * The SQL of a trends query: one statement per answer, whichever the source. Each statement returns one
 * row per (series, period, bucket, breakdown group) that has events (core's TrendsCell):
 *   s     the series' index
 *   p     true for the previous period (compare), false for the queried range
 *   b     the bucket's start, ISO
 *   rank  the breakdown group: 1… for the top values in order, 0 for "other" (1 without a breakdown)
 *   g     the group's value (the top value itself; null for "other" and without a breakdown)
 *   v     the measure
 * Every series is its own branch of a UNION ALL, so each reads the index (tenant_id, name, ts) for its
 * one name and its range. A breakdown ranks its values in a CTE over the queried range first (the same
 * statement, so the same snapshot), and each row finds its group with array_position, which compares with
 * IS NOT DISTINCT FROM: the missing value (SQL null) is a group like any other. A series without
 * filters, breakdown or numeric property reads only what the index (tenant_id, name, ts) INCLUDE
 * (user_id, anonymous_id) holds: an index-only scan.
 */
import { type Measure, parsePropertyPath, type TrendsQuery, type TrendsSeries } from '@tally/core';
import {
  bucketSql,
  filtersSql,
  isoSql,
  nameSql,
  numberSql,
  type Params,
  pathSql,
  timeParam,
  userKeySql,
} from './sql.js';
import type { QueryContext } from './types.js';

/** The placeholders every branch shares. */
interface Scope {
  tenant: string;
  tz: string;
  /** Start of the queried range, of what is read (the previous period's start with compare), and end. */
  from: string;
  lo: string;
  to: string;
}

function scope(query: TrendsQuery, ctx: QueryContext, lo: number, p: Params): Scope {
  return {
    tenant: p.add(ctx.tenantId),
    tz: p.add(query.tz),
    from: timeParam(ctx.from, p),
    lo: timeParam(lo, p),
    to: timeParam(ctx.to, p),
  };
}

/**
 * A breakdown value as text: the column's text, or a JSON string's contents / a number or boolean as JSON
 * writes it. Objects and arrays count as missing, as in the per-value rollup (which holds scalars only),
 * so both sources group alike.
 */
function groupSql(path: string, p: Params): string {
  if (parsePropertyPath(path)?.root === 'column') return pathSql(path, p, 'text');
  const json = pathSql(path, p, 'json');
  return `CASE WHEN jsonb_typeof(${json}) IN ('string', 'number', 'boolean') THEN ${json} #>> '{}' END`;
}

const PERCENTILES: Partial<Record<Measure, number>> = { p50: 0.5, p90: 0.9, p95: 0.95, p99: 0.99 };

/** The measure over a group's rows `r` (x: the numeric property, u: the user key). */
function aggregateSql(measure: Measure): string {
  switch (measure) {
    case 'count':
      return 'count(*)';
    case 'unique_users':
      return 'count(DISTINCT r.u)';
    case 'sum':
    case 'avg':
    case 'min':
    case 'max':
      return `${measure}(r.x)`;
    default:
      return `percentile_cont(${PERCENTILES[measure]}) WITHIN GROUP (ORDER BY r.x)`;
  }
}

/**
 * What ranks a breakdown value: series A's total over the queried range — its count, its sum, its
 * distinct users; for avg, min, max and percentiles the number of values they are taken over.
 */
function weightSql(measure: Measure): string {
  switch (measure) {
    case 'count':
      return 'count(*)';
    case 'unique_users':
      return 'count(DISTINCT r.u)';
    case 'sum':
      return 'coalesce(sum(r.x), 0)';
    default:
      return 'count(r.x)';
  }
}

const xSql = (s: TrendsSeries, p: Params) => (s.property ? numberSql(s.property, p) : 'NULL::float8');
const uSql = (s: TrendsSeries) => (s.measure === 'unique_users' ? userKeySql() : 'NULL::text');

function seriesWhere(s: TrendsSeries, sc: Scope, start: string, p: Params): string {
  return `e.tenant_id = ${sc.tenant} AND ${nameSql('e.name', s.event, p)} AND e.ts >= ${start} AND e.ts < ${sc.to}
      AND ${filtersSql(s.filters, p)}`;
}

/** Orders breakdown values: by weight, then by value in code-point order, the missing value last. */
const rankOrder = (t: string) => `${t}w DESC, ${t}g COLLATE "C" ASC NULLS LAST`;

/** The CTEs `cand` (each value of the queried range with its weight) and `top` (the first `limit` as an array). */
function topCtes(candidates: string, limit: number, p: Params): string {
  return `cand AS (${candidates}),
    top AS (
      SELECT array_agg(t.g ORDER BY ${rankOrder('t.')}) AS gs
        FROM (SELECT g, w FROM cand ORDER BY ${rankOrder('')} LIMIT ${p.add(limit)}::int) t
    )`;
}

const RANK = (g: string) => `coalesce(array_position((SELECT gs FROM top), ${g}), 0)`;
/** A group's value from its rank (null for "other", rank 0, which no array has). */
const LABEL = (rank: string) => `(SELECT gs FROM top)[${rank}]`;

/** Measures whose value over a group is the sum of its parts: taken per value first, then summed. */
const additive = (m: Measure) => m === 'count' || m === 'sum';

/** A series' rows (p, b, g, x, u) over [start, to); `g` its breakdown value when given. */
function rowsSql(query: TrendsQuery, s: TrendsSeries, sc: Scope, start: string, g: string, p: Params): string {
  return `SELECT e.ts < ${sc.from} AS p, ${bucketSql(query.interval, 'e.ts', sc.tz)} AS b, ${g} AS g,
         ${xSql(s, p)} AS x, ${uSql(s)} AS u
    FROM events e
   WHERE ${seriesWhere(s, sc, start, p)}`;
}

/** A series' measure per (period, bucket, group) over its rows; `ranked`: grouped by breakdown rank. */
function measuredSql(k: number, s: TrendsSeries, rows: string, ranked: boolean): string {
  return `SELECT ${k} AS s, r.p, ${isoSql('r.b')} AS b, r.rank, ${ranked ? LABEL('r.rank') : 'NULL::text'} AS g,
         ${aggregateSql(s.measure)} AS v
    FROM (SELECT q.*, ${ranked ? RANK('q.g') : '1'} AS rank FROM (${rows}) q) r
   GROUP BY r.p, r.b, r.rank`;
}

/** Detail: one branch per series over the events table. */
export function detailSql(query: TrendsQuery, ctx: QueryContext, lo: number, p: Params): string {
  const sc = scope(query, ctx, lo, p);
  const b = query.breakdown;
  if (!b) {
    return query.series
      .map((s, k) => measuredSql(k, s, rowsSql(query, s, sc, sc.lo, 'NULL::text', p), false))
      .join('\nUNION ALL\n');
  }
  return breakdownSql(query, b.property, b.limit, sc, p);
}

/**
 * Detail with a breakdown. A count or a sum is taken per raw value first (CTE `pre`, one scan of the
 * series' rows; few rows out), which both ranks the values and sums into the groups. Other measures
 * cannot be summed from parts: their series read their rows twice, once to rank (series A only weighs;
 * the others just name values) and once to measure by group.
 */
function breakdownSql(query: TrendsQuery, property: string, limit: number, sc: Scope, p: Params): string {
  const parts = query.series.map((s, k) => ({ s, k, sum: additive(s.measure) }));
  const pre = parts
    .filter((x) => x.sum)
    .map(
      ({ s, k }) => `SELECT ${k} AS s, r.p, r.b, r.g, ${s.measure === 'count' ? 'count(*)::float8' : 'sum(r.x)'} AS v
        FROM (${rowsSql(query, s, sc, sc.lo, groupSql(property, p), p)}) r
       GROUP BY r.p, r.b, r.g`,
    );
  // Each value of the queried range with its weight: series A's total (see weightSql), 0 from the others.
  const weights = parts.map(({ s, k, sum }) => {
    if (sum) return `SELECT g, ${k === 0 ? 'coalesce(v, 0)' : '0'} AS w FROM pre WHERE s = ${k} AND NOT p`;
    const rows = rowsSql(query, s, sc, sc.from, groupSql(property, p), p);
    return `SELECT r.g, ${k === 0 ? weightSql(s.measure) : '0'} AS w FROM (${rows}) r GROUP BY r.g`;
  });
  const cand = `SELECT c.g, sum(c.w)::float8 AS w FROM (${weights.join('\nUNION ALL\n')}) c GROUP BY c.g`;
  const measured = parts.map(({ s, k, sum }) =>
    sum
      ? `SELECT s, r.p, ${isoSql('r.b')} AS b, r.rank, ${LABEL('r.rank')} AS g, sum(r.v) AS v
           FROM (SELECT pre.*, ${RANK('pre.g')} AS rank FROM pre WHERE s = ${k}) r
          GROUP BY r.s, r.p, r.b, r.rank`
      : measuredSql(k, s, rowsSql(query, s, sc, sc.lo, groupSql(property, p), p), true),
  );
  return `WITH ${pre.length > 0 ? `pre AS (${pre.join('\nUNION ALL\n')}),` : ''}
    ${topCtes(cand, limit, p)}
    ${measured.join('\nUNION ALL\n')}`;
}

/** Counts per series from event_counts_hourly: each UTC hour summed into the bucket that holds it. */
export function hourlySql(query: TrendsQuery, ctx: QueryContext, lo: number, p: Params): string {
  const sc = scope(query, ctx, lo, p);
  return query.series
    .map(
      (s, k) => `SELECT ${k} AS s, r.p, ${isoSql('r.b')} AS b, 1 AS rank, NULL::text AS g, sum(r.count) AS v
      FROM (
        SELECT c.hour < ${sc.from} AS p, ${bucketSql(query.interval, 'c.hour', sc.tz)} AS b, c.count
          FROM event_counts_hourly c
         WHERE c.tenant_id = ${sc.tenant} AND ${nameSql('c.name', s.event, p)} AND c.hour >= ${sc.lo} AND c.hour < ${sc.to}
      ) r
      GROUP BY r.p, r.b`,
    )
    .join('\nUNION ALL\n');
}

/**
 * Counts by a dimension's value from event_props_hourly. It holds the events whose value is a scalar; the
 * rest of an hour's events (value missing, null, or an object) are the missing-value group: the hour's
 * count in event_counts_hourly less the sum of its values.
 */
export function dimensionSql(query: TrendsQuery, ctx: QueryContext, lo: number, key: string, p: Params): string {
  const sc = scope(query, ctx, lo, p);
  const b = query.breakdown!;
  const k0 = p.add(key);
  const hours = query.series
    .map((s, k) => {
      // planTrends answers a breakdown of all events from detail: the per-value rollup holds declared names.
      if (s.event === null) throw new Error('dimensionSql: a series of all events has no per-value rollup');
      const name = p.add(s.event);
      const values = `FROM event_props_hourly v
         WHERE v.tenant_id = ${sc.tenant} AND v.name = ${name} AND v.key = ${k0} AND v.hour >= ${sc.lo} AND v.hour < ${sc.to}`;
      // The missing-value group as a sum of the hour's count and its values negated: a union and one
      // aggregate, where a join of the two per hour became a nested loop on PGlite (no statistics).
      return `SELECT ${k} AS s, v.hour, v.value AS g, v.count ${values}
      UNION ALL
      SELECT ${k}, m.hour, NULL::text, sum(m.count)::bigint
        FROM (
          SELECT c.hour, c.count FROM event_counts_hourly c
           WHERE c.tenant_id = ${sc.tenant} AND c.name = ${name} AND c.hour >= ${sc.lo} AND c.hour < ${sc.to}
          UNION ALL
          SELECT v.hour, -v.count ${values}
        ) m
       GROUP BY m.hour`;
    })
    .join('\nUNION ALL\n');
  const cand = `SELECT h.g, sum(h.count) FILTER (WHERE h.s = 0) AS w FROM h WHERE h.hour >= ${sc.from} GROUP BY h.g`;
  // An hour whose events all have a value leaves a zero in the missing-value group: not a group.
  return `WITH h AS (SELECT * FROM (${hours}) x WHERE x.count > 0),
    ${topCtes(`SELECT g, coalesce(w, 0) AS w FROM (${cand}) c`, b.limit, p)}
    SELECT r.s, r.p, ${isoSql('r.b')} AS b, r.rank, ${LABEL('r.rank')} AS g, sum(r.count) AS v
      FROM (
        SELECT h.s, h.hour < ${sc.from} AS p, ${bucketSql(query.interval, 'h.hour', sc.tz)} AS b,
               ${RANK('h.g')} AS rank, h.count
          FROM h
      ) r
     GROUP BY r.s, r.p, r.b, r.rank`;
}
