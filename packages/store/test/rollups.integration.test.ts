/**
 * The query engine's rollups on every engine: the property rollup (event_props_hourly) kept exactly
 * once by both insert paths (`pglite` on disk and Postgres store by direct COPY with figures made in
 * JavaScript; `pglite-worker`, in memory, by INSERT … unnest; a batch the direct path cannot take goes
 * through staging), the user activity rollup (user_activity_hourly) likewise, the registration of
 * dimensions, and the rebuild of every rollup from detail.
 *
 * The oracle is a GROUP BY (a SELECT DISTINCT for user activity) over the detail rows actually stored: after random batches, resends and
 * rebuilds, each rollup must equal it row for row.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isoTime, parseQuery, uuidv7 } from '@tally/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rebuildRollups, rollupCoverage } from '../src/index.js';
import { rollupCoverageOf } from '../src/rollups.js';
import { createStore, type EventRow, type RequestLogRow, type Store, type StoreConfig } from '../src/index.js';
import {
  dropSchema,
  type Engine,
  engines,
  eventRow,
  freshSchema,
  isPostgres,
  PG_URL,
  pg,
  requestLog,
} from './support/stores.js';

type Dimensions = NonNullable<StoreConfig['dimensions']>;

const DIMENSIONS: Dimensions = {
  'chat.started': ['channel', 'vip', 'score', 'meta'],
  'chat.escalated': ['channel', 'reason'],
  // Names that would find Object.prototype's members in a plain record.
  constructor: ['toString'],
};

/**
 * A store with `dimensions`, migrated after it opened (as `tally serve` does), in `schema`; it keeps the
 * user activity rollup unless `activityRollup` is false.
 */
async function openWith(
  engine: Engine,
  dimensions: Dimensions | undefined,
  at: { schema: string; dataDir?: string },
  migrate = true,
  activityRollup = true,
): Promise<Store> {
  if (isPostgres(engine)) pg.assertMet();
  const worker = engine.endsWith('-worker');
  const store = isPostgres(engine)
    ? await createStore({
        kind: 'postgres',
        url: PG_URL,
        schema: at.schema,
        poolSize: 4,
        worker,
        dimensions,
        activityRollup,
      })
    : await createStore({
        kind: 'pglite',
        schema: at.schema,
        worker,
        dimensions,
        activityRollup,
        ...(at.dataDir ? { dataDir: at.dataDir } : {}),
      });
  if (migrate) await store.migrate();
  return store;
}

/** Where an engine's store lives: `pglite` on disk (direct COPY), `pglite-worker` in memory (unnest). */
function place(engine: Engine, onDisk = engine === 'pglite') {
  return {
    schema: freshSchema(),
    dataDir: onDisk && !isPostgres(engine) ? mkdtempSync(join(tmpdir(), 'tally-rollups-')) : undefined,
  };
}

async function removePlace(engine: Engine, at: { schema: string; dataDir?: string }) {
  if (isPostgres(engine)) await dropSchema(at.schema);
  if (at.dataDir) rmSync(at.dataDir, { recursive: true, force: true });
}

// ---------------------------------------------------------------- generated data

