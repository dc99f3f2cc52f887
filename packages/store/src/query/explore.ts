/**
 * Explore: what a tenant's events look like, for pickers and for spotting bad data.
 * - `events`: each event name seen in the range with its count and the time it was last seen. Counts of
 *   whole UTC hours come from event_counts_hourly, the partial hours at the range's ends from detail;
 *   last_seen is one backwards step of the (tenant_id, name, ts) index per name listed.
 * - `properties`: the top-level property keys of a sample, the most recent events of the range, with the
 *   JSON type each had and the most frequent values. Sampled so that the cost does not grow with the
 *   range: a key seen only in older events is not listed.
 * Which names are in use is read from the rollup first: it holds a row for every (name, hour) that has
 * events, so the detail is then read name by name through the (tenant_id, name, ts) index, never by a
 * scan of the whole range (events has no (tenant_id, ts) index).
 */
import type { ExploreQuery } from '@tally/core';
import { isoSql, Params, timeParam } from './sql.js';
import type { Cell, Column, KindAnswer, QueryContext, KindRunner } from './types.js';

const HOUR = 3_600_000;
/** Events the `properties` answer looks at: the most recent this many of the range. */
export const PROPERTY_SAMPLE = 10_000;
/** Values listed per (event, property, type). */
export const TOP_VALUES = 5;

const EVENT_COLUMNS: Column[] = [
  { name: 'event', type: 'string' },
  { name: 'count', type: 'number' },
  { name: 'last_seen', type: 'time' },
];

async function events(q: ExploreQuery, ctx: QueryContext): Promise<KindAnswer> {
  // The whole UTC hours inside the range; none when it holds no whole hour (then all of it is detail).
  let inner = { from: Math.ceil(ctx.from / HOUR) * HOUR, to: Math.floor(ctx.to / HOUR) * HOUR };
  if (inner.from >= inner.to) inner = { from: ctx.to, to: ctx.to };
  const p = new Params();
  const tenant = p.add(ctx.tenantId);
  const [from, to] = [timeParam(ctx.from, p), timeParam(ctx.to, p)];
  const [innerFrom, innerTo] = [timeParam(inner.from, p), timeParam(inner.to, p)];
  const limit = Math.min(q.limit, ctx.maxRows);
  // Ties in count by name in code-point order, so that the cut at `limit` is the same on every engine.
  const found = await ctx.sql.query<Record<string, unknown>>(
    `WITH counts AS (
       SELECT name, sum(n) AS count FROM (
         SELECT name, count AS n FROM event_counts_hourly
         WHERE tenant_id = ${tenant} AND hour >= ${innerFrom} AND hour < ${innerTo}
         UNION ALL
         SELECT name, 1 FROM events
         WHERE tenant_id = ${tenant} AND ((ts >= ${from} AND ts < ${innerFrom}) OR (ts >= ${innerTo} AND ts < ${to}))
       ) x GROUP BY name
       ORDER BY count DESC, name COLLATE "C" LIMIT ${p.add(limit + 1)})
     SELECT c.name, c.count,
            (SELECT ${isoSql('max(e.ts)')} FROM events e
             WHERE e.tenant_id = ${tenant} AND e.name = c.name AND e.ts >= ${from} AND e.ts < ${to}) AS last_seen
     FROM counts c ORDER BY c.count DESC, c.name COLLATE "C"`,
    p.values,
  );
  const rows = found
    .slice(0, limit)
    .map((r): Cell[] => [String(r.name), Number(r.count), r.last_seen === null ? null : String(r.last_seen)]);
  const whole = inner.from === ctx.from && inner.to === ctx.to;
  const reason =
    inner.from === inner.to
      ? 'the range holds no whole UTC hour: counts and last_seen from the detail rows'
      : whole
        ? 'counts summed from the hourly rollup (event_counts_hourly); last_seen from the detail rows, one index step per event'
        : 'counts of the whole UTC hours from the hourly rollup (event_counts_hourly), of the partial hours at the ends of the range from the detail rows; last_seen from the detail rows';
  return { columns: EVENT_COLUMNS, rows, source: 'detail', reason, truncated: found.length > limit };
}

const PROPERTY_COLUMNS: Column[] = [
  { name: 'event', type: 'string' },
  { name: 'property', type: 'string' },
  { name: 'type', type: 'string' },
  { name: 'count', type: 'number' },
  { name: 'top_values', type: 'json' },
];

