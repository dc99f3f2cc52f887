/**
 * Building blocks of the query SQL, shared by every kind. Every value a user gave (event names, property
 * keys, filter values, time zones) becomes a bound parameter through `Params`: the SQL text is made only of
 * constants written here, so no input can change what a statement does.
 */
import { type FilterScalar, parsePropertyPath, type PropertyFilter, type PropertyPath } from '@tally/core';

/** The parameters of one statement, numbered as they are added. */
export class Params {
  readonly values: unknown[] = [];

  /** Binds `value` and returns its placeholder (`$3`). */
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

const COLUMN_OF: Record<string, string> = { userId: 'user_id', anonymousId: 'anonymous_id', name: 'name' };

/**
 * A property path as SQL on `events` (alias `e` by default): its value as jsonb (`json`) or as text
 * (`text`: a JSON string's contents, other scalars as JSON writes them, objects and arrays as JSON; null
 * when missing or JSON null). Columns are text either way (jsonb of a column is `to_jsonb(col)`).
 */
export function pathSql(path: PropertyPath, p: Params, as: 'json' | 'text', alias = 'e'): string {
  const parsed = parsePropertyPath(path);
  if (!parsed) throw new RangeError(`not a property path: ${path}`);
  if (parsed.root === 'column') {
    const column = `${alias}.${COLUMN_OF[parsed.column]}`;
    return as === 'text' ? column : `to_jsonb(${column})`;
  }
  // The keys go in as one text[] parameter: `#>` / `#>>` walk it.
  const keys = p.add(parsed.keys);
  const value = `${alias}.${parsed.root} ${as === 'text' ? '#>>' : '#>'} ${keys}::text[]`;
  // JSON null reads as SQL null, so "missing" and "null" are one case in every filter and breakdown.
  return as === 'text' ? value : `nullif(${value}, 'null'::jsonb)`;
}

/** A numeric property as float8: null when missing or not a JSON number (never a cast error). */
export function numberSql(path: PropertyPath, p: Params, alias = 'e'): string {
  const json = pathSql(path, p, 'json', alias);
  return `CASE WHEN jsonb_typeof(${json}) = 'number' THEN (${json})::text::float8 END`;
}

/**
 * A filter value as jsonb. Bound as text and cast in SQL: postgres.js JSON-encodes a parameter whose type
 * the server infers as jsonb a second time (the text `false` would arrive as the JSON string "false").
 */
const scalar = (v: FilterScalar, p: Params) => `${p.add(JSON.stringify(v))}::text::jsonb`;
const scalars = (vs: readonly FilterScalar[], p: Params) =>
  `${p.add(vs.map((v) => JSON.stringify(v)))}::text[]::jsonb[]`;

/**
 * One filter as a boolean SQL expression; the semantics the brute-force evaluator in the tests mirrors:
 * - eq / in: the value is JSON-equal to one given (1 ≠ "1"); a missing value is never equal.
 * - neq / nin: not eq / not in; a missing value counts as different.
 * - contains: a string value containing the text, case-sensitively.
 * - gt gte lt lte: a number against a number, or a string against a string (code-point order); a value
 *   of another type never matches.
 * - is_set / is_not_set: present and not JSON null, or not.
 */
export function filterSql(f: PropertyFilter, p: Params, alias = 'e'): string {
  const json = pathSql(f.property, p, 'json', alias);
  const values = Array.isArray(f.value) ? f.value : f.value === undefined ? [] : [f.value];
  switch (f.op) {
    case 'eq':
      return `coalesce(${json} = ${scalar(values[0] as FilterScalar, p)}, false)`;
    case 'neq':
      return `NOT coalesce(${json} = ${scalar(values[0] as FilterScalar, p)}, false)`;
    case 'in':
      return `coalesce(${json} = ANY(${scalars(values, p)}), false)`;
    case 'nin':
      return `NOT coalesce(${json} = ANY(${scalars(values, p)}), false)`;
    case 'contains':
      return `coalesce(jsonb_typeof(${json}) = 'string' AND strpos(${json} #>> '{}', ${p.add(String(values[0]))}) > 0, false)`;
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      const op = { gt: '>', gte: '>=', lt: '<', lte: '<=' }[f.op];
      const v = values[0];
      if (typeof v === 'number') {
        return `coalesce(jsonb_typeof(${json}) = 'number' AND (${json})::text::float8 ${op} ${p.add(v)}::float8, false)`;
      }
      return `coalesce(jsonb_typeof(${json}) = 'string' AND (${json} #>> '{}') COLLATE "C" ${op} ${p.add(String(v))}::text COLLATE "C", false)`;
    }
    case 'is_set':
      return `(${json} IS NOT NULL)`;
    case 'is_not_set':
      return `(${json} IS NULL)`;
  }
}

/** Filters ANDed (true for none). */
export function filtersSql(filters: readonly PropertyFilter[], p: Params, alias = 'e'): string {
  return filters.length === 0 ? 'true' : filters.map((f) => filterSql(f, p, alias)).join(' AND ');
}

/** Who an event counts for in user-based measures: the user id, else the anonymous id (null: nobody). */
/** An event name condition; `null` (all events) is none. */
export const nameSql = (column: string, event: string | null, p: Params) =>
  event === null ? 'true' : `${column} = ${p.add(event)}`;

export const userKeySql = (alias = 'e') => `coalesce(${alias}.user_id, ${alias}.anonymous_id)`;

/** The start of `ts`'s bucket in the time zone bound as `tz` (ISO weeks from Monday, as core's bucketStart). */
export function bucketSql(interval: 'hour' | 'day' | 'week' | 'month', ts: string, tz: string): string {
  return `date_trunc('${interval}', ${ts}, ${tz})`;
}

/** Epoch ms as a timestamptz parameter. */
export const timeParam = (ms: number, p: Params) => `${p.add(new Date(ms).toISOString())}::timestamptz`;

/** A timestamptz column as the ISO string rows carry (UTC, ms precision). */
export const isoSql = (ts: string) => `to_char(${ts} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
