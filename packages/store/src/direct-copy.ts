/**
 * The fast path for a batch of events or request logs (Postgres, and PGlite on disk): COPY straight into
 * `events` or `request_logs`, then the rollup from figures made here. A batch of new rows (nearly every
 * batch) is stored as COPY stores it, without the staging table and the `INSERT … SELECT … ON CONFLICT …
 * RETURNING` that re-inserts every row one at a time (Postgres CPU per 1000-event batch: ~19 against
 * ~26 ms, `bench/ingest-http`; PGlite CPU per request log: ~35 against ~52 µs). The COPY goes in binary
 * format when every value encodes so (copy-binary.ts; store.ts `eventsBinary`, `requestLogsBinary`), else
 * in text.
 *
 * Exactly once still holds, because COPY is all or nothing: one id already stored (a redelivery), or any
 * value Postgres refuses, fails the whole COPY, its transaction rolls back with nothing written, and the
 * batch goes the usual way (staging + ON CONFLICT), which stores the new rows, reports the bad ones with
 * their SQLSTATE, and rolls up only what it inserted. A COPY that succeeded inserted every row, so the
 * rollup of the batch is the rollup of the inserted rows.
 *
 * The rollup here must equal what the SQL path computes (`date_trunc('hour', ts, 'UTC')`, weight
 * `1 / coalesce(sampleRate, 1)`), so a batch takes this path only when that is certain without asking
 * Postgres: every timestamp in the canonical form Tally writes (`canonicalTime`: its hour is then its
 * first 13 characters, with no offset, no rounding, no leap second or 24:00 to roll over), every
 * sampleRate absent or a positive finite number. Anything else goes the usual way.
 *
 * The same holds for the property rollup (event_props_hourly, rollups.ts): a value here must be the text
 * `properties->>key` gives in Postgres. Strings and booleans print alike; a number prints alike when
 * JavaScript writes it without an exponent (both then print the shortest decimal that JSON.stringify
 * wrote and Postgres parsed as a numeric), so a batch holding a dimension value JavaScript would write
 * as `1e+21` or `1e-7` (numeric prints every digit) goes the usual way, as does one whose value would
 * serialize through a toJSON or a wrapper object.
 *
 * And for user_activity_hourly: the user key is `coalesce(user_id, anonymous_id)`, which is the row's
 * `userId ?? anonymousId` as COPY writes them (absent or null is NULL), and a row with neither has none.
 */
import { canonicalTime } from '@tally/core';
import { type EventRow, LATENCY_BUCKETS_MS, type RequestLogRow } from './rows.js';

export interface DirectPlan {
  /** The rows in id order: concurrent COPYs of overlapping batches then lock ids in one order (no deadlock). */
  rows: readonly EventRow[];
  /** Rollup groups, as text columns for `unnest`. */
  groups: [tenants: string[], names: string[], hours: string[], counts: string[], weighted: string[]];
  /** event_props_hourly groups, as text columns for `unnest`; absent when the batch has none. */
  props?: PropsGroups;
  /**
   * user_activity_hourly groups: the distinct (tenant, name, hour, user key) of the batch; absent when the
   * store does not keep that rollup (StoreConfig.activityRollup).
   */
  activity?: ActivityGroups;
}

export type ActivityGroups = [tenants: string[], names: string[], hours: string[], users: string[]];

export type PropsGroups = [
  tenants: string[],
  names: string[],
  keys: string[],
  values: string[],
  hours: string[],
  counts: string[],
];

/**
 * The plan for a batch that may take the direct path, or undefined when it must go the usual way.
 * `dims`: the property keys rolled up, by event name (rollups.ts `dimensionMap`); `activity`: whether the
 * store keeps user_activity_hourly (when not, its groups are not even computed).
 */