/**
 * The sample in two steps, both per name through the (tenant_id, name, ts) index: the time of the
 * PROPERTY_SAMPLE-th most recent event over all names (each name's most recent PROPERTY_SAMPLE times,
 * read from the index alone, hold it), then the events from that time on, of which the most recent
 * PROPERTY_SAMPLE in (ts DESC, id DESC) order are the sample. Only the sampled rows' properties are read.
 */
function sampleSql(q: ExploreQuery, ctx: QueryContext, p: Params): string {
  const tenant = p.add(ctx.tenantId);
  const [from, to] = [timeParam(ctx.from, p), timeParam(ctx.to, p)];
  const hourFrom = timeParam(Math.floor(ctx.from / HOUR) * HOUR, p);
  const size = p.add(PROPERTY_SAMPLE);
  return `names AS (
      SELECT DISTINCT name FROM event_counts_hourly
      WHERE tenant_id = ${tenant} AND hour >= ${hourFrom} AND hour < ${to}
        ${q.event === undefined ? '' : `AND name = ${p.add(q.event)}`}
    ), cutoff AS (
      SELECT r.ts FROM names n CROSS JOIN LATERAL (
        SELECT e.ts FROM events e
        WHERE e.tenant_id = ${tenant} AND e.name = n.name AND e.ts >= ${from} AND e.ts < ${to}
        ORDER BY e.ts DESC LIMIT ${size}) r
      ORDER BY r.ts DESC OFFSET ${size}::int - 1 LIMIT 1
    ), sample AS (
      SELECT s.name, s.properties FROM names n CROSS JOIN LATERAL (
        SELECT e.name, e.properties, e.ts, e.id FROM events e
        WHERE e.tenant_id = ${tenant} AND e.name = n.name AND e.ts < ${to}
          AND e.ts >= greatest(${from}, (SELECT ts FROM cutoff))) s
      ORDER BY s.ts DESC, s.id DESC LIMIT ${size}
    )`;
}

async function properties(q: ExploreQuery, ctx: QueryContext): Promise<KindAnswer> {
  const p = new Params();
  const sample = sampleSql(q, ctx, p);
  const limit = Math.min(q.limit, ctx.maxRows);
  // Only JSON strings, numbers and booleans have values to list (as text, as `->>` writes them);
  // properties that are not an object (never stored so, but jsonb allows it) have no keys.
  const found = await ctx.sql.query<Record<string, unknown>>(
    `WITH ${sample}, keys AS (
       SELECT s.name, k.key, jsonb_typeof(k.value) AS type,
              CASE WHEN jsonb_typeof(k.value) IN ('string', 'number', 'boolean') THEN k.value #>> '{}' END AS value
       FROM sample s
       CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(s.properties) = 'object' THEN s.properties ELSE '{}' END) k
     ), counted AS (
       SELECT name, key, type, count(*) AS n FROM keys GROUP BY 1, 2, 3
     ), ranked AS (
       SELECT name, key, type, value, count(*) AS n,
              row_number() OVER (PARTITION BY name, key, type ORDER BY count(*) DESC, value COLLATE "C") AS rank
       FROM keys WHERE value IS NOT NULL GROUP BY 1, 2, 3, 4
     ), tops AS (
       SELECT name, key, type, array_agg(value ORDER BY rank) AS top_values, array_agg(n ORDER BY rank) AS top_counts
       FROM ranked WHERE rank <= ${p.add(TOP_VALUES)} GROUP BY 1, 2, 3
     )
     SELECT c.name, c.key, c.type, c.n, t.top_values, t.top_counts
     FROM counted c LEFT JOIN tops t ON t.name = c.name AND t.key = c.key AND t.type = c.type
     ORDER BY c.name COLLATE "C", c.n DESC, c.key COLLATE "C", c.type
     LIMIT ${p.add(limit + 1)}`,
    p.values,
  );
  const rows = found.slice(0, limit).map((r): Cell[] => {
    const values = (r.top_values as unknown[] | null) ?? [];
    const counts = (r.top_counts as unknown[] | null) ?? [];
    const top = values.map((value, i) => ({ value: String(value), count: Number(counts[i]) }));
    return [String(r.name), `properties.${String(r.key)}`, String(r.type), Number(r.n), JSON.stringify(top)];
  });
  return {
    columns: PROPERTY_COLUMNS,
    rows,
    source: 'detail',
    reason: `sampled: the top-level property keys of the ${PROPERTY_SAMPLE} most recent events in the range (detail rows); counts and top values are within that sample`,
    truncated: found.length > limit,
  };
}

export const explore: KindRunner<ExploreQuery> = (q, ctx) =>
  q.what === 'events' ? events(q, ctx) : properties(q, ctx);
