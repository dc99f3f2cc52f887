/**
 * Retention against the brute-force evaluator (oracle/retention.ts) on every engine: random queries over
 * generated data (periods, modes, filters, time zones across DST changes and a half-hour offset), then
 * hand-written cases at period edges whose answers are written out here, late events, tenants, hostile
 * strings and the documented columns. Both sources (user_activity_hourly and detail) are forced on the
 * same queries and compared, and a store migrated with events already stored answers from detail until
 * its rollups are rebuilt.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  isoTime,
  parseQuery,
  type PropertyFilter,
  type Query,
  type RetentionQuery,
  resolveRange,
  uuidv7,
} from '@tally/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStore, type EventRow, rebuildRollups, type Store } from '../src/index.js';
import { loadMigrations, migrate } from '../src/migrate.js';
import type { QueryOptions } from '../src/query/index.js';
import { answerRetention, planRetention } from '../src/query/retention.js';
import type { QueryContext } from '../src/query/types.js';
import { retentionOracle } from './support/oracle/retention.js';
import {
  CHANNELS,
  type EventData,
  EVENT_NAMES,
  HOSTILE,
  loadEvents,
  PLANS,
  pick,
  type Rand,
  seeded,
} from './support/query-data.js';
import {
  dropSchema,
  type Engine,
  engines,
  freshSchema,
  isPostgres,
  openStore as openShared,
  PG_URL,
} from './support/stores.js';

const DAY = 86_400_000;
const TZS = ['UTC', 'Europe/Berlin', 'Asia/Kolkata', 'America/New_York'] as const;

function parse(input: unknown): RetentionQuery {
  const parsed = parseQuery(input);
  if (!parsed.ok) throw parsed.error;
  return parsed.query as RetentionQuery;
}

/** The engine's rows and the oracle's for the same query, tenant and now. */
async function both(store: Store, rows: readonly EventRow[], tenant: string, input: unknown, options: QueryOptions) {
  const q = parse(input);
  const now = options.now as number;
  const result = await store.query(tenant, q as Query, options);
  const { from, to } = resolveRange(q.range, q.tz, now);
  return { result, expected: retentionOracle(rows, q, { tenant, from, to, now }) };
}

/** runQuery's context as `tenant`, for answering on a forced source. */
function withContext<T>(
  store: Store,
  tenant: string,
  q: RetentionQuery,
  now: number,
  fn: (ctx: QueryContext) => Promise<T>,
) {
  return store.asTenant(tenant, (sql) =>
    fn({ sql, tenantId: tenant, tz: q.tz, ...resolveRange(q.range, q.tz, now), now, maxRows: 10_000, dimensions: {} }),
  );
}

/** The plan for `q`, and the answers from that plan and from each source forced. */
function sources(store: Store, tenant: string, q: RetentionQuery, now: number) {
  return withContext(store, tenant, q, now, async (ctx) => {
    const plan = await planRetention(q, ctx);
    return {
      plan,
      planned: await answerRetention(q, ctx, plan),
      rollup: await answerRetention(q, ctx, { source: 'rollup', reason: 'forced' }),
      detail: await answerRetention(q, ctx, { source: 'detail', reason: 'forced' }),
    };
  });
}

function randomFilters(rand: Rand): PropertyFilter[] {
  const pool: PropertyFilter[] = [
    { property: 'properties.plan', op: 'eq', value: pick(rand, PLANS) },
    { property: 'properties.amount', op: 'gt', value: 20 },
    { property: 'properties.beta', op: 'is_set' },
    { property: 'properties.channel', op: 'in', value: [pick(rand, CHANNELS), pick(rand, CHANNELS)] },
    { property: 'userId', op: 'is_set' },
    { property: 'properties.meta.source', op: 'neq', value: 'ad' },
  ];
  const r = rand();
  if (r < 0.5) return [];
  if (r < 0.85) return [pick(rand, pool)];
  return [pick(rand, pool), pick(rand, pool)];
}