export function planDirect(
  rows: readonly EventRow[],
  dims: ReadonlyMap<string, readonly string[]> = new Map(),
  activity = false,
): DirectPlan | undefined {
  if (!rows.every(hasCanonicalTime)) return undefined;
  const props = dims.size > 0 ? new PropsRollup() : undefined;
  const index = new Map<string, number>();
  const tenants: string[] = [];
  const names: string[] = [];
  const hours: string[] = [];
  const counts: number[] = [];
  const weighted: number[] = [];
  const users = activity ? new ActivityRollup() : undefined;
  let sorted = true;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i] as EventRow;
    const rate = (r.context as { sampleRate?: unknown }).sampleRate;
    if (rate !== undefined && !(typeof rate === 'number' && rate > 0 && Number.isFinite(rate))) return undefined;
    const hour = `${r.timestamp.slice(0, 13)}:00:00Z`;
    // NUL cannot be in a Postgres text value, so it cannot join two keys into one (a row holding one
    // fails the COPY, and this plan is not used).
    const key = `${r.tenantId}\u0000${r.name}\u0000${hour}`;
    let g = index.get(key);
    if (g === undefined) {
      g = tenants.length;
      index.set(key, g);
      tenants.push(r.tenantId);
      names.push(r.name);
      hours.push(hour);
      counts.push(0);
      weighted.push(0);
    }
    counts[g] = (counts[g] as number) + 1;
    weighted[g] = (weighted[g] as number) + (rate === undefined ? 1 : 1 / rate);
    if (i > 0 && (rows[i - 1] as EventRow).id > r.id) sorted = false;
    const keys = props && dims.get(r.name);
    if (keys && !props.add(r, hour, keys)) return undefined;
    users?.add(r, key);
  }
  return {
    rows: sorted ? rows : inIdOrder(rows),
    groups: [tenants, names, hours, counts.map(String), weighted.map(String)],
    ...(props && props.size > 0 ? { props: props.groups() } : {}),
    ...(users ? { activity: users.columns } : {}),
  };
}

/** A batch's user_activity_hourly groups: each (tenant, name, hour, user key) once. */
class ActivityRollup {
  private readonly seen = new Set<string>();
  readonly columns: ActivityGroups = [[], [], [], []];

