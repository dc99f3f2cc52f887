/**
 * The rollups as formulas over detail rows, written once: the insert paths (store.ts) apply them to the
 * rows a statement inserted, the rebuild here to a day of stored detail. direct-copy.ts computes the same
 * figures in JavaScript for batches COPY stores whole.
 *
 * - event_counts_hourly: per (tenant, name, UTC hour) the count and Σ 1/sampleRate.
 * - path_stats_hourly: per (tenant, method, route or '(unmatched)', UTC hour) the count, status classes,
 *   duration sum/min/max and latency histogram.
 * - event_props_hourly: per (tenant, name, key, value, UTC hour) the count of events whose top-level
 *   property `key` is a JSON string, number or boolean, valued as `properties->>key` prints it, for the
 *   (name, key) pairs registered in rollup_dimensions (the store's `dimensions`).
 * - user_activity_hourly: per (tenant, name, UTC hour) each user key (`coalesce(user_id, anonymous_id)`)
 *   that did the event, once; events with neither id are left out. Kept only by stores opened with
 *   `activityRollup` (it costs about half again the ingest CPU); complete from rollup_coverage's
 *   complete_from on, which is 'infinity' while a store that does not keep it runs (registerActivity).
 */
import { INSERT_PATH_STATS } from './direct-copy.js';
import type { RollupDimensions } from './query/types.js';
import { LATENCY_BUCKETS_MS } from './rows.js';
import type { SqlClient } from './sql-client.js';
import type { Store } from './types.js';

// ---------------------------------------------------------------- formulas

/** event_counts_hourly's (tenant_id, name, hour, count, weighted) of rows with tenant_id, name, ts, context. */
export const EVENT_COUNTS_FIGURES = `tenant_id, name, date_trunc('hour', ts, 'UTC'), count(*),
  sum(1.0 / coalesce((context->>'sampleRate')::float8, 1.0))`;

const BUCKETS = LATENCY_BUCKETS_MS.length + 1;
// A row's histogram bucket is 1 + the number of bounds below its duration (bucket i counts durations
// <= bound i, as Prometheus' `le`). width_bucket() finds it by binary search in one call, where a
// subquery over the bounds cost a third of a request log's insert on PGlite. width_bucket(x, lower
// bounds) counts the bounds <= x; over the negated bounds in ascending order it counts the bounds >= d,
// and the bounds below d are the rest.
const NEGATED_BOUNDS = `ARRAY[${[...LATENCY_BUCKETS_MS]
  .reverse()
  .map((b) => -b)
  .join(', ')}]::float8[]`;
const BUCKET_ARRAY = `ARRAY[${Array.from({ length: BUCKETS }, (_, i) => `count(*) FILTER (WHERE bucket = ${i + 1})`).join(', ')}]::bigint[]`;

/** The histogram bucket (1-based) of a duration column, as path_stats_hourly counts it. */
export const latencyBucket = (duration: string) => `${BUCKETS} - width_bucket(-${duration}, ${NEGATED_BOUNDS})`;

/**
 * path_stats_hourly's columns (INSERT_PATH_STATS order) of rows with tenant_id, method, route, status,
 * duration_ms, ts and `bucket` (latencyBucket); group by 1, 2, 3, 4.
 */
export const PATH_STATS_FIGURES = `tenant_id, method, coalesce(route, '(unmatched)'), date_trunc('hour', ts, 'UTC'),
  count(*), count(*) FILTER (WHERE status BETWEEN 200 AND 299), count(*) FILTER (WHERE status BETWEEN 300 AND 399),
  count(*) FILTER (WHERE status BETWEEN 400 AND 499), count(*) FILTER (WHERE status >= 500),
  sum(duration_ms), min(duration_ms), max(duration_ms), ${BUCKET_ARRAY}`;

