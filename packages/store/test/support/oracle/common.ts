/**
 * The brute-force side of the query correctness suites: plain TypeScript over the stored rows, written
 * from docs/query.md's semantics without looking at the SQL, so that the two can disagree. Shared here:
 * property paths, filters, the user key, and time buckets (core's bucketStart: itself tested against
 * DST transitions).
 */
import {
  bucketStart,
  type FilterScalar,
  type Interval,
  parsePropertyPath,
  type PropertyFilter,
  type PropertyPath,
} from '@tally/core';
import type { EventRow } from '../../../src/index.js';

type Json = EventRow['properties'][string];

/** The value at `path`; undefined when missing or JSON null (one case everywhere, as in the engines). */
export function valueAt(row: EventRow, path: PropertyPath): Json | undefined {
  const parsed = parsePropertyPath(path);
  if (!parsed) throw new Error(`bad path ${path}`);
  if (parsed.root === 'column') {
    const v = parsed.column === 'userId' ? row.userId : parsed.column === 'anonymousId' ? row.anonymousId : row.name;
    return v ?? undefined;
  }
  let v: unknown = parsed.root === 'properties' ? row.properties : row.context;
  for (const key of parsed.keys) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v === null || v === undefined ? undefined : (v as Json);
}

/** A scalar as text, as Postgres' `#>>` writes it (strings bare, numbers and booleans as in JSON). */
export function textOf(value: Json | undefined): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value);
  throw new Error('objects and arrays as text are not compared by these suites');
}

function jsonEqual(a: Json | undefined, b: FilterScalar): boolean {
  return a !== undefined && typeof a === typeof b && a === b;
}

/** Code-point order of two strings (Postgres COLLATE "C" on UTF-8 = byte order = code point order). */
function compareStrings(a: string, b: string): number {
  const x = [...a].map((c) => c.codePointAt(0) as number);
  const y = [...b].map((c) => c.codePointAt(0) as number);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return x.length - y.length;
}

/** docs/query.md "Filters", plainly. */
export function matches(row: EventRow, f: PropertyFilter): boolean {
  const v = valueAt(row, f.property);
  const values = Array.isArray(f.value) ? f.value : f.value === undefined ? [] : [f.value];
  const first = values[0] as FilterScalar;
  switch (f.op) {
    case 'eq':
      return jsonEqual(v, first);
    case 'neq':
      return !jsonEqual(v, first);
    case 'in':
      return values.some((x) => jsonEqual(v, x));
    case 'nin':
      return !values.some((x) => jsonEqual(v, x));
    case 'contains':
      return typeof v === 'string' && v.includes(String(first));
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      let c: number;
      if (typeof first === 'number') {
        if (typeof v !== 'number') return false;
        c = v - first;
      } else {
        if (typeof v !== 'string') return false;
        c = compareStrings(v, String(first));
      }
      return f.op === 'gt' ? c > 0 : f.op === 'gte' ? c >= 0 : f.op === 'lt' ? c < 0 : c <= 0;
    }
    case 'is_set':
      return v !== undefined;
    case 'is_not_set':
      return v === undefined;
  }
}

export const matchesAll = (row: EventRow, filters: readonly PropertyFilter[]) => filters.every((f) => matches(row, f));

/** The user an event counts for: user id, else anonymous id, else nobody. */
export const userKey = (row: EventRow): string | undefined => row.userId ?? row.anonymousId ?? undefined;

export const tsOf = (row: { timestamp: string }): number => Date.parse(row.timestamp);

/** The ISO start of the bucket holding `ts` (the engines' rows carry bucket starts as ISO strings). */
export const bucketIso = (ts: number, interval: Interval, tz: string): string =>
  new Date(bucketStart(ts, interval, tz)).toISOString();

/** Linear-interpolated percentile of sorted values (Postgres percentile_cont); null for none. */
export function percentileCont(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (pos - lo);
}
