/**
 * Explore on ClickHouse: what a tenant's events look like, for pickers and for spotting bad data.
 * - `events`: each event name seen in the range with its count and the time it was last seen: one
 *   aggregation over the range (the sorting key (tenant_id, name, ts_ms) reads only the tenant's rows).
 * - `properties`: the top-level property keys of a sample, the most recent events of the range, with the
 *   JSON type each had and the most frequent values, as the Postgres engine answers (docs/query.md). The
 *   newest EXPLORE_PROPERTY_SAMPLE events are found by their (ts_ms, id) cut-off first (hourly counts,
 *   then the newest hours' events sorted); then only the sample's attributes are read. Keys and types come from the
 *   flattened attributes (rows.ts), which leave JSON null out: the keys whose value is null are read from
 *   the JSON text of the sample's events that hold one.
 */
import {
  type Cell,
  EXPLORE_EVENT_COLUMNS,
  EXPLORE_LISTED_COLUMN,
  EXPLORE_PROPERTY_COLUMNS,
  EXPLORE_PROPERTY_SAMPLE,
  EXPLORE_TOP_VALUES,
  type ExploreQuery,
} from '@tally/core';
import { attrKey, T } from '../rows.js';
import { int, str } from '../sql.js';
import { partitionRangeSql, rangeSql } from './sql.js';
import type { KindAnswer, KindRunner, QueryContext } from './types.js';

/** Code-point order (Postgres COLLATE "C" on UTF-8, ClickHouse's byte order): UTF-16 order differs past U+FFFF. */
function codePointCompare(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i) as number;
    const y = b.codePointAt(i) as number;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/** The tenant's events in [ctx.from, ctx.to) (of one name, when given). */
function scopeSql(ctx: Pick<QueryContext, 'tenantId' | 'from' | 'to'>, event?: string): string {
  return [
    `tenant_id = ${str(ctx.tenantId)}`,
    ...(event === undefined ? [] : [`name = ${str(event)}`]),
    rangeSql(ctx.from, ctx.to),
    partitionRangeSql(ctx.from, ctx.to),
  ].join(' AND ');
}