/**
 * event_props_hourly's (tenant_id, name, key, value, hour, count) of the event rows `source` (aliased
 * `e`: tenant_id, name, properties, ts), for the dimensions given as two parallel text arrays (the
 * parameters `names` and `keys`, never spliced values). jsonb_typeof leaves out a missing key, JSON null,
 * objects and arrays.
 */
export const propsFigures = (source: string, names: string, keys: string) => `
  SELECT e.tenant_id, e.name, d.key, e.properties ->> d.key, date_trunc('hour', e.ts, 'UTC'), count(*)
  FROM ${source} JOIN unnest(${names}::text[], ${keys}::text[]) AS d(name, key) ON d.name = e.name
  WHERE jsonb_typeof(e.properties -> d.key) IN ('string', 'number', 'boolean')
  GROUP BY 1, 2, 3, 4, 5`;

/**
 * user_activity_hourly's (tenant_id, name, hour, user_key) of the event rows `source` (tenant_id, name,
 * user_id, anonymous_id, ts), each once.
 */
export const activityFigures = (source: string) => `
  SELECT DISTINCT tenant_id, name, date_trunc('hour', ts, 'UTC'), coalesce(user_id, anonymous_id)
  FROM ${source} WHERE coalesce(user_id, anonymous_id) IS NOT NULL`;

export const INSERT_ACTIVITY = `INSERT INTO user_activity_hourly (tenant_id, name, hour, user_key)`;
/** Presence only: a (tenant, name, hour, user) already there stays as it is. */
export const MERGE_ACTIVITY = `ON CONFLICT (tenant_id, name, hour, user_key) DO NOTHING`;

export const INSERT_PROPS = `INSERT INTO event_props_hourly AS r (tenant_id, name, key, value, hour, count)`;
export const MERGE_PROPS = `ON CONFLICT (tenant_id, name, key, hour, value) DO UPDATE SET count = r.count + EXCLUDED.count`;

// ---------------------------------------------------------------- dimensions

/**
 * The dimensions by event name, without duplicates or empty lists. A Map, not the config's record: an
 * event named `constructor` or `__proto__` must not find Object.prototype's members.
 */
export type DimensionMap = ReadonlyMap<string, readonly string[]>;

export function dimensionMap(dimensions: RollupDimensions | undefined): DimensionMap {
  const map = new Map<string, string[]>();
  for (const [name, keys] of Object.entries(dimensions ?? {})) {
    const unique = [...new Set(keys)];
    if (unique.length > 0) map.set(name, unique);
  }
  return map;
}

/** The dimensions as the two parallel arrays (names, keys) the SQL takes as parameters. */
export function dimensionArrays(dims: DimensionMap): [names: string[], keys: string[]] {
  const names: string[] = [];
  const keys: string[] = [];
  for (const [name, list] of dims) {
    for (const key of list) {
      names.push(name);
      keys.push(key);
    }
  }
  return [names, keys];
}

/**
 * Records what a store's writers roll up (store.ts calls it after migrating, and before its first insert):
 * each pair not yet registered is complete from the start of the next UTC hour (events of the current
 * hour stored before now were not counted), and a registered pair the store no longer rolls up is
 * dropped, so that no reader trusts a rollup nobody maintains. Returns false when the schema has no
 * rollup_dimensions yet (not migrated): nothing was done.
 */