/** A random retention query over the data's span, and the `now` it runs at (sometimes inside the range). */
function randomQuery(rand: Rand, data: EventData): { input: Record<string, unknown>; now: number } {
  const period = pick(rand, ['day', 'week', 'month'] as const);
  const tz = pick(rand, TZS);
  const spanDays = { day: 3 + rand() * 18, week: 10 + rand() * 50, month: 25 + rand() * 60 }[period];
  const span = Math.floor(spanDays * DAY);
  const from = data.from + Math.floor(rand() * (data.to - data.from - span));
  const to = from + span;
  const r = rand();
  // Mostly the data's end, sometimes inside the range: offsets that have not started yet must not show.
  let now = r < 0.7 ? data.to : from + Math.floor(rand() * span);
  let range: Record<string, string> = { from: isoTime(from), to: isoTime(to) };
  if (rand() < 0.2) {
    range = { last: period === 'day' ? `${2 + Math.floor(rand() * 14)}d` : `${2 + Math.floor(rand() * 8)}w` };
    now = data.to - Math.floor(rand() * 20 * DAY);
  }
  // null: all events (a cohort by first seen at all; any activity as a return).
  const selector = () => ({ event: rand() < 0.1 ? null : pick(rand, EVENT_NAMES), filters: randomFilters(rand) });
  return {
    input: {
      kind: 'retention',
      range,
      tz,
      period,
      periods: 1 + Math.floor(rand() * 10),
      mode: pick(rand, ['first_time', 'recurring'] as const),
      start: selector(),
      return: selector(),
    },
    now,
  };
}

/** A store of `engine` that keeps the user activity rollup unless told not to. */
const openStore = (engine: Engine, activityRollup = true) => openShared(engine, undefined, { activityRollup });

let evSeq = 0;
/** One event of `tenant` at the ISO instant `at`; `who` is a user id, or `{ anon }` / `{}` for none. */
function ev(tenant: string, name: string, who: string | { anon?: string }, at: string, extra: Partial<EventRow> = {}) {
  const ts = Date.parse(at);
  const user = typeof who === 'string' ? { userId: who } : who.anon ? { anonymousId: who.anon } : {};
  return {
    id: uuidv7(ts + evSeq++),
    tenantId: tenant,
    name,
    ...user,
    properties: { n: evSeq },
    context: {},
    timestamp: isoTime(ts),
    receivedAt: isoTime(ts + 1000),
    ...extra,
  } satisfies EventRow;
}

