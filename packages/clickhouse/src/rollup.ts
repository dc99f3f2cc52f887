/**
 * Hourly counts of sealed days: what trends of plain counts read instead of the detail rows.
 *
 * A materialized view would count what is inserted, duplicates and all, and one kept at insert would
 * need a transaction ClickHouse does not have. So the counts are built by a job, from the detail rows,
 * one UTC day of one tenant at a time, once the day is over:
 * - `events_hourly` holds, per build, the events of (tenant, name, hour), and per value the events whose
 *   top-level property of a declared dimension (the catalog's enums and booleans) is that scalar. The
 *   detail rows never hold an id twice (store.ts), so a build counts each event once.
 * - `rollup_days` says, per (tenant, day), which build is current and which dimensions it was built for;
 *   its latest row (by `version`) wins. Build 0 is a dirty mark: read that day's detail rows.
 * - A build runs under the store's insert lock, so no insert falls between its read and its mark.
 * - An insert of events into a day that is over marks that day dirty first, under the same lock, when it
 *   holds a build (late events, a replay, a restore). A process killed between the mark and the insert
 *   costs a needless rebuild, never a wrong count. The lifecycle's deletes mark the days they touch too.
 * - Queries read a day's counts only when its current build is non-zero and was made for the dimensions
 *   the query knows; every other hour of the range comes from the detail rows (query/trends-hourly.ts).
 * Versions grow per (tenant, day) whatever the clocks of the processes say: each is one past the last.
 */
import { declaredDimensions, type RollupDimensions, type SealedRollups } from '@tally/core';
import type { ClickHouseClient } from './client.js';
import { attrKey, T } from './rows.js';
import { int, str } from './sql.js';
import type { Serialize } from './store.js';

export const DAY_MS = 86_400_000;
/** A day is sealed this long after it ends: most late events of the day are in by then. */
export const SEAL_AFTER_MS = 3_600_000;
/** Days within a DateTime's range (UInt32 seconds): the rows a day partition and `hour` can name. */
const MAX_DAY = Math.floor((2 ** 32 - 1) / 86_400);

/** A (tenant, UTC day) and its state: the current build (0: dirty) and what it was built for. */
export interface DayState {
  tenantId: string;
  /** Days since 1970-01-01. */
  day: number;
  build: number;
  dimensions: string;
  version: number;
}

/** The dimensions as one stable text (names and keys sorted, empty lists left out): what a build records. */
export function dimensionsFingerprint(dimensions: RollupDimensions): string {
  const names = Object.keys(dimensions)
    .filter((n) => declaredDimensions(dimensions, n).length > 0)
    .sort();
  return JSON.stringify(names.map((n) => [n, [...new Set(declaredDimensions(dimensions, n))].sort()]));
}

const dateSql = (day: number): string => `toDate(${int(day * 86_400)}, 'UTC')`;
const pairsSql = (pairs: readonly { tenantId: string; day: number }[]): string =>
  pairs.map((p) => `(${str(p.tenantId)}, ${dateSql(p.day)})`).join(', ');

/** The state of each (tenant, day) given that has one. */
export async function dayStates(
  client: ClickHouseClient,
  db: string,
  where:
    | { tenantId: string; fromDay: number; toDay: number }
    | { pairs: readonly { tenantId: string; day: number }[] }
    | 'all',
): Promise<DayState[]> {
  const condition =
    where === 'all'
      ? '1'
      : 'pairs' in where
        ? `(tenant_id, day) IN (${pairsSql(where.pairs)})`
        : `tenant_id = ${str(where.tenantId)} AND day >= ${dateSql(where.fromDay)} AND day <= ${dateSql(where.toDay)}`;
  if (where !== 'all' && 'pairs' in where && where.pairs.length === 0) return [];
  const rows = await client.query<{ tenant_id: string; d: number; build: string; dims: string; v: string }>(
    `SELECT tenant_id, toUInt32(day) AS d, argMax(build, version) AS build, argMax(dimensions, version) AS dims,
            max(version) AS v
     FROM ${db}.rollup_days WHERE ${condition} GROUP BY tenant_id, day`,
  );
  return rows.map((r) => ({
    tenantId: r.tenant_id,
    day: Number(r.d),
    build: Number(r.build),
    dimensions: r.dims,
    version: Number(r.v),
  }));
}

