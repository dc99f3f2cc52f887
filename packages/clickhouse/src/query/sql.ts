/**
 * Building blocks of the query SQL on ClickHouse, shared by every kind: property paths over the
 * flattened attributes (rows.ts), filters with the semantics of docs/query.md (the same the Postgres
 * engine and the brute-force evaluator follow), the user key and time buckets. Every value a user gave
 * goes through sql.ts's literals.
 */
import {
  bucketsBetween,
  type FilterScalar,
  type Interval,
  offsetSpans,
  parsePropertyPath,
  type PropertyFilter,
  type PropertyPath,
  toWall,
} from '@tally/core';
import { attrKey, T } from '../rows.js';
import { int, num, str, strs } from '../sql.js';

/** A path on `events`: its JSON type (0 when missing or null; rows.ts `T` otherwise) and its value as text. */
export interface PathSql {
  type: string;
  text: string;
}

const COLUMN_OF: Record<string, string> = { userId: 'user_id', anonymousId: 'anonymous_id', name: 'name' };

export function pathSql(path: PropertyPath): PathSql {
  const parsed = parsePropertyPath(path);
  if (!parsed) throw new RangeError(`not a property path: ${path}`);
  if (parsed.root === 'column') {
    const column = COLUMN_OF[parsed.column] as string;
    // Absent user ids are stored as '' (rows.ts): a string when set, missing otherwise.
    return { type: `if(${column} != '', ${T.string}, 0)`, text: column };
  }
  const index = `indexOf(attr_keys, ${str(attrKey(parsed.root, parsed.keys))})`;
  // Index 0 (absent) reads the arrays' defaults: type 0, text ''.
  return { type: `attr_types[${index}]`, text: `attr_values[${index}]` };
}

/** A path's value as text (Nullable(String)): strings bare, other scalars as JSON, objects and arrays as JSON. */
export function textSql(path: PropertyPath): string {
  const p = pathSql(path);
  return `if(${p.type} = 0, NULL, ${p.text})`;
}

/** A numeric property as Nullable(Float64): null when missing or not a JSON number. */
export function numberSql(path: PropertyPath): string {
  const p = pathSql(path);
  return `if(${p.type} = ${T.number}, toFloat64OrNull(${p.text}), NULL)`;
}

/** The stored type and text a filter scalar is equal to (JSON equality: 1 ≠ "1"). */
function scalarOf(v: FilterScalar): { type: number; text: string } {
  if (typeof v === 'string') return { type: T.string, text: v };
  if (typeof v === 'number') return { type: T.number, text: JSON.stringify(v) };
  return { type: T.boolean, text: v ? 'true' : 'false' };
}

/** `value IN (values)` by JSON equality, grouped by type so each group is one IN. */
function equalsAny(p: PathSql, values: readonly FilterScalar[]): string {
  const byType = new Map<number, string[]>();
  for (const v of values) {
    const s = scalarOf(v);
    byType.set(s.type, [...(byType.get(s.type) ?? []), s.text]);
  }
  const terms = [...byType].map(([type, texts]) =>
    texts.length === 1
      ? `(${p.type} = ${type} AND ${p.text} = ${str(texts[0] as string)})`
      : `(${p.type} = ${type} AND has(${strs(texts)}, ${p.text}))`,
  );
  return terms.length === 1 ? (terms[0] as string) : `(${terms.join(' OR ')})`;
}

/**
 * One filter as a ClickHouse boolean (UInt8). Semantics as the Postgres engine's filterSql:
 * - eq / in: JSON-equal to one value given; a missing value is never equal. neq / nin: the negation.
 * - contains: a string value containing the text, case-sensitively (bytes of UTF-8).
 * - gt gte lt lte: a number against a number, a string against a string (byte order of UTF-8, which is
 *   code-point order); a value of another type never matches.
 * - is_set / is_not_set: present and not JSON null, or not.
 */
export function filterSql(f: PropertyFilter): string {
  const p = pathSql(f.property);
  const values = Array.isArray(f.value) ? f.value : f.value === undefined ? [] : [f.value];
  switch (f.op) {
    case 'eq':
    case 'in':
      return equalsAny(p, values);
    case 'neq':
    case 'nin':
      return `NOT ${equalsAny(p, values)}`;
    case 'contains':
      return `(${p.type} = ${T.string} AND position(${p.text}, ${str(String(values[0]))}) > 0)`;
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      const op = { gt: '>', gte: '>=', lt: '<', lte: '<=' }[f.op];
      const v = values[0];
      if (typeof v === 'number') {
        return `(${p.type} = ${T.number} AND toFloat64OrZero(${p.text}) ${op} toFloat64(${str(String(v))}))`;
      }
      return `(${p.type} = ${T.string} AND ${p.text} ${op} ${str(String(v))})`;
    }
    case 'is_set':
      return `(${p.type} != 0)`;
    case 'is_not_set':
      return `(${p.type} = 0)`;
  }
}

/** Filters ANDed (1 for none). */
export const filtersSql = (filters: readonly PropertyFilter[]): string =>
  filters.length === 0 ? '1' : filters.map(filterSql).join(' AND ');

/** An event name condition; `null` (all events) is none. */
export const nameSql = (event: string | null): string => (event === null ? '1' : `name = ${str(event)}`);