async function events(q: ExploreQuery, ctx: QueryContext): Promise<KindAnswer> {
  const limit = Math.min(q.limit, ctx.maxRows);
  // Ties in count by name in byte order, so that the cut at `limit` is the same on every engine.
  const found = await ctx.client.query<{ name: string; n: number; last: number }>(
    `SELECT name, count() AS n, max(ts_ms) AS last FROM ${ctx.db}.events
     WHERE ${scopeSql(ctx)}
     GROUP BY name ORDER BY n DESC, name ASC LIMIT ${int(limit + 1)}`,
    ctx.settings,
  );
  const listed = ctx.listedEvents;
  const rows = found.slice(0, limit).map((r): Cell[] => {
    const row: Cell[] = [r.name, Number(r.n), new Date(Number(r.last)).toISOString()];
    if (listed) row.push(listed.has(r.name));
    return row;
  });
  return {
    columns: [...EXPLORE_EVENT_COLUMNS, ...(listed ? [EXPLORE_LISTED_COLUMN] : [])],
    rows,
    source: 'detail',
    reason: 'counts and last_seen from the detail rows, read through the sorting key (tenant, name, time)',
    truncated: found.length > limit,
  };
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** JSON type names of rows.ts' type codes. */
const TYPE_NAMES: Record<number, string> = {
  [T.string]: 'string',
  [T.number]: 'number',
  [T.boolean]: 'boolean',
  [T.object]: 'object',
  [T.array]: 'array',
};

/**
 * The sample as a condition: the range's events from the EXPLORE_PROPERTY_SAMPLE-th newest on, newest
 * by (ts_ms, id) — ids in their text form, lowercase hex, whose order is Postgres' uuid order. The whole
 * range when it holds fewer. Events per hour, newest first, say from which hour on the range holds the
 * sample (reading ts_ms alone, no sort), counted over the last day first, then the last 8, then the
 * whole range, so that the day partitions before are not read when the recent ones hold it. Only the
 * events from that hour on are sorted, and only their ids made into text (costly, row by row).
 */
async function sampleSql(q: ExploreQuery, ctx: QueryContext): Promise<string> {
  const scope = (from: number) => scopeSql({ ...ctx, from }, q.event);
  for (const days of [1, 8, Infinity]) {
    const from = Math.max(ctx.from, ctx.to - days * DAY);
    const hours = await ctx.client.query<{ h: number; n: number }>(
      `SELECT intDiv(ts_ms, ${HOUR}) AS h, count() AS n FROM ${ctx.db}.events WHERE ${scope(from)}
       GROUP BY h ORDER BY h DESC`,
      ctx.settings,
    );
    let newer = 0;
    const hour = hours.find((r) => (newer += Number(r.n)) >= EXPLORE_PROPERTY_SAMPLE);
    if (hour) return cutSql(q, ctx, Math.max(ctx.from, Number(hour.h) * HOUR));
    if (from === ctx.from) return scope(ctx.from);
  }
  throw new Error('explore: unreachable, the last span is the whole range');
}

/** The sample as a condition, given an instant from which on the range holds it (see sampleSql). */
async function cutSql(q: ExploreQuery, ctx: QueryContext, from: number): Promise<string> {
  const scope = scopeSql({ ...ctx, from }, q.event);
  const [edge] = await ctx.client.query<{ t: number; sid: string }>(
    `SELECT ts_ms AS t, toString(id) AS sid FROM ${ctx.db}.events WHERE ${scope}
     ORDER BY t DESC, sid DESC LIMIT 1 OFFSET ${int(EXPLORE_PROPERTY_SAMPLE - 1)}`,
    ctx.settings,
  );
  if (!edge) throw new Error('explore: the hours counted hold the sample, but its last event was not found');
  const ts = int(Number(edge.t));
  return `${scopeSql({ ...ctx, from: Number(edge.t) }, q.event)} AND (ts_ms > ${ts} OR toString(id) >= ${str(edge.sid)})`;
}

interface KeyStats {
  event: string;
  key: string;
  type: string;
  count: number;
  top: { value: string; count: number }[];
}

async function properties(q: ExploreQuery, ctx: QueryContext): Promise<KindAnswer> {
  const sample = await sampleSql(q, ctx);
  const limit = Math.min(q.limit, ctx.maxRows);
  const root = str(attrKey('properties', []) + '\0');
  // The sample's top-level attributes (path `p` NUL key, no further NUL), grouped down to (name, key,
  // type, value): a key's count is the sum over its values, its top values the first of them by count,
  // then by value. Only strings, numbers and booleans have values to list; objects and arrays group as one.
  const scalar = `x.2 IN (${T.string}, ${T.number}, ${T.boolean})`;
  const found = await ctx.client.query<{
    name: string;
    key: string;
    type: number;
    total: number;
    top: [string, number][];
  }>(
    `SELECT name, key, type, sum(n) AS total,
            arraySlice(arraySort(v -> (-v.2, v.1), groupArrayIf((value, n), listed)), 1, ${int(EXPLORE_TOP_VALUES)}) AS top
     FROM (
       SELECT name, substring(kv.1, 3) AS key, kv.2 AS type, kv.3 AS value, kv.4 AS listed, count() AS n
       FROM (
         SELECT name, arrayJoin(arrayMap(x -> (x.1, x.2, if(${scalar}, x.3, ''), ${scalar}),
                  arrayFilter(x -> substring(x.1, 1, 2) = ${root} AND position(substring(x.1, 3), '\\0') = 0,
                    arrayMap((k, t, v) -> (k, t, v), attr_keys, attr_types, attr_values)))) AS kv
         FROM ${ctx.db}.events WHERE ${sample}
       )
       GROUP BY name, key, type, value, listed
     )
     GROUP BY name, key, type`,
    ctx.settings,
  );
  const stats: KeyStats[] = found.map((r) => ({
    event: r.name,
    key: r.key,
    type: TYPE_NAMES[Number(r.type)] ?? 'unknown',
    count: Number(r.total),
    top: r.top.map(([value, count]) => ({ value, count: Number(count) })),
  }));
  stats.push(...(await nullKeys(ctx, sample)));
  stats.sort(
    (a, b) =>
      codePointCompare(a.event, b.event) ||
      b.count - a.count ||
      codePointCompare(a.key, b.key) ||
      codePointCompare(a.type, b.type),
  );
  const rows = stats
    .slice(0, limit)
    .map((s): Cell[] => [s.event, `properties.${s.key}`, s.type, s.count, JSON.stringify(s.top)]);
  return {
    columns: [...EXPLORE_PROPERTY_COLUMNS],
    rows,
    source: 'detail',
    reason: `sampled: the top-level property keys of the ${EXPLORE_PROPERTY_SAMPLE} most recent events in the range (detail rows); counts and top values are within that sample`,
    truncated: stats.length > limit,
  };
}

/**
 * The sample's top-level keys whose value is JSON null, per event name. Only events whose JSON text holds
 * `:null` can have one (rows.ts stores JSON.stringify's text: a member's null is written `"key":null`);
 * their properties are parsed here.
 */
async function nullKeys(ctx: QueryContext, sample: string): Promise<KeyStats[]> {
  const found = await ctx.client.query<{ name: string; properties: string }>(
    `SELECT name, properties FROM ${ctx.db}.events WHERE ${sample} AND position(properties, ':null') > 0`,
    ctx.settings,
  );
  const counts = new Map<string, KeyStats>();
  for (const r of found) {
    const properties = JSON.parse(r.properties) as Record<string, unknown>;
    for (const [key, value] of Object.entries(properties)) {
      if (value !== null) continue;
      const id = JSON.stringify([r.name, key]);
      const s = counts.get(id) ?? { event: r.name, key, type: 'null', count: 0, top: [] };
      s.count++;
      counts.set(id, s);
    }
  }
  return [...counts.values()];
}

export const explore: KindRunner<ExploreQuery> = (q, ctx) =>
  q.what === 'events' ? events(q, ctx) : properties(q, ctx);
