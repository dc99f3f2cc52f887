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
import {
  EXPLORE_EVENT_COLUMNS,
  EXPLORE_LISTED_COLUMN,
  EXPLORE_PROPERTY_COLUMNS,
  EXPLORE_PROPERTY_SAMPLE as PROPERTY_SAMPLE,
  EXPLORE_TOP_VALUES as TOP_VALUES,
  type ExploreQuery,
} from '@tally/core';
import { isoSql, Params, timeParam } from './sql.js';
import type { Cell, KindAnswer, QueryContext, KindRunner } from './types.js';

const HOUR = 3_600_000;

async function events(q: ExploreQuery, ctx: QueryContext): Promise<KindAnswer> {
  // The whole UTC hours inside the range; none when it holds no whole hour (then all of it is detail).
  let inner = { from: Math.ceil(ctx.from / HOUR) * HOUR, to: Math.floor(ctx.to / HOUR) * HOUR };
  if (inner.from >= inner.to) inner = { from: ctx.to, to: ctx.to };
  const p = new Params();
  const tenant = p.add(ctx.tenantId);
  const [from, to] = [timeParam(ctx.from, p), timeParam(ctx.to, p)];
  const [innerFrom, innerTo] = [timeParam(inner.from, p), timeParam(inner.to, p)];
  const limit = Math.min(q.limit, ctx.maxRows);
  // Names from the rollup's hours that touch the range; then per name, through indexes only, the
  // rollup's sum over the whole hours and the detail count of the partial ones. Names counted 0 had
  // events only outside the range, in its first or last hour. Ties in count by name in code-point
  // order, so that the cut at `limit` is the same on every engine.
  const found = await ctx.sql.query<Record<string, unknown>>(
    `WITH names AS (
       SELECT DISTINCT name FROM event_counts_hourly
       WHERE tenant_id = ${tenant} AND hour >= ${timeParam(Math.floor(ctx.from / HOUR) * HOUR, p)} AND hour < ${to}
     ), counts AS (
       SELECT n.name,
              coalesce((SELECT sum(r.count) FROM event_counts_hourly r
                        WHERE r.tenant_id = ${tenant} AND r.name = n.name AND r.hour >= ${innerFrom} AND r.hour < ${innerTo}), 0)
              + (SELECT count(*) FROM events e
                 WHERE e.tenant_id = ${tenant} AND e.name = n.name AND e.ts >= ${from} AND e.ts < ${innerFrom})
              + (SELECT count(*) FROM events e
                 WHERE e.tenant_id = ${tenant} AND e.name = n.name AND e.ts >= ${innerTo} AND e.ts < ${to}) AS count
       FROM names n
     ), top AS (
       SELECT name, count FROM counts WHERE count > 0 ORDER BY count DESC, name COLLATE "C" LIMIT ${p.add(limit + 1)}
     )
     SELECT t.name, t.count,
            (SELECT ${isoSql('max(e.ts)')} FROM events e
             WHERE e.tenant_id = ${tenant} AND e.name = t.name AND e.ts >= ${from} AND e.ts < ${to}) AS last_seen
     FROM top t ORDER BY t.count DESC, t.name COLLATE "C"`,
    p.values,
  );
  const listed = ctx.listedEvents;
  const rows = found.slice(0, limit).map((r): Cell[] => {
    const row: Cell[] = [String(r.name), Number(r.count), r.last_seen === null ? null : String(r.last_seen)];
    if (listed) row.push(listed.has(String(r.name)));
    return row;
  });
  const whole = inner.from === ctx.from && inner.to === ctx.to;
  const reason =
    inner.from === inner.to
      ? 'the range holds no whole UTC hour: counts and last_seen from the detail rows'
      : whole
        ? 'counts summed from the hourly rollup (event_counts_hourly); last_seen from the detail rows, one index step per event'
        : 'counts of the whole UTC hours from the hourly rollup (event_counts_hourly), of the partial hours at the ends of the range from the detail rows; last_seen from the detail rows';
  const columns = [...EXPLORE_EVENT_COLUMNS, ...(listed ? [EXPLORE_LISTED_COLUMN] : [])];
  return { columns, rows, source: 'detail', reason, truncated: found.length > limit };
}

/**
 * The sample without reading more than it needs: the rollup's hourly counts say from which hour on the
 * range's whole hours hold PROPERTY_SAMPLE events (counted from the newest; the partial last hour is left
 * out of the count, so the hour found is never too late), and only events from that hour on are read,
 * per name through the (tenant_id, name, ts) index; the most recent PROPERTY_SAMPLE of them in
 * (ts DESC, id DESC) order are the sample. When the range holds fewer, the sample is all of it.
 */