/** Who an event counts for in user-based measures: the user id, else the anonymous id (null: nobody). */
export const USER_KEY = `nullIf(if(user_id != '', user_id, anonymous_id), '')`;

/** Epoch ms bounds of a half-open range on `ts_ms`. */
export const rangeSql = (from: number, to: number, column = 'ts_ms'): string =>
  `${column} >= ${int(from)} AND ${column} < ${int(to)}`;

/**
 * Bounds on `ts` (the partition column) for a range on `ts_ms`: they let ClickHouse skip whole day
 * partitions before it reads the sorting key's index. `ts` is `ts_ms` in whole seconds, so the bounds
 * are the seconds of the range's first and last millisecond.
 */
export const partitionRangeSql = (from: number, to: number): string =>
  `ts >= toDateTime(${int(Math.floor(from / 1000))}, 'UTC') AND ts <= toDateTime(${int(Math.floor((to - 1) / 1000))}, 'UTC')`;

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Time buckets as SQL: `key` groups rows by bucket, `start(key)` is the bucket's first instant (epoch ms). */
export interface ZoneBucketsSql {
  key: string;
  start: (key: string) => string;
}

/** `x` mod `m` in [0, m) for any sign of x (ClickHouse's % keeps the dividend's sign). */
const mod = (x: string, m: number): string => `((${x}) % ${m} + ${m}) % ${m}`;

/** The wall-clock key of a wall time (ms, as time.ts writes them): its day or ISO week's first ms, or yyyymm. */
function wallKey(interval: 'day' | 'week' | 'month', wall: string): string {
  switch (interval) {
    case 'day':
      return `(${wall} - ${mod(wall, DAY_MS)})`;
    case 'week': {
      // Day 0 (1970-01-01) was a Thursday: (day + 3) mod 7 is 0 on Mondays.
      const day = `intDiv(${wall} - ${mod(wall, DAY_MS)}, ${DAY_MS})`;
      return `((${day} - ${mod(`${day} + 3`, 7)}) * ${DAY_MS})`;
    }
    case 'month':
      return `toInt64(toYYYYMM(toDateTime(intDiv(${wall}, 1000), 'UTC')))`;
  }
}

function wallKeyOf(interval: 'day' | 'week' | 'month', wall: number): number {
  const d = new Date(wall);
  if (interval === 'month') return d.getUTCFullYear() * 100 + d.getUTCMonth() + 1;
  const day = Math.floor(wall / DAY_MS);
  return (interval === 'day' ? day : day - ((((day + 3) % 7) + 7) % 7)) * DAY_MS;
}

const int64s = (values: readonly number[]): string => `CAST([${values.map(int).join(', ')}] AS Array(Int64))`;

/**
 * The `interval` bucket of `column` (epoch ms) in time zone `tz`, for rows in [from, to): the same
 * instants as core's bucketStart, in every zone, with no time zone function of the engine. The zone's
 * offsets over the range come from core (offsetSpans), and local time is `ts + offset`:
 * - an hour starts at the local hour's floor, or at the offset change when one fell inside that local
 *   hour (Pacific/Chatham, Australia/Lord_Howe), as bucketStart does;
 * - a day, week or month is keyed by its local calendar unit (the wall time floored), and the key is
 *   turned into the bucket's instant by a table of the range's buckets (bucketsBetween), which knows
 *   the days that start at a DST change rather than at midnight.
 * ClickHouse's own toStartOfHour(ts, tz) and toDate(ts, tz) agree in whole- and half-hour zones, but
 * not where an offset changes by 30 minutes or off the hour, and they follow the engine's zone
 * database, not the one the rest of Tally (and the range, and the answer's buckets) reckons in.
 */
export function zoneBucketsSql(
  interval: Interval,
  tz: string,
  from: number,
  to: number,
  column = 'ts_ms',
): ZoneBucketsSql {
  const spans = offsetSpans(from, to, tz);
  // multiIf over the spans (each later span from its start on); one span is a constant.
  const bySpan = (f: (span: (typeof spans)[number], i: number) => string): string => {
    if (spans.length === 1) return f(spans[0]!, 0);
    const arms = spans.slice(1).map((s, i) => `${column} < ${int(s.start)}, ${f(spans[i]!, i)}`);
    return `multiIf(${arms.join(', ')}, ${f(spans[spans.length - 1]!, spans.length - 1)})`;
  };
  if (interval === 'hour') {
    const key = bySpan((s, i) => {
      const floor = `${column} - ${mod(`${column} + ${num(s.offset)}`, HOUR_MS)}`;
      // A local hour that began before this span's offset took effect starts at the change.
      return i === 0 ? `toInt64(${floor})` : `toInt64(greatest(${floor}, ${int(s.start)}))`;
    });
    return { key, start: (k) => k };
  }
  const wall = `(${column} + ${bySpan((s) => `toInt64(${num(s.offset)})`)})`;
  const buckets = bucketsBetween(from, to, interval, tz);
  const keys = buckets.map((b) => wallKeyOf(interval, toWall(b, tz)));
  return {
    key: wallKey(interval, wall),
    start: (k) => `transform(${k}, ${int64s(keys)}, ${int64s(buckets)}, toInt64(0))`,
  };
}