/** Records `state` (build 0: dirty) for each day, at a version past its last (and at least now). */
async function mark(
  client: ClickHouseClient,
  db: string,
  days: readonly { tenantId: string; day: number; version: number }[],
  state: { build: number; dimensions: string },
): Promise<void> {
  if (days.length === 0) return;
  const now = Date.now();
  const values = days.map(
    (d) =>
      `(${str(d.tenantId)}, ${dateSql(d.day)}, ${int(Math.max(now, d.version + 1))}, ${int(state.build)}, ${str(state.dimensions)})`,
  );
  await client.command(
    `INSERT INTO ${db}.rollup_days (tenant_id, day, version, build, dimensions) VALUES ${values.join(', ')}`,
  );
}

/**
 * Marks dirty the built days among `touched` that are over (by this clock; a build waits SEAL_AFTER_MS
 * past a day's end, which covers clocks that far apart). Call under the insert lock, before inserting.
 */
export async function markDirty(
  client: ClickHouseClient,
  db: string,
  touched: readonly { tenantId: string; day: number }[],
  now = Date.now(),
): Promise<void> {
  const over = touched.filter((t) => (t.day + 1) * DAY_MS <= now && t.day >= 0 && t.day <= MAX_DAY);
  if (over.length === 0) return;
  const built = (await dayStates(client, db, { pairs: over })).filter((s) => s.build !== 0);
  await mark(client, db, built, { build: 0, dimensions: '' });
}

/** The distinct (tenant, day) of rows, from each row's tenant and time (epoch ms, by position). */
export function daysOf(tenants: readonly string[], times: ArrayLike<number>): { tenantId: string; day: number }[] {
  const seen = new Map<string, { tenantId: string; day: number }>();
  for (let i = 0; i < tenants.length; i++) {
    const day = Math.floor((times[i] as number) / DAY_MS);
    const tenantId = tenants[i] as string;
    const k = `${day}\0${tenantId}`;
    if (!seen.has(k)) seen.set(k, { tenantId, day });
  }
  return [...seen.values()];
}

/**
 * Per event, the (key, value) pairs it is counted under: ('', '') for its name's total, and (k, text)
 * for each declared dimension k of its name whose value is a JSON string, number or boolean (the text
 * is the one the detail rows keep, so a breakdown from either groups alike).
 */
function pairsOfRow(dimensions: RollupDimensions): string {
  const scalar = `(${T.string}, ${T.number}, ${T.boolean})`;
  // Written out per key, not as a lambda over the list: 18.16's lambdas cannot read the row's columns.
  const pair = (k: string) => {
    const at = `indexOf(attr_keys, ${str(attrKey('properties', [k]))})`;
    return `if(attr_types[${at}] IN ${scalar}, (${str(k)}, attr_values[${at}]), ('', ''))`;
  };
  const arms: string[] = [];
  for (const name of Object.keys(dimensions).sort()) {
    const keys = [...new Set(declaredDimensions(dimensions, name))].sort();
    if (keys.length > 0) arms.push(`name = ${str(name)}, [${keys.map(pair).join(', ')}]`);
  }
  const total = `[('', '')]`;
  if (arms.length === 0) return total;
  return `arrayConcat(${total}, arrayFilter(kv -> kv.1 != '', multiIf(${arms.join(', ')}, [('', '')])))`;
}

export interface SealOptions {
  dimensions: RollupDimensions;
  /** The clock (epoch ms): days that ended SEAL_AFTER_MS before it are sealed. */
  now?: number;
  /** Stop between days when aborted (what is built stays built). */
  signal?: AbortSignal;
  onProgress?: (line: string) => void;
}

/** (tenant, day)s built, the events they count and the rows they hold; days deferred by a running delete. */
export type SealResult = SealedRollups;

/**
 * Builds the hourly counts of every (tenant, day) that is over and not built for `dimensions`: never
 * built, marked dirty, or built for other dimensions. Each day is read, counted and marked under the
 * insert lock; builds it supersedes are deleted afterwards (queries read the current one only).
 */