function sampleSql(q: ExploreQuery, ctx: QueryContext, p: Params): string {
  const tenant = p.add(ctx.tenantId);
  const [from, to] = [timeParam(ctx.from, p), timeParam(ctx.to, p)];
  const hourFrom = timeParam(Math.floor(ctx.from / HOUR) * HOUR, p);
  const hourTo = timeParam(Math.floor(ctx.to / HOUR) * HOUR, p);
  const size = p.add(PROPERTY_SAMPLE);
  const named = q.event === undefined ? '' : `AND name = ${p.add(q.event)}`;
  return `names AS (
      SELECT DISTINCT name FROM event_counts_hourly
      WHERE tenant_id = ${tenant} AND hour >= ${hourFrom} AND hour < ${to} ${named}
    ), start AS (
      SELECT max(hour) AS hour FROM (
        SELECT hour, sum(sum(count)) OVER (ORDER BY hour DESC) AS newer FROM event_counts_hourly
        WHERE tenant_id = ${tenant} AND hour >= ${hourFrom} AND hour < ${hourTo} ${named}
        GROUP BY hour) h
      WHERE newer >= ${size}
    ), sample AS (
      SELECT s.name, s.properties FROM names n CROSS JOIN LATERAL (
        SELECT e.name, e.properties, e.ts, e.id FROM events e
        WHERE e.tenant_id = ${tenant} AND e.name = n.name AND e.ts < ${to}
          AND e.ts >= greatest(${from}, (SELECT hour FROM start))) s
      ORDER BY s.ts DESC, s.id DESC LIMIT ${size}
    )`;
}

async function properties(q: ExploreQuery, ctx: QueryContext): Promise<KindAnswer> {
  const p = new Params();
  const sample = sampleSql(q, ctx, p);
  const limit = Math.min(q.limit, ctx.maxRows);
  const top = p.add(TOP_VALUES);
  // One pass over the sample's keys, grouped down to (name, key, type, value): a key's count is the sum
  // over its values, and its top values the first of them. Only JSON strings, numbers and booleans have
  // values to list (as text, as `->>` writes them); the others group as one null value. Properties that
  // are not an object (never stored so, but jsonb allows it) have no keys.
  const found = await ctx.sql.query<Record<string, unknown>>(
    `WITH ${sample}, vals AS (
       SELECT s.name, k.key, jsonb_typeof(k.value) AS type,
              CASE WHEN jsonb_typeof(k.value) IN ('string', 'number', 'boolean') THEN k.value #>> '{}' END AS value,
              count(*) AS n
       FROM sample s
       CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(s.properties) = 'object' THEN s.properties ELSE '{}' END) k
       GROUP BY 1, 2, 3, 4
     ), ranked AS (
       SELECT name, key, type, value, n, sum(n) OVER w AS total,
              row_number() OVER (w ORDER BY value IS NULL, n DESC, value COLLATE "C") AS rank
       FROM vals WINDOW w AS (PARTITION BY name, key, type)
     )
     SELECT name, key, type, max(total) AS n,
            array_agg(value ORDER BY rank) FILTER (WHERE rank <= ${top} AND value IS NOT NULL) AS top_values,
            array_agg(n ORDER BY rank) FILTER (WHERE rank <= ${top} AND value IS NOT NULL) AS top_counts
     FROM ranked GROUP BY 1, 2, 3
     ORDER BY name COLLATE "C", max(total) DESC, key COLLATE "C", type
     LIMIT ${p.add(limit + 1)}`,
    p.values,
  );
  const rows = found.slice(0, limit).map((r): Cell[] => {
    const values = (r.top_values as unknown[] | null) ?? [];
    const counts = (r.top_counts as unknown[] | null) ?? [];
    const listed = values.map((value, i) => ({ value: String(value), count: Number(counts[i]) }));
    return [String(r.name), `properties.${String(r.key)}`, String(r.type), Number(r.n), JSON.stringify(listed)];
  });
  return {
    columns: [...EXPLORE_PROPERTY_COLUMNS],
    rows,
    source: 'detail',
    reason: `sampled: the top-level property keys of the ${PROPERTY_SAMPLE} most recent events in the range (detail rows); counts and top values are within that sample`,
    truncated: found.length > limit,
  };
}

export const explore: KindRunner<ExploreQuery> = (q, ctx) =>
  q.what === 'events' ? events(q, ctx) : properties(q, ctx);