export async function registerDimensions(sql: SqlClient, dims: DimensionMap): Promise<boolean> {
  const [names, keys] = dimensionArrays(dims);
  return sql.transaction(async (tx) => {
    const [found] = await tx.query<{ t: string | null }>(`SELECT to_regclass('rollup_dimensions')::text AS t`);
    if (!found?.t) return false;
    await tx.query(
      `DELETE FROM rollup_dimensions
       WHERE (name, key) NOT IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
      [names, keys],
    );
    await tx.query(
      `INSERT INTO rollup_dimensions (name, key, complete_from)
       SELECT n, k, date_trunc('hour', now(), 'UTC') + interval '1 hour' FROM unnest($1::text[], $2::text[]) AS d(n, k)
       ORDER BY 1, 2
       ON CONFLICT (name, key) DO NOTHING`,
      [names, keys],
    );
    return true;
  });
}

/**
 * From when event_props_hourly holds every stored event of (name, key): epoch ms of the first complete
 * hour (-Infinity after a full rebuild), or undefined when the pair is not rolled up. Hours before it
 * must be answered from detail.
 */
export async function rollupCoverage(sql: SqlClient, name: string, key: string): Promise<number | undefined> {
  const [row] = await sql.query<{ always: boolean; ms: string | number | null }>(
    `SELECT complete_from = '-infinity'::timestamptz AS always,
            CASE WHEN isfinite(complete_from) THEN (extract(epoch FROM complete_from) * 1000)::float8 END AS ms
     FROM rollup_dimensions WHERE name = $1 AND key = $2`,
    [name, key],
  );
  if (!row) return undefined;
  return row.always ? Number.NEGATIVE_INFINITY : Number(row.ms);
}

/** Every registered dimension with its coverage (as rollupCoverage), by event name. */
export async function rollupDimensions(sql: SqlClient): Promise<Map<string, Map<string, number>>> {
  const rows = await sql.query<{ name: string; key: string; always: boolean; ms: string | number | null }>(
    `SELECT name, key, complete_from = '-infinity'::timestamptz AS always,
            CASE WHEN isfinite(complete_from) THEN (extract(epoch FROM complete_from) * 1000)::float8 END AS ms
     FROM rollup_dimensions ORDER BY name, key`,
  );
  const out = new Map<string, Map<string, number>>();
  for (const r of rows) {
    const keys = out.get(r.name) ?? new Map<string, number>();
    keys.set(r.key, r.always ? Number.NEGATIVE_INFINITY : Number(r.ms));
    out.set(r.name, keys);
  }
  return out;
}

/**
 * Records whether a store's writers keep user_activity_hourly (store.ts calls it where it registers
 * dimensions: after migrating, and before its first insert), so that rollup_coverage never claims hours
 * nobody maintained:
 * - `keeps` false: complete_from becomes 'infinity' (complete nowhere; retention reads detail). A store
 *   that stops keeping the rollup thereby invalidates it, and one that starts again begins afresh.
 * - `keeps` true: 'infinity' (or no row) becomes the start of the next UTC hour (events of the current
 *   hour stored before now may be missing; `tally rollups rebuild` fills in the past); a finite value,
 *   or '-infinity', is left as it is.
 * Returns false when the schema has no rollup_coverage yet (not migrated): nothing was done.
 */
export async function registerActivity(sql: SqlClient, keeps: boolean): Promise<boolean> {
  return sql.transaction(async (tx) => {
    const [found] = await tx.query<{ t: string | null }>(`SELECT to_regclass('rollup_coverage')::text AS t`);
    if (!found?.t) return false;
    await tx.query(
      keeps
        ? `INSERT INTO rollup_coverage AS c (rollup, complete_from)
           VALUES ('user_activity_hourly', date_trunc('hour', now(), 'UTC') + interval '1 hour')
           ON CONFLICT (rollup) DO UPDATE SET complete_from = EXCLUDED.complete_from
           WHERE c.complete_from = 'infinity'::timestamptz`
        : `INSERT INTO rollup_coverage AS c (rollup, complete_from) VALUES ('user_activity_hourly', 'infinity')
           ON CONFLICT (rollup) DO UPDATE SET complete_from = EXCLUDED.complete_from
           WHERE c.complete_from <> 'infinity'::timestamptz`,
    );
    return true;
  });
}

/**
 * From when a rollup of rollup_coverage (`user_activity_hourly`) holds every stored event: epoch ms of the
 * first complete hour (-Infinity when complete for all time), or undefined when it is not kept (no row,
 * or 'infinity': the store's writers do not maintain it).
 */
export async function rollupCoverageOf(sql: SqlClient, rollup: 'user_activity_hourly'): Promise<number | undefined> {
  const [row] = await sql.query<{ always: boolean; never: boolean; ms: string | number | null }>(
    `SELECT complete_from = '-infinity'::timestamptz AS always, complete_from = 'infinity'::timestamptz AS never,
            CASE WHEN isfinite(complete_from) THEN (extract(epoch FROM complete_from) * 1000)::float8 END AS ms
     FROM rollup_coverage WHERE rollup = $1`,
    [rollup],
  );
  if (!row || row.never) return undefined;
  return row.always ? Number.NEGATIVE_INFINITY : Number(row.ms);
}

// ---------------------------------------------------------------- rebuild

export interface RebuildOptions {
  /** First instant to rebuild; its whole UTC day is rebuilt. Default: the oldest detail row's day. */
  from?: Date;
  /** End of the range (exclusive); the UTC day holding the last instant before it is rebuilt whole. Default: the newest detail row's day. */
  to?: Date;
  /** The property rollups to rebuild. Default: the registered ones (rollup_dimensions). */
  dimensions?: RollupDimensions;
  /** After each day's transaction: the day (`YYYY-MM-DD`) and the detail rows it rolled up. */
  onProgress?: (p: { day: string; events: number; requestLogs: number }) => void;
}

export interface RebuildResult {
  /** UTC days rebuilt. */
  days: number;
  /** Detail rows rolled up. */
  events: number;
  requestLogs: number;
  /**
   * (tenant, table, day) left as they were: an archive part of theirs is not restored, so their detail
   * is gone or going (cleanup) while the rollups still count it.
   */
  archived: number;
}

const DAY_MS = 86_400_000;
const ROLLUP_LOCK = `LOCK TABLE event_counts_hourly, event_props_hourly, user_activity_hourly, path_stats_hourly
  IN SHARE ROW EXCLUSIVE MODE`;

/**
 * A detail row's (tenant, day) whose detail is not all there: an archive part of that tenant, table and
 * day that is not restored (cleanup deleted or is deleting its rows; the rollups still count them).
 * `$3` is the day, `$4` the table.
 */
const archivedDay = (alias: string) => `EXISTS (
  SELECT 1 FROM archive_metadata m
  WHERE m.tenant_id = ${alias}.tenant_id AND m.table_name = $4 AND m.day = $3::date AND m.restored_at IS NULL)`;

/** $1, $2: the day's bounds; $3 the day; $4 'events'. */
const REBUILD_EVENT_COUNTS = [
  `DELETE FROM event_counts_hourly r WHERE hour >= $1::timestamptz AND hour < $2::timestamptz AND NOT ${archivedDay('r')}`,
  `WITH ins AS (
     INSERT INTO event_counts_hourly (tenant_id, name, hour, count, weighted)
     SELECT ${EVENT_COUNTS_FIGURES}
     FROM events x WHERE ts >= $1::timestamptz AND ts < $2::timestamptz AND NOT ${archivedDay('x')}
     GROUP BY 1, 2, 3
     RETURNING count)
   SELECT coalesce(sum(count), 0)::float8 AS n FROM ins`,
];

/** As REBUILD_EVENT_COUNTS; $4 'request_logs'. */
const REBUILD_PATH_STATS = [
  `DELETE FROM path_stats_hourly r WHERE hour >= $1::timestamptz AND hour < $2::timestamptz AND NOT ${archivedDay('r')}`,
  `WITH ins AS (
     ${INSERT_PATH_STATS}
     SELECT ${PATH_STATS_FIGURES}
     FROM (SELECT x.*, ${latencyBucket('x.duration_ms')} AS bucket
           FROM request_logs x
           WHERE ts >= $1::timestamptz AND ts < $2::timestamptz AND NOT ${archivedDay('x')}) b
     GROUP BY 1, 2, 3, 4
     RETURNING count)
   SELECT coalesce(sum(count), 0)::float8 AS n FROM ins`,
];

/** As REBUILD_EVENT_COUNTS, for the dimensions $5 (names) and $6 (keys) only. */
const REBUILD_PROPS = [
  `DELETE FROM event_props_hourly r
   WHERE hour >= $1::timestamptz AND hour < $2::timestamptz AND NOT ${archivedDay('r')}
     AND (name, key) IN (SELECT * FROM unnest($5::text[], $6::text[]))`,
  `${INSERT_PROPS}
   ${propsFigures(
     `(SELECT * FROM events x WHERE ts >= $1::timestamptz AND ts < $2::timestamptz AND NOT ${archivedDay('x')}) e`,
     '$5',
     '$6',
   )}`,
];

/** As REBUILD_EVENT_COUNTS. */
const REBUILD_ACTIVITY = [
  `DELETE FROM user_activity_hourly r
   WHERE hour >= $1::timestamptz AND hour < $2::timestamptz AND NOT ${archivedDay('r')}`,
  `WITH ins AS (
     ${INSERT_ACTIVITY}
     ${activityFigures(`(SELECT * FROM events x WHERE ts >= $1::timestamptz AND ts < $2::timestamptz AND NOT ${archivedDay('x')}) e`)}
     RETURNING 1)
   SELECT count(*)::float8 AS n FROM ins`,
];

/**
 * The first hour a rebuild of all detail leaves complete: the day after the last archived day of events
 * not restored (the rollups cannot be recomputed for rows only an archive file holds), else '-infinity'.
 */
const REBUILT_FROM = `coalesce(
  (SELECT max(day) + 1 FROM archive_metadata WHERE table_name = 'events' AND restored_at IS NULL)::timestamp
    AT TIME ZONE 'UTC',
  '-infinity'::timestamptz)`;

const ARCHIVED_DAYS = `SELECT count(*)::int AS n FROM (
  SELECT DISTINCT tenant_id, table_name FROM archive_metadata WHERE day = $1::date AND restored_at IS NULL) a`;

/**
 * Recomputes event_counts_hourly, path_stats_hourly, event_props_hourly and (when the store's writers
 * keep it: rollup_coverage is not 'infinity') user_activity_hourly from the detail rows, one UTC day per
 * transaction: that day's rollup rows are deleted and inserted anew from the day's detail, by the
 * formulas the insert paths use. A (tenant, table, day) with an archive part not restored is left as it
 * is (its rollups count rows the detail no longer holds). Without `from` and `to` the whole range of
 * detail is rebuilt, and every rebuilt dimension that is registered becomes complete from '-infinity'
 * (or from the day after the last archived day of events, when there is one: the rollup of a dimension
 * cannot be recomputed for rows only an archive file holds), as does a kept user_activity_hourly in
 * rollup_coverage.
 *
 * Exactly once beside running writers: each day's transaction first takes SHARE ROW EXCLUSIVE on the
 * rollup tables, which conflicts with the ROW EXCLUSIVE every insert into them takes (and with
 * itself) but not with inserts into the detail tables nor with readers. A writer's transaction stores its
 * detail and its rollup upsert together (one statement on the SQL path; COPY then the upsert on the
 * direct path), so when the lock is granted:
 * - a writer that had upserted its rollup has committed (the lock waited for it), and the statements
 *   that follow, each on a fresh READ COMMITTED snapshot, see its detail and count it once;
 * - a writer that had not reached its upsert has not committed, so its detail is invisible here; its
 *   upsert waits for this transaction to commit and then adds its rows onto the rebuilt figures.
 * Either way each row is counted once. Writers take the rollup tables in the order event_counts_hourly,
 * event_props_hourly, user_activity_hourly (store.ts), the order LOCK TABLE takes them here, so neither
 * waits on the other in a circle. Readers are never blocked: they see the day's old figures until it commits.
 */
export async function rebuildRollups(store: Store, options: RebuildOptions = {}): Promise<RebuildResult> {
  const { sql } = store;
  const registered = await rollupDimensions(sql);
  const dims =
    options.dimensions !== undefined
      ? dimensionMap(options.dimensions)
      : new Map([...registered].map(([name, keys]) => [name, [...keys.keys()]]));
  const [names, keys] = dimensionArrays(dims);
  const whole = options.from === undefined && options.to === undefined;
  // user_activity_hourly only when the store's writers keep it (registerActivity): rebuilding a rollup
  // nobody maintains would cost a pass over detail for nothing.
  const activity = (await rollupCoverageOf(sql, 'user_activity_hourly')) !== undefined;

  const range = await detailRange(sql);
  const first = options.from ? floorDay(options.from.getTime()) : range?.first;
  const last = options.to ? floorDay(options.to.getTime() - 1) : range?.last;
  const result: RebuildResult = { days: 0, events: 0, requestLogs: 0, archived: 0 };

  if (first !== undefined && last !== undefined) {
    for (let day = first; day <= last; day += DAY_MS) {
      const bounds = [new Date(day).toISOString(), new Date(day + DAY_MS).toISOString()];
      const date = bounds[0]?.slice(0, 10) as string;
      const figures = await sql.transaction(async (tx) => {
        await tx.query(ROLLUP_LOCK);
        const dayParams = [...bounds, date];
        const events = await rebuild(tx, REBUILD_EVENT_COUNTS, [...dayParams, 'events']);
        const requestLogs = await rebuild(tx, REBUILD_PATH_STATS, [...dayParams, 'request_logs']);
        if (activity) await rebuild(tx, REBUILD_ACTIVITY, [...dayParams, 'events']);
        if (names.length > 0) {
          for (const statement of REBUILD_PROPS) await tx.query(statement, [...dayParams, 'events', names, keys]);
        }
        const [archived] = await tx.query<{ n: number }>(ARCHIVED_DAYS, [date]);
        return { events, requestLogs, archived: Number(archived?.n ?? 0) };
      });
      result.days++;
      result.events += figures.events;
      result.requestLogs += figures.requestLogs;
      result.archived += figures.archived;
      options.onProgress?.({ day: date, events: figures.events, requestLogs: figures.requestLogs });
    }
  }

  if (whole && names.length > 0) {
    // Only pairs a writer maintains become complete: a rebuilt pair nobody registered would be complete
    // up to now and then miss every event stored after.
    await sql.query(
      `UPDATE rollup_dimensions r
       SET complete_from = least(r.complete_from, ${REBUILT_FROM})
       WHERE (name, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
      [names, keys],
    );
  }
  if (whole && activity) {
    // Complete (up to the archive rule above) only while writers keep it: a store opened without
    // activityRollup since the rebuild began has set 'infinity', which stays.
    await sql.query(
      `UPDATE rollup_coverage SET complete_from = least(complete_from, ${REBUILT_FROM})
       WHERE rollup = 'user_activity_hourly' AND complete_from <> 'infinity'::timestamptz`,
    );
  }
  return result;
}

async function rebuild(tx: SqlClient, [remove, insert]: string[], params: unknown[]): Promise<number> {
  await tx.query(remove as string, params);
  const [row] = await tx.query<{ n: number | string }>(insert as string, params);
  return Number(row?.n ?? 0);
}

/** The first and last UTC day (epoch ms of midnight) holding detail rows, or undefined when there are none. */
async function detailRange(sql: SqlClient): Promise<{ first: number; last: number } | undefined> {
  const [row] = await sql.query<{ first: string | null; last: string | null }>(
    `SELECT to_char(least(e.first, r.first) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS first,
            to_char(greatest(e.last, r.last) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS last
     FROM (SELECT min(ts) AS first, max(ts) AS last FROM events) e,
          (SELECT min(ts) AS first, max(ts) AS last FROM request_logs) r`,
  );
  if (!row?.first || !row.last) return undefined;
  return { first: Date.parse(`${row.first}T00:00:00Z`), last: Date.parse(`${row.last}T00:00:00Z`) };
}

function floorDay(ms: number): number {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}