function random(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DAY0 = Date.UTC(2026, 2, 9);
/** Property values of every JSON type, numbers that print alike in JS and Postgres and some that do not. */
const VALUES: unknown[] = [
  'web',
  'email',
  'sms',
  '',
  'with "quotes" and \\ and ünïcödé',
  'true',
  '42',
  true,
  false,
  0,
  -0,
  7,
  -12,
  1.5,
  0.1,
  123.456,
  2 ** 53 + 2,
  123456789012345680000,
  1e21,
  1.5e-7,
  null,
  { nested: 'x' },
  [1, 'a'],
  [],
  {},
  Number.NaN,
];
const NAMES = ['chat.started', 'chat.escalated', 'chat.ended', 'constructor'];
const KEYS = ['channel', 'vip', 'score', 'meta', 'reason', 'toString', 'other'];

/** A random event in one of `days` UTC days from DAY0; now and then with a timestamp not in canonical form. */
function randomEvent(rand: () => number, days: number): EventRow {
  const ms = DAY0 + Math.floor(rand() * days * 86_400_000);
  const properties: Record<string, unknown> = {};
  for (const key of KEYS) {
    if (rand() < 0.6) properties[key] = VALUES[Math.floor(rand() * VALUES.length)];
  }
  // Most values printable by both paths, so most batches take the direct path where it exists.
  if (rand() < 0.9) {
    for (const key of KEYS) {
      const v = properties[key];
      if (v === 1e21 || v === 1.5e-7) properties[key] = 'web';
    }
  }
  const offset = rand() < 0.03;
  // Who, from the time (not from `rand`, whose sequence the other tests' figures follow): mostly a user,
  // some anonymous visitors, some both (the user counts), some neither (not in user activity).
  const who = ms % 10;
  return eventRow({
    userId: who < 6 || who === 8 ? `u${ms % 17}` : undefined,
    anonymousId: who >= 6 && who <= 8 ? `a${ms % 5}` : undefined,
    id: uuidv7(ms),
    tenantId: rand() < 0.7 ? 'tenant-a' : 'tenant-b',
    name: NAMES[Math.floor(rand() * NAMES.length)] as string,
    properties: properties as EventRow['properties'],
    // `+00:00` is the same instant, which the direct path leaves to Postgres.
    timestamp: offset ? isoTime(ms).replace('Z', '+00:00') : isoTime(ms),
    context: rand() < 0.2 ? { service: 'test', sampleRate: 0.5 } : { service: 'test' },
  });
}

function randomLog(rand: () => number, days: number): RequestLogRow {
  const ms = DAY0 + Math.floor(rand() * days * 86_400_000);
  return requestLog({
    id: uuidv7(ms),
    tenantId: rand() < 0.7 ? 'tenant-a' : 'tenant-b',
    route: rand() < 0.2 ? undefined : ['/a', '/b/:id'][Math.floor(rand() * 2)],
    status: [200, 201, 302, 404, 500, 101][Math.floor(rand() * 6)] as number,
    durationMs: Math.round(rand() * 100_000) / 10,
    timestamp: isoTime(ms),
  });
}

/**
 * Stores `n` random events in random batches, resending earlier rows (whole batches, and mixed with new
 * ones) as a transport redelivers them.
 */
async function storeRandomEvents(store: Store, rand: () => number, n: number, days: number): Promise<EventRow[]> {
  const sent: EventRow[] = [];
  while (sent.length < n) {
    const fresh = Array.from({ length: 1 + Math.floor(rand() * 60) }, () => randomEvent(rand, days));
    const resent = sent.length > 0 && rand() < 0.3 ? sent.slice(Math.floor(rand() * sent.length)).slice(0, 20) : [];
    const batch = rand() < 0.5 ? [...resent, ...fresh] : fresh;
    await store.insertEvents(batch);
    if (rand() < 0.2) await store.insertEvents(batch);
    sent.push(...fresh);
  }
  return sent;
}

// ---------------------------------------------------------------- oracles

type Row = (string | number)[];

/** A query's rows as arrays (its columns must be named apart: rows come back as objects). */
async function rows(store: Store, text: string, params: unknown[] = []): Promise<Row[]> {
  const result = await store.sql.query<Record<string, string | number>>(text, params);
  return result.map((r) => Object.values(r).map((v) => (typeof v === 'bigint' ? Number(v) : v)));
}

const HOUR = `to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24')`;

/** event_props_hourly and a GROUP BY over detail for the registered dimensions, as comparable rows. */
async function propsAgainstDetail(store: Store, dims: Dimensions): Promise<{ rollup: Row[]; detail: Row[] }> {
  const pairs = Object.entries(dims).flatMap(([name, keys]) => keys.map((key) => [name, key]));
  const names = pairs.map((p) => p[0]);
  const keys = pairs.map((p) => p[1]);
  const rollup = await rows(
    store,
    `SELECT tenant_id, name, key, value, ${HOUR} AS hour, count::int AS count FROM event_props_hourly
     WHERE (name, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))
     ORDER BY 1, 2, 3, 4, 5`,
    [names, keys],
  );
  const detail = await rows(
    store,
    `SELECT tenant_id, name, key, value, ${HOUR} AS hour, count(*)::int AS count
     FROM (SELECT e.tenant_id, e.name, d.key, e.properties ->> d.key AS value, date_trunc('hour', e.ts, 'UTC') AS hour
           FROM events e JOIN unnest($1::text[], $2::text[]) AS d(name, key) ON d.name = e.name
           WHERE jsonb_typeof(e.properties -> d.key) NOT IN ('null', 'object', 'array')) x
     GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5`,
    [names, keys],
  );
  return { rollup, detail };
}

/** user_activity_hourly and a SELECT DISTINCT over detail, as comparable rows. */
async function activityAgainstDetail(store: Store): Promise<{ rollup: Row[]; detail: Row[] }> {
  const rollup = await rows(
    store,
    `SELECT tenant_id, name, ${HOUR} AS hour, user_key FROM user_activity_hourly ORDER BY 1, 2, 3, 4`,
  );
  const detail = await rows(
    store,
    `SELECT DISTINCT tenant_id, name, to_char(date_trunc('hour', ts, 'UTC') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24') AS hour,
            coalesce(user_id, anonymous_id) AS user_key
     FROM events WHERE user_id IS NOT NULL OR anonymous_id IS NOT NULL ORDER BY 1, 2, 3, 4`,
  );
  return { rollup, detail };
}

/** event_counts_hourly and path_stats_hourly as comparable rows (float sums rounded: their order differs). */
async function countRollups(store: Store): Promise<Row[][]> {
  return Promise.all([
    rows(
      store,
      `SELECT tenant_id, name, ${HOUR}, count::int, round(weighted::numeric, 6)::text FROM event_counts_hourly ORDER BY 1, 2, 3`,
    ),
    rows(
      store,
      `SELECT tenant_id, method, route, ${HOUR}, count::int, status_2xx::int, status_3xx::int, status_4xx::int,
              status_5xx::int, round(duration_sum::numeric, 3)::text, duration_min, duration_max, latency_buckets::text
       FROM path_stats_hourly ORDER BY 1, 2, 3, 4`,
    ),
  ]);
}

/** event_counts_hourly against a GROUP BY over detail (counts; weights to 6 places). */
async function countsAgainstDetail(store: Store): Promise<{ rollup: Row[]; detail: Row[] }> {
  const [rollup] = await countRollups(store);
  const detail = await rows(
    store,
    `SELECT tenant_id, name, to_char(date_trunc('hour', ts, 'UTC') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24'),
            count(*)::int, round(sum(1.0 / coalesce((context->>'sampleRate')::float8, 1.0))::numeric, 6)::text
     FROM events GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
  );
  return { rollup: rollup as Row[], detail };
}

// ---------------------------------------------------------------- tests

describe.each(engines)('rollups: %s', (engine) => {
  const at = place(engine);
  let store: Store;
  beforeAll(async () => {
    store = await openWith(engine, DIMENSIONS, at);
  });
  afterAll(async () => {
    await store.close();
    await removePlace(engine, at);
  });

  it('the property rollup equals a GROUP BY over detail, after random batches and resends', async () => {
    const sent = await storeRandomEvents(store, random(1), 1500, 2);
    const unique = new Set(sent.map((e) => e.id)).size;
    expect((await store.totals()).events).toBe(unique);
    const { rollup, detail } = await propsAgainstDetail(store, DIMENSIONS);
    expect(detail.length).toBeGreaterThan(100);
    expect(rollup).toEqual(detail);
    const counts = await countsAgainstDetail(store);
    expect(counts.rollup).toEqual(counts.detail);
    // Events of names without dimensions, and keys that are not dimensions, are not rolled up.
    const [stray] = await rows(
      store,
      `SELECT count(*)::int FROM event_props_hourly WHERE name = 'chat.ended' OR key = 'other'
         OR (name = 'chat.escalated' AND key = 'vip')`,
    );
    expect(stray).toEqual([0]);
  });

  it('user activity equals a SELECT DISTINCT over detail, after random batches and resends', async () => {
    const { rollup, detail } = await activityAgainstDetail(store);
    expect(detail.length).toBeGreaterThan(300);
    expect(rollup).toEqual(detail);
    // Anonymous visitors count by their anonymous id, a user by the user id; nobody is left out.
    const keys = new Set(rollup.map((r) => String(r[3])));
    expect([...keys].some((k) => k.startsWith('a'))).toBe(true);
    expect([...keys].some((k) => k.startsWith('u'))).toBe(true);
    // A batch of one user's events within an hour, resent and mixed with new ones: one row per name and hour.
    // The day of the value test below: no day is added to the rebuild's range.
    const hour = DAY0 + 30 * 86_400_000 + 2 * 3_600_000;
    const mine = (i: number, name = 'chat.ended') =>
      eventRow({ id: uuidv7(hour + i), tenantId: 'activity', name, userId: 'só', timestamp: isoTime(hour + i * 1000) });
    const batch = [mine(1), mine(2), mine(3, 'chat.started'), eventRow({ ...mine(4), userId: undefined })];
    await store.insertEvents(batch);
    await store.insertEvents([...batch, mine(5), mine(6, 'chat.escalated')]);
    const found = await rows(
      store,
      `SELECT name, ${HOUR} AS hour, user_key FROM user_activity_hourly WHERE tenant_id = 'activity' ORDER BY 1`,
    );
    expect(found).toEqual([
      ['chat.ended', '2026-04-08T02', 'só'],
      ['chat.escalated', '2026-04-08T02', 'só'],
      ['chat.started', '2026-04-08T02', 'só'],
    ]);
    const again = await activityAgainstDetail(store);
    expect(again.rollup).toEqual(again.detail);
  });

  it('a tenant reads its own user activity, nothing of another tenant', async () => {
    const seen = await store.asTenant('tenant-b', (sql) =>
      sql.query<{ tenants: string[]; complete: boolean }>(
        `SELECT array_agg(DISTINCT tenant_id) AS tenants,
                (SELECT complete_from = '-infinity' FROM rollup_coverage WHERE rollup = 'user_activity_hourly') AS complete
         FROM user_activity_hourly`,
      ),
    );
    expect(seen[0]?.tenants).toEqual(['tenant-b']);
    expect(seen[0]?.complete).toBe(true);
  });

  it('values are the text `properties->>key` prints: strings, booleans, numbers as Postgres writes them', async () => {
    const hour = DAY0 + 30 * 86_400_000 + 3_600_000;
    const event = (properties: Record<string, unknown>) =>
      eventRow({
        tenantId: 'values',
        name: 'chat.started',
        properties: properties as EventRow['properties'],
        timestamp: isoTime(hour + 60_000),
      });
    await store.insertEvents([
      event({ channel: 'web', vip: true, score: 1.5 }),
      event({ channel: 'web', vip: false, score: 100, meta: null }),
      event({ channel: 'a"b\\c', score: -0, meta: { x: 1 } }),
      event({ vip: 'true', meta: [1] }),
    ]);
    // A number JavaScript writes with an exponent: this batch goes the SQL way.
    await store.insertEvents([event({ score: 1e21 }), event({ score: 1.5e-7 }), event({ score: Number.NaN })]);
    const found = await rows(
      store,
      `SELECT key, value, count::int FROM event_props_hourly WHERE tenant_id = 'values' ORDER BY 1, 2`,
    );
    expect(found).toEqual([
      ['channel', 'a"b\\c', 1],
      ['channel', 'web', 2],
      ['score', '0', 1],
      ['score', '0.00000015', 1],
      ['score', '1.5', 1],
      ['score', '100', 1],
      ['score', '1000000000000000000000', 1],
      ['vip', 'false', 1],
      ['vip', 'true', 2],
    ]);
  });

  it('registers each dimension, complete from the start of the next UTC hour', async () => {
    const next = Math.floor(Date.now() / 3_600_000) * 3_600_000 + 3_600_000;
    const coverage = await rollupCoverage(store.sql, 'chat.started', 'channel');
    // The hour may have turned since the store opened.
    expect([next - 3_600_000, next]).toContain(coverage);
    expect(await rollupCoverage(store.sql, 'constructor', 'toString')).toBe(coverage);
    expect(await rollupCoverage(store.sql, 'chat.started', 'reason')).toBeUndefined();
    expect(await rollupCoverage(store.sql, 'chat.ended', 'channel')).toBeUndefined();
    const registered = await rows(store, `SELECT name, key FROM rollup_dimensions ORDER BY 1, 2`);
    expect(registered).toEqual([
      ['chat.escalated', 'channel'],
      ['chat.escalated', 'reason'],
      ['chat.started', 'channel'],
      ['chat.started', 'meta'],
      ['chat.started', 'score'],
      ['chat.started', 'vip'],
      ['constructor', 'toString'],
    ]);
  });

  it('a tenant reads its own property rollup and the dimensions, nothing of another tenant', async () => {
    const seen = await store.asTenant('tenant-b', (sql) =>
      sql.query<{ tenants: string[]; dims: number }>(
        `SELECT array(SELECT DISTINCT tenant_id FROM event_props_hourly ORDER BY 1) AS tenants,
                (SELECT count(*)::int FROM rollup_dimensions) AS dims`,
      ),
    );
    expect(seen[0]?.tenants).toEqual(['tenant-b']);
    expect(seen[0]?.dims).toBe(7);
  });

  it('rebuild restores deleted and corrupted rollup rows exactly, and fills in what predates a dimension', async () => {
    const rand = random(2);
    for (let i = 0; i < 8; i++) {
      await store.insertRequestLogs(Array.from({ length: 50 }, () => randomLog(rand, 2)));
    }
    // Events stored before a dimension existed: rolled up by nothing until the rebuild.
    await store.sql.query(
      `INSERT INTO events (id, tenant_id, name, properties, context, ts, received_at)
       VALUES ($1, 'tenant-a', 'chat.escalated', '{"reason": "angry", "channel": 3}', '{}', $2, $2)`,
      [uuidv7(DAY0), isoTime(DAY0 + 5_000)],
    );
    await store.sql.query(
      `INSERT INTO event_counts_hourly VALUES ('tenant-a', 'chat.escalated', $1, 1, 1)
       ON CONFLICT (tenant_id, name, hour) DO UPDATE SET count = event_counts_hourly.count + 1,
         weighted = event_counts_hourly.weighted + 1`,
      [isoTime(DAY0)],
    );
    const expected = await countRollups(store);
    // Corrupt all three rollups inside the detail's range: rows gone, counts wrong, rows that never were.
    await store.sql.query(`DELETE FROM event_counts_hourly WHERE name = 'chat.started' AND hour < $1`, [
      isoTime(DAY0 + 86_400_000),
    ]);
    await store.sql.query(`UPDATE event_counts_hourly SET count = count + 5, weighted = 0 WHERE name = 'chat.ended'`);
    await store.sql.query(`INSERT INTO event_counts_hourly VALUES ('ghost', 'x', $1, 9, 9)`, [
      isoTime(DAY0 + 3_600_000),
    ]);
    await store.sql.query(`DELETE FROM path_stats_hourly WHERE route = '/a'`);
    await store.sql.query(`UPDATE path_stats_hourly SET latency_buckets[1] = 99, duration_max = -1`);
    await store.sql.query(`DELETE FROM event_props_hourly WHERE key = 'channel' AND tenant_id = 'tenant-a'`);
    await store.sql.query(`UPDATE event_props_hourly SET count = count * 3 WHERE key = 'vip'`);
    await store.sql.query(
      `INSERT INTO event_props_hourly VALUES ('tenant-a', 'chat.started', 'channel', 'nowhere', $1, 4)`,
      [isoTime(DAY0 + 7_200_000)],
    );
    expect(await countRollups(store)).not.toEqual(expected);
    await store.sql.query(`DELETE FROM user_activity_hourly WHERE user_key LIKE 'u1%'`);
    await store.sql.query(`INSERT INTO user_activity_hourly VALUES ('tenant-a', 'chat.started', $1, 'ghost')`, [
      isoTime(DAY0 + 7_200_000),
    ]);
    await store.sql.query(`UPDATE rollup_coverage SET complete_from = now()`);
    const activity = await activityAgainstDetail(store);
    expect(activity.rollup).not.toEqual(activity.detail);

    const progress: { day: string; events: number; requestLogs: number }[] = [];
    const result = await rebuildRollups(store, { onProgress: (p) => progress.push(p) });

    expect(await countRollups(store)).toEqual(expected);
    const props = await propsAgainstDetail(store, DIMENSIONS);
    expect(props.rollup).toEqual(props.detail);
    expect(props.rollup).toContainEqual(['tenant-a', 'chat.escalated', 'reason', 'angry', '2026-03-09T00', 1]);
    const totals = await store.totals();
    // The value test's events lie 30 days later: every day between is rebuilt (and empty).
    expect(result).toEqual({ days: 31, events: totals.events, requestLogs: totals.requestLogs, archived: 0 });
    expect(progress.map((p) => p.day).slice(0, 3)).toEqual(['2026-03-09', '2026-03-10', '2026-03-11']);
    expect(progress.reduce((n, p) => n + p.events, 0)).toBe(totals.events);
    // A full rebuild computed every hour: every rebuilt dimension is complete from the beginning.
    expect(await rollupCoverage(store.sql, 'chat.started', 'channel')).toBe(Number.NEGATIVE_INFINITY);
    const rebuilt = await activityAgainstDetail(store);
    expect(rebuilt.rollup).toEqual(rebuilt.detail);
    expect(await rollupCoverageOf(store.sql, 'user_activity_hourly')).toBe(Number.NEGATIVE_INFINITY);
  });

  it('rebuild of a range touches only its days', async () => {
    const day1 = DAY0 + 86_400_000;
    await store.sql.query(`UPDATE event_counts_hourly SET count = count + 1`);
    const result = await rebuildRollups(store, { from: new Date(day1 + 5_000), to: new Date(day1 + 86_400_000) });
    expect(result.days).toBe(1);
    const [wrong] = await rows(
      store,
      `SELECT (count(*) FILTER (WHERE hour >= $1 AND hour < $2))::int AS rebuilt, (count(*) FILTER (WHERE hour < $1))::int AS before
       FROM event_counts_hourly r
       WHERE count <> (SELECT count(*) FROM events e WHERE e.tenant_id = r.tenant_id AND e.name = r.name
                       AND date_trunc('hour', e.ts, 'UTC') = r.hour)`,
      [isoTime(day1), isoTime(day1 + 86_400_000)],
    );
    // The rebuilt day agrees with detail again; the day before it keeps the added count.
    expect(wrong?.[0]).toBe(0);
    expect(wrong?.[1]).toBeGreaterThan(0);
    await rebuildRollups(store);
    const counts = await countsAgainstDetail(store);
    expect(counts.rollup).toEqual(counts.detail);
  });

  it('rebuild leaves alone a tenant’s day whose detail is archived and not restored', async () => {
    const day = '2026-03-09';
    const [before] = await rows(
      store,
      `SELECT sum(count)::int FROM event_counts_hourly WHERE tenant_id = 'tenant-b' AND hour < $1`,
      [isoTime(DAY0 + 86_400_000)],
    );
    await store.sql.query(
      `INSERT INTO archive_metadata (tenant_id, table_name, day, part, key, location, rows, min_ts, max_ts, bytes, raw_bytes, sha256, cleaned_at)
       VALUES ('tenant-b', 'events', $1, 1, 'k', 'fs', 1, $2, $2, 1, 1, 'x', now())`,
      [day, isoTime(DAY0)],
    );
    await store.sql.query(`DELETE FROM events WHERE tenant_id = 'tenant-b' AND ts < $1`, [isoTime(DAY0 + 86_400_000)]);
    // As if the dimensions and user activity were rolled up from just now, after that day was archived.
    await store.sql.query(`UPDATE rollup_dimensions SET complete_from = now()`);
    await store.sql.query(`UPDATE rollup_coverage SET complete_from = now()`);
    const result = await rebuildRollups(store);
    expect(result.archived).toBe(1);
    const [after] = await rows(
      store,
      `SELECT sum(count)::int FROM event_counts_hourly WHERE tenant_id = 'tenant-b' AND hour < $1`,
      [isoTime(DAY0 + 86_400_000)],
    );
    expect(after).toEqual(before);
    // Properties of the archived day's events cannot be recomputed: complete only from the day after.
    expect(await rollupCoverage(store.sql, 'chat.started', 'channel')).toBe(DAY0 + 86_400_000);
    expect(await rollupCoverageOf(store.sql, 'user_activity_hourly')).toBe(DAY0 + 86_400_000);
    // A rebuild of a range changes no coverage.
    await store.sql.query(`UPDATE rollup_coverage SET complete_from = now()`);
    await rebuildRollups(store, { from: new Date(DAY0), to: new Date(DAY0 + 3 * 86_400_000) });
    expect(await rollupCoverageOf(store.sql, 'user_activity_hourly')).toBeGreaterThan(DAY0 + 86_400_000);
    await store.sql.query(`DELETE FROM archive_metadata`);
  });
});

describe.each(engines)('rollup dimensions over reopenings: %s', (engine) => {
  it('a dimension added later is complete only from then; one dropped is unregistered; no dimensions, no change', async () => {
    const at = place(engine, true);
    try {
      let store = await openWith(engine, { a: ['x'] }, at);
      await store.sql.query(`UPDATE rollup_dimensions SET complete_from = '2020-01-01T00:00:00Z'`);
      await store.close();

      // Not migrated again: the first insert registers the new set.
      store = await openWith(engine, { a: ['x', 'y'], b: ['z'] }, at, false);
      await store.insertEvents([eventRow({ name: 'a', properties: { x: 'one', y: 2 } })]);
      expect(await rollupCoverage(store.sql, 'a', 'x')).toBe(Date.UTC(2020, 0, 1));
      expect(await rollupCoverage(store.sql, 'a', 'y')).toBeGreaterThan(Date.now());
      expect(await rollupCoverage(store.sql, 'b', 'z')).toBeGreaterThan(Date.now());
      expect(await rows(store, `SELECT key, value, count::int FROM event_props_hourly ORDER BY 1`)).toEqual([
        ['x', 'one', 1],
        ['y', '2', 1],
      ]);
      await store.close();

      store = await openWith(engine, undefined, at);
      await store.insertEvents([eventRow({ name: 'a', properties: { x: 'one' } })]);
      expect(await rows(store, `SELECT count(*)::int FROM rollup_dimensions`)).toEqual([[3]]);
      // Without dimensions the store rolls up no properties.
      expect(await rows(store, `SELECT sum(count)::int FROM event_props_hourly`)).toEqual([[2]]);
      await store.close();

      store = await openWith(engine, { b: ['z'] }, at);
      expect(await rows(store, `SELECT name, key FROM rollup_dimensions`)).toEqual([['b', 'z']]);
      await store.close();
    } finally {
      await removePlace(engine, at);
    }
  });
});

describe.each(engines)('the user activity rollup turned off and on: %s', (engine) => {
  const HOUR_MS = 3_600_000;
  const nextHour = (ms: number) => Math.floor(ms / HOUR_MS) * HOUR_MS + HOUR_MS;
  const coverage = async (store: Store) =>
    (
      await rows(store, `SELECT complete_from::text FROM rollup_coverage WHERE rollup = 'user_activity_hourly'`)
    )[0]?.[0];
  const stored = async (store: Store) => (await rows(store, `SELECT count(*)::int FROM user_activity_hourly`))[0]?.[0];
  /** Events of 'on-off' a day apart, so that retention has cohorts and returns (day periods are whole hours). */
  const batch = (first: number, n: number) =>
    Array.from({ length: n }, (_, i) =>
      eventRow({
        id: uuidv7(DAY0 + (first + i) * 1000),
        tenantId: 'on-off',
        name: i % 3 === 0 ? 'chat.started' : 'chat.ended',
        userId: `u${(first + i) % 9}`,
        timestamp: isoTime(DAY0 + ((first + i) % 4) * 86_400_000 + i * 1000),
      }),
    );
  const retention = (store: Store) => {
    const parsed = parseQuery({
      kind: 'retention',
      range: { from: isoTime(DAY0), to: isoTime(DAY0 + 4 * 86_400_000) },
      tz: 'UTC',
      period: 'day',
      periods: 4,
      mode: 'recurring',
      start: { event: 'chat.started' },
      return: { event: 'chat.ended' },
      explain: true,
    });
    if (!parsed.ok) throw parsed.error;
    return store.query('on-off', parsed.query, { now: DAY0 + 10 * 86_400_000 });
  };

  it('off: nothing kept, coverage infinity, retention from detail; on later: complete from the next hour; off again: invalidated', async () => {
    const at = place(engine, true);
    try {
      // Off (the default): neither insert path writes the rollup, and opening marks it not covered (a fresh
      // schema's migration had made it complete from '-infinity').
      let store = await openWith(engine, DIMENSIONS, at, true, false);
      expect(await coverage(store)).toBe('infinity');
      expect(await rollupCoverageOf(store.sql, 'user_activity_hourly')).toBeUndefined();
      const first = batch(0, 40);
      await store.insertEvents(first);
      // Through staging too: an id already stored makes the direct COPY fall back.
      await store.insertEvents([...first.slice(30), ...batch(40, 20)]);
      await storeRandomEvents(store, random(9), 300, 3);
      expect(await stored(store)).toBe(0);
      // The other rollups are kept as ever.
      const counts = await countsAgainstDetail(store);
      expect(counts.rollup).toEqual(counts.detail);
      const props = await propsAgainstDetail(store, DIMENSIONS);
      expect(props.rollup).toEqual(props.detail);
      const offAnswer = await retention(store);
      expect(offAnswer.meta.source).toBe('detail');
      expect(offAnswer.meta.explain?.reason).toContain('the hourly user activity rollup is not kept');
      expect(offAnswer.rows.some((r) => (r[3] as number) > 0)).toBe(true);
      // A rebuild does not make a rollup nobody keeps complete, nor fill it.
      await rebuildRollups(store);
      expect(await coverage(store)).toBe('infinity');
      expect(await stored(store)).toBe(0);
      await store.close();

      // On, not migrated again: the first insert marks it complete from the start of the next UTC hour,
      // and only what is stored from then on is in it.
      const before = Date.now();
      store = await openWith(engine, DIMENSIONS, at, false, true);
      await store.insertEvents(batch(100, 30));
      const after = Date.now();
      const from = await rollupCoverageOf(store.sql, 'user_activity_hourly');
      expect([nextHour(before), nextHour(after)]).toContain(from);
      const kept = await rows(store, `SELECT DISTINCT user_key FROM user_activity_hourly ORDER BY 1`);
      expect(kept).toEqual([...new Set(batch(100, 30).map((e) => e.userId))].sort().map((u) => [u]));
      // Its hours before the next one are incomplete: retention over them reads detail, as answered before.
      const onAnswer = await retention(store);
      expect(onAnswer.meta.source).toBe('detail');
      expect(onAnswer.meta.explain?.reason).toContain('the hourly user activity rollup is complete only from');
      // Reopened on, a finite coverage is left as it is.
      await store.close();
      store = await openWith(engine, DIMENSIONS, at, true, true);
      expect(await rollupCoverageOf(store.sql, 'user_activity_hourly')).toBe(from);
      // A rebuild fills in the past: complete for all time, and retention reads the rollup, alike.
      await rebuildRollups(store);
      expect(await rollupCoverageOf(store.sql, 'user_activity_hourly')).toBe(Number.NEGATIVE_INFINITY);
      const activity = await activityAgainstDetail(store);
      expect(activity.rollup).toEqual(activity.detail);
      const rebuilt = await retention(store);
      expect(rebuilt.meta.source).toBe('rollup');
      expect(rebuilt.rows).toEqual(onAnswer.rows);
      await store.close();

      // Off again: a store that stops keeping it invalidates it, whatever it held; what it stores is not added.
      store = await openWith(engine, DIMENSIONS, at, true, false);
      expect(await coverage(store)).toBe('infinity');
      const held = await stored(store);
      await store.insertEvents(batch(200, 30).map((e) => ({ ...e, userId: `late-${e.userId}` })));
      expect(await stored(store)).toBe(held);
      const offAgain = await retention(store);
      expect(offAgain.meta.source).toBe('detail');
      expect(offAgain.meta.explain?.reason).toContain('the hourly user activity rollup is not kept');
      await store.close();
    } finally {
      await removePlace(engine, at);
    }
  });
});

describe.each(engines.filter(isPostgres))('rebuild beside a writer: %s', (engine) => {
  it('ends with every rollup equal to detail while batches keep landing in the hours it rebuilds', async () => {
    const at = place(engine);
    const store = await openWith(engine, DIMENSIONS, at);
    try {
      const rand = random(3);
      await storeRandomEvents(store, rand, 600, 2);
      let writing = true;
      const writers = [0, 1, 2].map(async (lane) => {
        const laneRand = random(100 + lane);
        let batches = 0;
        while (writing || batches < 5) {
          const events = Array.from({ length: 40 }, () => randomEvent(laneRand, 2));
          await store.insertEvents(events);
          // Redelivered, now and then mixed with new rows: the SQL way, beside the rebuild too.
          if (laneRand() < 0.3) await store.insertEvents([...events.slice(0, 10), randomEvent(laneRand, 2)]);
          await store.insertRequestLogs(Array.from({ length: 20 }, () => randomLog(laneRand, 2)));
          batches++;
        }
        return batches;
      });
      let rebuilds = 0;
      try {
        const until = Date.now() + 4000;
        while (Date.now() < until) {
          await rebuildRollups(store);
          rebuilds++;
        }
      } finally {
        // Before the store closes, whatever happened: no writer is left mid-batch.
        writing = false;
        await Promise.allSettled(writers);
      }
      const batches = await Promise.all(writers);
      expect(rebuilds).toBeGreaterThan(1);
      expect(batches.every((n) => n >= 5)).toBe(true);

      const props = await propsAgainstDetail(store, DIMENSIONS);
      expect(props.rollup).toEqual(props.detail);
      const counts = await countsAgainstDetail(store);
      expect(counts.rollup).toEqual(counts.detail);
      const activity = await activityAgainstDetail(store);
      expect(activity.rollup).toEqual(activity.detail);
      const totals = await store.totals();
      expect(totals.pathRollup).toBe(totals.requestLogs);
      // And what the rebuild makes of the same detail is what the writers made of it.
      const kept = await countRollups(store);
      await rebuildRollups(store);
      expect(await countRollups(store)).toEqual(kept);
    } finally {
      await store.close();
      await removePlace(engine, at);
    }
  }, 60_000);
});