  /** `group`: the row's (tenant, name, hour) key of event_counts_hourly. */
  add(r: EventRow, group: string): void {
    const user = r.userId ?? r.anonymousId;
    if (user === undefined || user === null) return;
    const key = `${group}\u0000${user}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    const [tenants, names, hours, users] = this.columns;
    tenants.push(r.tenantId);
    names.push(r.name);
    hours.push(`${r.timestamp.slice(0, 13)}:00:00Z`);
    users.push(user);
  }
}

/** A batch's event_props_hourly groups, counted as the SQL rollup counts them (rollups.ts `propsFigures`). */
class PropsRollup {
  private readonly index = new Map<string, number>();
  private readonly columns: PropsGroups = [[], [], [], [], [], []];
  private readonly counts: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  /** Counts the row's dimension values; false when one of them cannot be printed as Postgres would. */
  add(r: EventRow, hour: string, keys: readonly string[]): boolean {
    const properties: unknown = r.properties;
    if (typeof properties !== 'object' || properties === null || Array.isArray(properties)) return true;
    if (!isPlainObject(properties)) return false;
    for (const key of keys) {
      if (!Object.hasOwn(properties, key)) continue;
      const value = jsonText((properties as Record<string, unknown>)[key]);
      if (value === undefined) return false;
      if (value === null) continue;
      // NUL cannot be in a Postgres text value (nor in jsonb), so it cannot join two keys into one (a
      // row holding one fails the COPY, and this plan is not used).
      const group = `${r.tenantId}\u0000${r.name}\u0000${key}\u0000${hour}\u0000${value}`;
      let g = this.index.get(group);
      if (g === undefined) {
        g = this.counts.length;
        this.index.set(group, g);
        const [tenants, names, keyColumn, values, hours] = this.columns;
        tenants.push(r.tenantId);
        names.push(r.name);
        keyColumn.push(key);
        values.push(value);
        hours.push(hour);
        this.counts.push(0);
      }
      this.counts[g] = (this.counts[g] as number) + 1;
    }
    return true;
  }

  groups(): PropsGroups {
    const [tenants, names, keys, values, hours] = this.columns;
    return [tenants, names, keys, values, hours, this.counts.map(String)];
  }
}

/**
 * A property value as `properties->>key` prints it once JSON.stringify wrote it and Postgres parsed it:
 * the text for a string, number or boolean; null for what Postgres would not count (JSON null, an object,
 * an array, or nothing: a value JSON.stringify leaves out); undefined when this cannot be sure.
 */
function jsonText(value: unknown): string | null | undefined {
  switch (typeof value) {
    case 'string':
      return value;
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number': {
      // NaN and ±Infinity are written as null.
      if (!Number.isFinite(value)) return null;
      const text = JSON.stringify(value);
      return text.includes('e') ? undefined : text;
    }
    case 'object':
      if (value === null) return null;
      // An array prints as a JSON array unless it has a toJSON of its own.
      if (Array.isArray(value)) return 'toJSON' in value ? undefined : null;
      return isPlainObject(value) ? null : undefined;
    default:
      // undefined, functions and symbols are left out; a bigint fails JSON.stringify and the batch.
      return null;
  }
}

/** An object JSON.stringify writes as its own enumerable properties: no toJSON, no wrapper, no class. */
function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as unknown;
  return (proto === Object.prototype || proto === null) && !('toJSON' in value);
}

/** The request logs' plan: rows in id order and their path_stats_hourly groups, as text columns. */
export interface DirectLogPlan {
  rows: readonly RequestLogRow[];
  groups: string[][];
}

interface PathGroup {
  tenant: string;
  method: string;
  route: string;
  hour: string;
  count: number;
  /** 2xx, 3xx, 4xx, 5xx (a 1xx counts in none, as in SQL). */
  classes: [number, number, number, number];
  sum: number;
  min: number;
  max: number;
  buckets: number[];
}

/**
 * As planDirect, for request logs and the path_stats_hourly rollup of insertRequestLogsFrom (store.ts):
 * per (tenant, method, route or '(unmatched)', hour) the count, status classes, duration sum/min/max and
 * latency histogram (bucket i counts durations ≤ LATENCY_BUCKETS_MS[i], the last one the rest). Every
 * figure but the sum is exact; the sum may differ from SQL's `sum()` in its last bits (float additions in
 * another order). Durations must be finite (checkRequestLog makes sure; a batch that is not goes the
 * usual way).
 */
export function planDirectLogs(rows: readonly RequestLogRow[]): DirectLogPlan | undefined {
  if (!rows.every(hasCanonicalTime)) return undefined;
  const index = new Map<string, PathGroup>();
  let sorted = true;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i] as RequestLogRow;
    const d = r.durationMs;
    if (!Number.isFinite(d)) return undefined;
    const route = r.route ?? '(unmatched)';
    const hour = `${r.timestamp.slice(0, 13)}:00:00Z`;
    const key = `${r.tenantId}\u0000${r.method}\u0000${route}\u0000${hour}`;
    let g = index.get(key);
    if (g === undefined) {
      g = {
        tenant: r.tenantId,
        method: r.method,
        route,
        hour,
        count: 0,
        classes: [0, 0, 0, 0],
        sum: 0,
        min: d,
        max: d,
        buckets: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0),
      };
      index.set(key, g);
    }
    g.count++;
    const status = r.status;
    if (status >= 500) g.classes[3]++;
    else if (status >= 400) g.classes[2]++;
    else if (status >= 300) g.classes[1]++;
    else if (status >= 200) g.classes[0]++;
    g.sum += d;
    if (d < g.min) g.min = d;
    if (d > g.max) g.max = d;
    let bucket = 0;
    while (bucket < LATENCY_BUCKETS_MS.length && d > (LATENCY_BUCKETS_MS[bucket] as number)) bucket++;
    (g.buckets[bucket] as number)++;
    if (i > 0 && (rows[i - 1] as RequestLogRow).id > r.id) sorted = false;
  }
  const groups: string[][] = Array.from({ length: 13 }, () => []);
  for (const g of index.values()) {
    const values = [g.tenant, g.method, g.route, g.hour, g.count, ...g.classes, g.sum, g.min, g.max];
    for (let c = 0; c < 12; c++) groups[c]?.push(String(values[c]));
    groups[12]?.push(`{${g.buckets.join(',')}}`);
  }
  return { rows: sorted ? rows : inIdOrder(rows), groups };
}

/**
 * How a batch's path stats join what is stored: one statement's head and tail, shared by this rollup and
 * the SQL path's (store.ts), so the two cannot merge differently.
 */
export const INSERT_PATH_STATS = `INSERT INTO path_stats_hourly AS r (tenant_id, method, route, hour, count, status_2xx,
  status_3xx, status_4xx, status_5xx, duration_sum, duration_min, duration_max, latency_buckets)`;
export const MERGE_PATH_STATS = `ON CONFLICT (tenant_id, method, route, hour) DO UPDATE SET
  count = r.count + EXCLUDED.count,
  status_2xx = r.status_2xx + EXCLUDED.status_2xx, status_3xx = r.status_3xx + EXCLUDED.status_3xx,
  status_4xx = r.status_4xx + EXCLUDED.status_4xx, status_5xx = r.status_5xx + EXCLUDED.status_5xx,
  duration_sum = r.duration_sum + EXCLUDED.duration_sum,
  duration_min = least(r.duration_min, EXCLUDED.duration_min),
  duration_max = greatest(r.duration_max, EXCLUDED.duration_max),
  latency_buckets = ARRAY(SELECT u.a + u.b FROM unnest(r.latency_buckets, EXCLUDED.latency_buckets)
                          WITH ORDINALITY AS u(a, b, i) ORDER BY u.i)`;

/** The rollup of a batch of request logs COPY stored whole, from the figures planDirectLogs made. */
export const ROLLUP_PATH_GROUPS = `
${INSERT_PATH_STATS}
SELECT t, m, p, h::timestamptz, c::bigint, s2::bigint, s3::bigint, s4::bigint, s5::bigint, ds::float8, dmin::float8,
  dmax::float8, b::bigint[]
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
            $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
  AS g(t, m, p, h, c, s2, s3, s4, s5, ds, dmin, dmax, b)
ORDER BY 1, 2, 3, 4
${MERGE_PATH_STATS}`;

function hasCanonicalTime(r: { timestamp: string }): boolean {
  return !Number.isNaN(canonicalTime(r.timestamp));
}

function inIdOrder<R extends { id: string }>(rows: readonly R[]): R[] {
  return [...rows].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

const INSERT_GROUPS = `
INSERT INTO event_counts_hourly AS r (tenant_id, name, hour, count, weighted)
SELECT t, n, h::timestamptz, c::bigint, w::float8
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS g(t, n, h, c, w)
ORDER BY 1, 2, 3
ON CONFLICT (tenant_id, name, hour)
DO UPDATE SET count = r.count + EXCLUDED.count, weighted = r.weighted + EXCLUDED.weighted`;

/**
 * user_activity_hourly from the groups `$first`…`$first+3` (DirectPlan.activity). Sorted, as the SQL
 * path sorts them (store.ts): two writers adding overlapping groups wait on each other's keys in one order,
 * never in a circle. Presence only, so a group already there is left as it is.
 */
const insertActivity = (first: number) => `
  INSERT INTO user_activity_hourly (tenant_id, name, hour, user_key)
  SELECT t, n, h::timestamptz, u
  FROM unnest($${first}::text[], $${first + 1}::text[], $${first + 2}::text[], $${first + 3}::text[]) AS g(t, n, h, u)
  ORDER BY 1, 2, 3, 4
  ON CONFLICT (tenant_id, name, hour, user_key) DO NOTHING`;

/** event_props_hourly from the groups `$first`…`$first+5` (DirectPlan.props). */
const insertProps = (first: number) => `
  INSERT INTO event_props_hourly AS r (tenant_id, name, key, value, hour, count)
  SELECT t, n, k, v, h::timestamptz, c::bigint
  FROM unnest(${[0, 1, 2, 3, 4, 5].map((i) => `$${first + i}::text[]`).join(', ')}) AS g(t, n, k, v, h, c)
  ORDER BY 1, 2, 3, 5, 4
  ON CONFLICT (tenant_id, name, key, hour, value) DO UPDATE SET count = r.count + EXCLUDED.count`;

/**
 * The rollups of a batch COPY stored whole (event_counts_hourly groups are distinct, so no row is updated
 * twice): counts ($1–$5, DirectPlan.groups), then property groups when the batch has some (the next six
 * parameters, DirectPlan.props), then user activity when the store keeps it (the next four,
 * DirectPlan.activity). The inserts are CTEs of a statement that reads none of their tables: Postgres then
 * locks the tables in the order written (event_counts_hourly, then event_props_hourly, then
 * user_activity_hourly), whether it parses the statement or reuses its prepared plan, which is the order
 * rebuildRollups locks them in.
 */
function rollupGroups(props: boolean, activity: boolean): string {
  const ctes = [`counts AS (${INSERT_GROUPS}\n)`];
  let next = 6;
  if (props) {
    ctes.push(`props AS (${insertProps(next)}\n)`);
    next += 6;
  }
  if (activity) ctes.push(`activity AS (${insertActivity(next)}\n)`);
  return `\nWITH ${ctes.join(', ')}\nSELECT 1`;
}

/** The four statements, by [props][activity], built once (a prepared statement is reused by its text). */
const ROLLUP_GROUPS = [
  [rollupGroups(false, false), rollupGroups(false, true)],
  [rollupGroups(true, false), rollupGroups(true, true)],
] as const;

/** The rollup statement of a plan and its parameters, numbered as rollupGroups says. */
export function directRollup(plan: DirectPlan): { statement: string; params: string[][] } {
  const params: string[][] = [...plan.groups];
  if (plan.props) params.push(...plan.props);
  if (plan.activity) params.push(...plan.activity);
  return { statement: ROLLUP_GROUPS[plan.props ? 1 : 0][plan.activity ? 1 : 0], params };
}

/**
 * Does a failed direct COPY send the batch the usual way? Yes for what the usual way handles or reports
 * better: data and integrity errors (a stored id, a bad value: classes 22, 23), and a COPY the server
 * will not do for this role (0A: COPY FROM is not supported on a table with row-level security unless the
 * role bypasses it; 42: privileges). Connection errors and the like are the writer's to retry.
 */
export function fallsBack(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && /^(22|23|0A|42)[0-9A-Z]{3}$/.test(code);
}

/** …and never tries the direct path again on this store (the role will not change). */
export function refusesDirect(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && /^(0A|42)/.test(code);
}