describe.each(engines)('retention: %s', (engine) => {
  let store: Store;
  let dispose: () => Promise<void>;
  let data: EventData;
  beforeAll(async () => {
    ({ store, dispose } = await openStore(engine));
    // Three months across both DST changes of the spring (America on 03-08, Europe on 03-29).
    data = await loadEvents(store, {
      seed: 1601,
      events: 4000,
      users: 120,
      from: Date.parse('2026-01-05T00:00:00Z'),
      to: Date.parse('2026-04-06T00:00:00Z'),
    });
  }, 180_000);
  afterAll(() => dispose());

  it('agrees with the brute-force evaluator on 60 random queries', async () => {
    const rand = seeded(16);
    let rows = 0;
    let returned = 0;
    for (let i = 0; i < 60; i++) {
      const { input, now } = randomQuery(rand, data);
      const { result, expected } = await both(store, data.stored, data.tenant, input, { now });
      expect(result.rows, `query ${i}: ${JSON.stringify(input)} now ${isoTime(now)}`).toEqual(expected);
      rows += expected.length;
      returned += expected.filter((r) => (r[3] as number) > 0).length;
    }
    // The queries must have exercised something: many rows, many of them with returning users.
    expect(rows).toBeGreaterThan(300);
    expect(returned).toBeGreaterThan(100);
  });

  it('the decoy tenant sees only its own rows; a tenant without events gets empty cohorts', async () => {
    const input = {
      kind: 'retention',
      range: { from: '2026-01-05', to: '2026-04-06' },
      tz: 'UTC',
      period: 'week',
      periods: 4,
      mode: 'recurring',
      start: { event: 'signup' },
      return: { event: 'view' },
    };
    const mine = await both(store, data.stored, data.tenant, input, { now: data.to });
    const decoy = await both(store, data.stored, data.otherTenant, input, { now: data.to });
    expect(decoy.result.rows).toEqual(decoy.expected);
    expect(mine.result.rows).toEqual(mine.expected);
    // Both have members, and different ones: the decoy's users have the same ids but other events.
    expect(decoy.expected.some((r) => (r[1] as number) > 0)).toBe(true);
    expect(decoy.result.rows).not.toEqual(mine.result.rows);
    const nobody = await store.query('nobody', parse(input), { now: data.to });
    expect(nobody.rows.length).toBe(mine.result.rows.length);
    expect(nobody.rows.every((r) => r[1] === 0 && r[3] === 0 && r[4] === null)).toBe(true);
  });

  it('the user activity rollup answers exactly as the detail rows when every period is whole UTC hours', async () => {
    const rand = seeded(61);
    const planned = { rollup: 0, detail: 0 };
    let returned = 0;
    for (let i = 0; i < 60; i++) {
      const { input, now } = randomQuery(rand, data);
      // Unfiltered: what the rollup can answer. Asia/Kolkata's periods start on the half hour.
      const q = parse({
        ...input,
        start: { event: (input.start as { event: string }).event },
        return: { event: (input.return as { event: string }).event },
      });
      const { plan, planned: answer, rollup, detail } = await sources(store, data.tenant, q, now);
      const what = `query ${i}: ${JSON.stringify(q)} now ${isoTime(now)} (${plan.reason})`;
      expect(plan.source, what).toBe(q.tz === 'Asia/Kolkata' ? 'detail' : 'rollup');
      planned[plan.source]++;
      expect(answer.rows, what).toEqual(detail.rows);
      if (plan.source === 'rollup') {
        expect(rollup.rows, what).toEqual(detail.rows);
        returned += detail.rows.filter((r) => (r[3] as number) > 0).length;
      } else {
        // Half-hour periods: the hours of the rollup straddle their bounds, and the forced rollup errs.
        expect(plan.reason, what).toContain('off the UTC hour');
      }
    }
    expect(planned.rollup, JSON.stringify(planned)).toBeGreaterThan(30);
    expect(planned.detail, JSON.stringify(planned)).toBeGreaterThan(5);
    expect(returned).toBeGreaterThan(100);
  });

  it('a filter on either event, or a period off the UTC hour, is read from detail', async () => {
    const base = parse({
      kind: 'retention',
      range: { from: '2026-02-01', to: '2026-03-01' },
      tz: 'UTC',
      period: 'week',
      periods: 3,
      mode: 'recurring',
      start: { event: 'signup' },
      return: { event: 'view' },
    });
    const filter: PropertyFilter = { property: 'properties.plan', op: 'eq', value: 'pro' };
    const cases: [RetentionQuery, string][] = [
      [{ ...base, start: { ...base.start, filters: [filter] } }, 'a filter on properties.plan (start event)'],
      [{ ...base, return: { ...base.return, filters: [filter] } }, 'a filter on properties.plan (return event)'],
      [{ ...base, tz: 'Asia/Kolkata' }, 'off the UTC hour (2026-01-25T18:30:00.000Z)'],
    ];
    for (const [q, why] of cases) {
      const { plan, planned, detail } = await sources(store, data.tenant, q, data.to);
      expect(plan.source, why).toBe('detail');
      expect(plan.reason).toContain(why);
      expect(planned.rows).toEqual(detail.rows);
    }
  });

  describe('period edges', () => {
    // Weeks in Europe/Berlin around its spring-forward (Sunday 2026-03-29): Monday 03-23 starts at
    // 23:00Z (CET), Monday 03-30 at 22:00Z (CEST), Monday 04-06 at 22:00Z.
    const W1 = '2026-03-22T23:00:00.000Z';
    const W2 = '2026-03-29T22:00:00.000Z';
    const W3 = '2026-04-05T22:00:00.000Z';
    const tenant = `edges_${engine}`;
    const events: EventRow[] = [];
    const query = (mode: string, extra: Record<string, unknown> = {}) => ({
      kind: 'retention',
      range: { from: '2026-03-23', to: '2026-04-13' },
      tz: 'Europe/Berlin',
      period: 'week',
      periods: 3,
      mode,
      start: { event: 'signup' },
      return: { event: 'view' },
      ...extra,
    });
    const now = Date.parse('2026-04-20T00:00:00Z');

    beforeAll(async () => {
      events.push(
        // a: starts exactly at W2 (belongs to W2), returns exactly at W3 (offset 1).
        ev(tenant, 'signup', 'a', W2),
        ev(tenant, 'view', 'a', W3),
        // b: starts 1 ms before W2 (belongs to W1); returns 1 ms before W2 (offset 0) and at W2 (offset 1).
        ev(tenant, 'signup', 'b', '2026-03-29T21:59:59.999Z'),
        ev(tenant, 'view', 'b', '2026-03-29T21:59:59.999Z'),
        ev(tenant, 'view', 'b', W2),
        // c: first started before the range: in no first_time cohort, in W1 when recurring.
        ev(tenant, 'signup', 'c', '2026-03-10T12:00:00Z'),
        ev(tenant, 'signup', 'c', '2026-03-24T12:00:00Z'),
        // d: an anonymous visitor counts by its anonymous id.
        ev(tenant, 'signup', { anon: 'anon-d' }, '2026-03-23T10:00:00Z'),
        ev(tenant, 'view', { anon: 'anon-d' }, '2026-04-07T10:00:00Z'),
        // Nobody: neither id, ignored.
        ev(tenant, 'signup', {}, '2026-03-24T10:00:00Z'),
        ev(tenant, 'view', {}, '2026-03-24T11:00:00Z'),
        // A view in the week after the range: no row reaches it.
        ev(tenant, 'view', 'a', '2026-04-14T10:00:00Z'),
      );
      // Stored newest first, in two batches: order of arrival is no order of time.
      const sorted = [...events].sort((x, y) => y.timestamp.localeCompare(x.timestamp));
      await store.insertEvents(sorted.slice(0, 5));
      await store.insertEvents(sorted.slice(5));
    });

    it('first_time: an event at a period start belongs to that period, one a millisecond before to the previous', async () => {
      const { result, expected } = await both(store, events, tenant, query('first_time'), { now });
      expect(result.rows).toEqual([
        [W1, 2, 0, 1, 0.5],
        [W1, 2, 1, 1, 0.5],
        [W1, 2, 2, 1, 0.5],
        [W2, 1, 0, 0, 0],
        [W2, 1, 1, 1, 1],
        [W3, 0, 0, 0, null],
      ]);
      expect(result.rows).toEqual(expected);
    });

    it('recurring: a user who started before the range is in the cohort of each later start', async () => {
      const { result, expected } = await both(store, events, tenant, query('recurring'), { now });
      expect(result.rows).toEqual([
        [W1, 3, 0, 1, 1 / 3],
        [W1, 3, 1, 1, 1 / 3],
        [W1, 3, 2, 1, 1 / 3],
        [W2, 1, 0, 0, 0],
        [W2, 1, 1, 1, 1],
        [W3, 0, 0, 0, null],
      ]);
      expect(result.rows).toEqual(expected);
    });

    it('periods that start after now are not reported', async () => {
      const early = Date.parse('2026-04-01T12:00:00Z');
      const { result, expected } = await both(store, events, tenant, query('first_time'), { now: early });
      expect(result.rows).toEqual([
        [W1, 2, 0, 1, 0.5],
        [W1, 2, 1, 1, 0.5],
        [W2, 1, 0, 0, 0],
      ]);
      expect(result.rows).toEqual(expected);
      // A period starting exactly at now has begun.
      const atW3 = await both(store, events, tenant, query('first_time'), { now: Date.parse(W3) });
      expect(atW3.result.rows).toHaveLength(6);
      expect(atW3.result.rows).toEqual(atW3.expected);
    });

    it('a late start event, stored after the rest, moves the user to its earlier cohort', async () => {
      const late = `late_${engine}`;
      const rows = [ev(late, 'signup', 'z', '2026-04-07T09:00:00Z'), ev(late, 'view', 'z', '2026-04-08T09:00:00Z')];
      await store.insertEvents(rows);
      const before = await both(store, rows, late, query('first_time'), { now });
      expect(before.result.rows).toEqual(before.expected);
      expect(before.result.rows.map((r) => r[1])).toEqual([0, 0, 0, 0, 0, 1]);
      const first = ev(late, 'signup', 'z', '2026-03-31T09:00:00Z', { receivedAt: '2026-04-10T00:00:00.000Z' });
      await store.insertEvents([first]);
      rows.push(first);
      const after = await both(store, rows, late, query('first_time'), { now });
      expect(after.result.rows).toEqual(after.expected);
      expect(after.result.rows.slice(3)).toEqual([
        [W2, 1, 0, 0, 0],
        [W2, 1, 1, 1, 1],
        [W3, 0, 0, 0, null],
      ]);
    });

    it('months in Asia/Kolkata (+05:30) and days over the fall-back in Europe/Berlin', async () => {
      const k = `kolkata_${engine}`;
      // March in Kolkata starts at 2026-02-28T18:30Z.
      const rows = [
        ev(k, 'signup', 'm1', '2026-02-28T18:30:00.000Z'),
        ev(k, 'signup', 'm2', '2026-02-28T18:29:59.999Z'),
        ev(k, 'view', 'm2', '2026-02-28T18:30:00.000Z'),
        ev(k, 'view', 'm1', '2026-03-31T18:29:59.999Z'),
        ev(k, 'view', 'm1', '2026-03-31T18:30:00.000Z'),
        // Berlin's 25-hour Sunday 2026-10-25 runs from 10-24T22:00Z to 10-25T23:00Z.
        ev(k, 'signup', 'f1', '2026-10-25T22:59:59.999Z'),
        ev(k, 'view', 'f1', '2026-10-25T23:00:00.000Z'),
        ev(k, 'signup', 'f2', '2026-10-24T22:00:00.000Z'),
        ev(k, 'view', 'f2', '2026-10-24T21:59:59.999Z'),
      ];
      await store.insertEvents(rows);
      const months = await both(
        store,
        rows,
        k,
        {
          ...query('first_time'),
          range: { from: '2026-02-01', to: '2026-05-01' },
          tz: 'Asia/Kolkata',
          period: 'month',
        },
        { now },
      );
      const FEB = '2026-01-31T18:30:00.000Z';
      const MAR = '2026-02-28T18:30:00.000Z';
      const APR = '2026-03-31T18:30:00.000Z';
      expect(months.result.rows).toEqual([
        [FEB, 1, 0, 0, 0],
        [FEB, 1, 1, 1, 1],
        [FEB, 1, 2, 0, 0],
        [MAR, 1, 0, 1, 1],
        [MAR, 1, 1, 1, 1],
        [APR, 0, 0, 0, null],
      ]);
      expect(months.result.rows).toEqual(months.expected);
      const days = await both(
        store,
        rows,
        k,
        {
          ...query('first_time'),
          range: { from: '2026-10-24', to: '2026-10-27' },
          tz: 'Europe/Berlin',
          period: 'day',
          periods: 2,
        },
        { now: Date.parse('2026-11-01T00:00:00Z') },
      );
      expect(days.result.rows).toEqual([
        ['2026-10-23T22:00:00.000Z', 0, 0, 0, null],
        ['2026-10-23T22:00:00.000Z', 0, 1, 0, null],
        // f2's view a millisecond before its cohort's day is in the day before, not at offset 0.
        ['2026-10-24T22:00:00.000Z', 2, 0, 0, 0],
        ['2026-10-24T22:00:00.000Z', 2, 1, 1, 0.5],
        ['2026-10-25T23:00:00.000Z', 0, 0, 0, null],
      ]);
      expect(days.result.rows).toEqual(days.expected);
    });
  });

  it('hostile strings in every string field are data', async () => {
    const tenant = `hostile_${engine}`;
    const rows = HOSTILE.flatMap((h, i) => [
      ev(tenant, h, h, `2026-03-0${1 + (i % 5)}T10:00:00Z`, { properties: { [h]: h, note: `x${h}x` } }),
      ev(tenant, h, h, `2026-03-1${i % 9}T10:00:00Z`, { properties: { [h]: h, note: `x${h}x` } }),
    ]);
    await store.insertEvents(rows);
    for (const h of HOSTILE) {
      const input = {
        kind: 'retention',
        range: { from: '2026-03-01', to: '2026-03-29' },
        tz: 'UTC',
        period: 'week',
        periods: 4,
        start: { event: h, filters: [{ property: `properties.${h}`, op: 'eq', value: h }] },
        return: {
          event: h,
          filters: [
            { property: 'properties.note', op: 'contains', value: h },
            { property: `context.${h}`, op: 'is_not_set' },
            { property: 'userId', op: 'in', value: [h, 'other'] },
          ],
        },
      };
      const { result, expected } = await both(store, rows, tenant, input, { now: Date.parse('2026-04-01T00:00:00Z') });
      expect(result.rows, h).toEqual(expected);
      expect(
        expected.reduce((s, r) => s + (r[1] as number), 0),
        h,
      ).toBeGreaterThan(0);
    }
    const [count] = await store.asTenant(tenant, (sql) =>
      sql.query<{ n: string | number }>('SELECT count(*) AS n FROM events WHERE tenant_id = $1', [tenant]),
    );
    expect(Number(count?.n)).toBe(rows.length);
  });

  it('answers the documented columns, explains its source and cuts at maxRows', async () => {
    const input = {
      kind: 'retention',
      range: { from: '2026-02-01', to: '2026-04-01' },
      tz: 'Europe/Berlin',
      period: 'day',
      periods: 10,
      start: { event: 'signup' },
      return: { event: 'view' },
      explain: true,
    };
    const { result, expected } = await both(store, data.stored, data.tenant, input, { now: data.to });
    expect(result.columns).toEqual([
      { name: 'cohort', type: 'time' },
      { name: 'cohort_size', type: 'number' },
      { name: 'period', type: 'number' },
      { name: 'returned', type: 'number' },
      { name: 'rate', type: 'number' },
    ]);
    expect(result.rows).toEqual(expected);
    expect(result.meta.truncated).toBe(false);
    expect(result.meta.source).toBe('rollup');
    expect(result.meta.explain).toEqual({
      source: 'rollup',
      reason:
        "cohorts by each user's first start event over all history and returns by day in Europe/Berlin, every period whole UTC hours: read from the hourly user activity rollup",
    });
    const filtered = await store.query(
      data.tenant,
      parse({
        ...input,
        mode: 'recurring',
        return: { event: 'view', filters: [{ property: 'userId', op: 'is_set' }] },
      }),
      { now: data.to },
    );
    expect(filtered.meta.explain).toEqual({
      source: 'detail',
      reason:
        'cohorts by every start event and returns by day in Europe/Berlin: a filter on userId (return event) needs the detail rows',
    });
    const cut = await store.query(data.tenant, parse(input), { now: data.to, maxRows: 25 });
    expect(cut.rows).toEqual(expected.slice(0, 25));
    expect(cut.meta.truncated).toBe(true);
    const whole = await store.query(data.tenant, parse(input), { now: data.to, maxRows: expected.length });
    expect(whole.meta.truncated).toBe(false);
  });
});