export async function sealDays(
  client: ClickHouseClient,
  db: string,
  serialize: Serialize,
  options: SealOptions,
): Promise<SealResult> {
  const fingerprint = dimensionsFingerprint(options.dimensions);
  const before = Math.floor(((options.now ?? Date.now()) - SEAL_AFTER_MS) / DAY_MS);
  const stored = await client.query<{ tenant_id: string; d: number }>(
    `SELECT tenant_id, toUInt32(toDate(ts)) AS d FROM ${db}.events
     WHERE ts < toDateTime(${int(Math.min(before, MAX_DAY) * 86_400)}, 'UTC') GROUP BY tenant_id, d`,
  );
  const states = await dayStates(client, db, 'all');
  const key = (tenantId: string, day: number) => `${tenantId}\0${day}`;
  const current = new Map(states.map((s) => [key(s.tenantId, s.day), s]));
  const todo = new Map<string, { tenantId: string; day: number }>();
  for (const r of stored) todo.set(key(r.tenant_id, Number(r.d)), { tenantId: r.tenant_id, day: Number(r.d) });
  // A dirty day with no rows left (a cleanup took them) is built too: to nothing.
  for (const s of states) if (s.day < before) todo.set(key(s.tenantId, s.day), { tenantId: s.tenantId, day: s.day });
  const result: SealResult = { built: 0, events: 0, rows: 0, deferred: 0 };
  const days = [...todo.values()].filter((t) => {
    const s = current.get(key(t.tenantId, t.day));
    return !s || s.build === 0 || s.dimensions !== fingerprint;
  });
  days.sort((a, b) => a.day - b.day || (a.tenantId < b.tenantId ? -1 : 1));
  const pairs = pairsOfRow(options.dimensions);
  const superseded: { tenantId: string; day: number }[] = [];
  for (const [i, d] of days.entries()) {
    if (options.signal?.aborted) break;
    const rows = await serialize(async () => {
      // A delete of the lifecycle rewrites parts after it was submitted (under this lock): a build must
      // not read a day halfway through. While one runs, the rest waits for the next run.
      const [pending] = await client.query<{ n: string }>(
        `SELECT count() AS n FROM system.mutations WHERE database = ${str(db)} AND table = 'events' AND is_done = 0`,
      );
      if (Number(pending?.n ?? 0) > 0) return 'deferred' as const;
      const [state] = await dayStates(client, db, { pairs: [d] });
      // Read again under the lock: another process may have built it meanwhile.
      if (state && state.build !== 0 && state.dimensions === fingerprint) return undefined;
      const build = Math.max(Date.now(), (state?.version ?? 0) + 1);
      const start = d.day * 86_400;
      await client.command(
        `INSERT INTO ${db}.events_hourly (tenant_id, day, build, name, hour, key, value, count)
         SELECT tenant_id, ${dateSql(d.day)}, ${int(build)}, name, hour, kv.1 AS key, kv.2 AS value, count()
         FROM (
           SELECT tenant_id, name, toDateTime(intDiv(ts_ms, 3600000) * 3600, 'UTC') AS hour, ${pairs} AS kvs
           FROM ${db}.events
           WHERE tenant_id = ${str(d.tenantId)}
             AND ts >= toDateTime(${int(start)}, 'UTC') AND ts < toDateTime(${int(start + 86_400)}, 'UTC')
         )
         ARRAY JOIN kvs AS kv
         GROUP BY tenant_id, name, hour, key, value`,
      );
      const [n] = await client.query<{ n: string; e: string }>(
        `SELECT count() AS n, sumIf(count, key = '') AS e FROM ${db}.events_hourly
         WHERE tenant_id = ${str(d.tenantId)} AND day = ${dateSql(d.day)} AND build = ${int(build)}`,
      );
      await mark(client, db, [{ ...d, version: build - 1 }], { build, dimensions: fingerprint });
      return { rows: Number(n?.n ?? 0), events: Number(n?.e ?? 0) };
    });
    if (rows === 'deferred') {
      result.deferred = days.length - i;
      options.onProgress?.(`rollups: ${result.deferred} days wait for a delete of the lifecycle to finish`);
      break;
    }
    if (rows === undefined) continue;
    result.built++;
    result.rows += rows.rows;
    result.events += rows.events;
    superseded.push(d);
    if ((i + 1) % 50 === 0 || i + 1 === days.length)
      options.onProgress?.(`rollups: ${i + 1}/${days.length} days built (${result.events} events)`);
  }
  await dropSuperseded(client, db, superseded);
  return result;
}

/**
 * Deletes the rows of the builds the current ones replaced, for the given days, in one mutation. Queries
 * never read them; this only frees the space. Only builds older than the current one go: build numbers
 * grow, so one made meanwhile by another process is never taken (a build made but never marked, by a
 * process killed in between, goes with the next build after it).
 */
async function dropSuperseded(
  client: ClickHouseClient,
  db: string,
  days: readonly { tenantId: string; day: number }[],
): Promise<void> {
  if (days.length === 0) return;
  const states = await dayStates(client, db, { pairs: days });
  const conditions = states.map(
    (s) => `(tenant_id = ${str(s.tenantId)} AND day = ${dateSql(s.day)} AND build < ${int(s.build)})`,
  );
  const stale = await client.query<{ n: string }>(
    `SELECT count() AS n FROM ${db}.events_hourly WHERE ${conditions.join(' OR ')}`,
  );
  if (Number(stale[0]?.n ?? 0) === 0) return;
  await client.command(`ALTER TABLE ${db}.events_hourly DELETE WHERE ${conditions.join(' OR ')}`);
}
