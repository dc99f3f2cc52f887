/**
 * Retention on both ClickHouse engines (Debian's 18.16 server and chDB's current engine) against the
 * brute-force evaluator the Postgres engine answers to (store/test/support/oracle/retention.ts): random
 * queries over generated data (seeded; a failure prints the query: periods, modes, filters, all events,
 * time zones across DST changes and a half-hour offset, `now` inside the range), then hand-written cases
 * at period edges whose answers are written out here, late events, more periods than a 64-bit mask holds,
 * tenants, hostile strings and the documented columns.
 */
import {
  type EventRow,
  isoTime,
  parseQuery,
  type PropertyFilter,
  type Query,
  type QueryOptions,
  type RetentionQuery,
  resolveRange,
  uuidv7,
} from '@tally/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retentionOracle } from '../../store/test/support/oracle/retention.js';
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
} from '../../store/test/support/query-data.js';
import type { ClickHouseStore } from '../src/store.js';
import { engines, openStore } from './support/engines.js';

const DAY = 86_400_000;
const TZS = ['UTC', 'Europe/Berlin', 'Asia/Kolkata', 'America/New_York'] as const;

function parse(input: unknown): RetentionQuery {
  const parsed = parseQuery(input);
  if (!parsed.ok) throw parsed.error;
  return parsed.query as RetentionQuery;
}

/** The engine's rows and the oracle's for the same query, tenant and now. */
async function both(
  store: ClickHouseStore,
  rows: readonly EventRow[],
  tenant: string,
  input: unknown,
  options: QueryOptions,
) {
  const q = parse(input);
  const now = options.now as number;
  const result = await store.query(tenant, q as Query, options);
  const { from, to } = resolveRange(q.range, q.tz, now);
  return { result, expected: retentionOracle(rows, q, { tenant, from, to, now }) };
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
  let store: ClickHouseStore;
  let dispose: () => Promise<void>;
  let data: EventData;
  beforeAll(async () => {
    ({ store, cleanup: dispose } = await openStore(engine));
    // Three months across both DST changes of the spring (America on 03-08, Europe on 03-29).
    data = await loadEvents(store, {
      seed: 1601,
      events: 4000,
      users: 120,
      from: Date.parse('2026-01-05T00:00:00Z'),
      to: Date.parse('2026-04-06T00:00:00Z'),
    });
  }, 600_000);
  afterAll(() => dispose?.(), 300_000);

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

  it('more periods than a 64-bit mask holds: 91 days, every mode, all events, filters', async () => {
    let returned = 0;
    for (const mode of ['first_time', 'recurring'] as const) {
      for (const start of [
        { event: 'signup' },
        { event: null, filters: [{ property: 'properties.beta', op: 'is_set' }] },
      ]) {
        const input = {
          kind: 'retention',
          range: { from: '2026-01-05', to: '2026-04-06' },
          tz: 'America/New_York',
          period: 'day',
          periods: 52,
          mode,
          start,
          return: { event: 'view' },
        };
        const { result, expected } = await both(store, data.stored, data.tenant, input, { now: data.to });
        expect(result.rows, JSON.stringify(input)).toEqual(expected);
        expect(new Set(expected.map((r) => r[0])).size).toBeGreaterThan(64);
        returned += expected.filter((r) => (r[2] as number) > 40 && (r[3] as number) > 0).length;
      }
    }
    // Returns at offsets beyond 40 days were counted, not only near the cohort.
    expect(returned).toBeGreaterThan(10);
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
    const [count] = await store.client.query<{ n: number }>(
      `SELECT count() AS n FROM ${store.database}.events WHERE tenant_id = 'hostile_${engine}'`,
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
    expect(result.meta.source).toBe('detail');
    expect(result.meta.explain).toEqual({
      source: 'detail',
      reason:
        "cohorts by each user's first start event over all history and returns by day in Europe/Berlin: read from the detail rows (ClickHouse's hourly counts hold no users)",
    });
    const cut = await store.query(data.tenant, parse(input), { now: data.to, maxRows: 25 });
    expect(cut.rows).toEqual(expected.slice(0, 25));
    expect(cut.meta.truncated).toBe(true);
    const whole = await store.query(data.tenant, parse(input), { now: data.to, maxRows: expected.length });
    expect(whole.meta.truncated).toBe(false);
  });
});