describe.each(engines)('retention on a store migrated with events already stored: %s', (engine) => {
  const schema = freshSchema();
  const dataDir = engine === 'pglite' ? mkdtempSync(join(tmpdir(), 'tally-pglite-')) : undefined;
  let store: Store;
  const tenant = 'migrated';
  const rows: EventRow[] = [];
  beforeAll(async () => {
    const worker = engine.endsWith('-worker');
    store = isPostgres(engine)
      ? await createStore({ kind: 'postgres', url: PG_URL, schema, poolSize: 2, worker, activityRollup: true })
      : await createStore({ kind: 'pglite', schema, worker, activityRollup: true, ...(dataDir ? { dataDir } : {}) });
    // The schema before user_activity_hourly, and events stored in it as its writers stored them.
    await migrate(
      store.sql,
      loadMigrations().filter((m) => m.version < 7),
    );
    const rand = seeded(7);
    for (let i = 0; i < 300; i++) {
      const at = Date.parse('2026-02-02T00:00:00Z') + Math.floor(rand() * 40 * DAY);
      const who = rand() < 0.1 ? { anon: `anon-${i % 7}` } : rand() < 0.05 ? {} : `u${Math.floor(rand() * 25)}`;
      rows.push(ev(tenant, rand() < 0.3 ? 'signup' : 'view', who, isoTime(at)));
    }
    const column = (f: (r: EventRow) => string | null | undefined) => rows.map((r) => f(r) ?? null);
    await store.sql.query(
      `INSERT INTO events (id, tenant_id, name, user_id, anonymous_id, properties, context, ts, received_at)
       SELECT id::uuid, t, n, u, a, '{}', '{}', ts::timestamptz, ts::timestamptz
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS x(id, t, n, u, a, ts)`,
      [
        column((r) => r.id),
        column((r) => r.tenantId),
        column((r) => r.name),
        column((r) => r.userId),
        column((r) => r.anonymousId),
        column((r) => r.timestamp),
      ],
    );
    await store.migrate();
  }, 60_000);
  afterAll(async () => {
    await store.close();
    if (isPostgres(engine)) await dropSchema(schema);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const query = (mode: string) =>
    parse({
      kind: 'retention',
      range: { from: '2026-02-02', to: '2026-03-16' },
      tz: 'Europe/Berlin',
      period: 'week',
      periods: 4,
      mode,
      start: { event: 'signup' },
      return: { event: 'view' },
    });
  const now = Date.parse('2026-04-01T00:00:00Z');
  const oracle = (q: RetentionQuery) => retentionOracle(rows, q, { tenant, ...resolveRange(q.range, q.tz, now), now });

  it('answers from detail until rebuildRollups, then from the rollup, alike', async () => {
    for (const mode of ['first_time', 'recurring']) {
      const q = query(mode);
      const expected = oracle(q);
      expect(expected.some((r) => (r[3] as number) > 0)).toBe(true);
      const before = await sources(store, tenant, q, now);
      expect(before.plan.source, mode).toBe('detail');
      expect(before.plan.reason, mode).toMatch(
        /user activity rollup is complete only from \d{4}-\d\d-\d\dT\d\d:00:00\.000Z/,
      );
      expect(before.planned.rows, mode).toEqual(expected);
      // The rollup holds none of the events stored before the migration: forced, it would count nobody.
      expect(before.rollup.rows, mode).not.toEqual(expected);
      expect(before.rollup.rows.every((r) => r[1] === 0)).toBe(true);
    }
    await rebuildRollups(store);
    for (const mode of ['first_time', 'recurring']) {
      const q = query(mode);
      const after = await sources(store, tenant, q, now);
      expect(after.plan.source, mode).toBe('rollup');
      expect(after.planned.rows, mode).toEqual(oracle(q));
      const result = await store.query(tenant, q, { now });
      expect(result.meta.source).toBe('rollup');
      expect(result.rows).toEqual(oracle(q));
    }
  });
});

describe.each(engines)('retention on a store that does not keep user activity: %s', (engine) => {
  let store: Store;
  let dispose: () => Promise<void>;
  let data: EventData;
  beforeAll(async () => {
    ({ store, dispose } = await openStore(engine, false));
    data = await loadEvents(store, {
      seed: 1602,
      events: 800,
      users: 40,
      from: Date.parse('2026-01-05T00:00:00Z'),
      to: Date.parse('2026-02-16T00:00:00Z'),
    });
  }, 120_000);
  afterAll(() => dispose());

  it('stores no user activity and answers from detail, saying the rollup is not kept', async () => {
    const [kept] = await store.sql.query<{ n: number; from: string }>(
      `SELECT (SELECT count(*)::int FROM user_activity_hourly) AS n,
              (SELECT complete_from::text FROM rollup_coverage WHERE rollup = 'user_activity_hourly') AS from`,
    );
    expect(kept).toEqual({ n: 0, from: 'infinity' });
    for (const mode of ['first_time', 'recurring']) {
      const input = {
        kind: 'retention',
        range: { from: '2026-01-12', to: '2026-02-09' },
        tz: 'UTC',
        period: 'week',
        periods: 3,
        mode,
        start: { event: 'signup' },
        return: { event: 'view' },
        explain: true,
      };
      const { result, expected } = await both(store, data.stored, data.tenant, input, { now: data.to });
      expect(result.rows, mode).toEqual(expected);
      expect(expected.some((r) => (r[3] as number) > 0)).toBe(true);
      expect(result.meta.source, mode).toBe('detail');
      expect(result.meta.explain?.reason, mode).toContain('the hourly user activity rollup is not kept');
    }
  });
});
