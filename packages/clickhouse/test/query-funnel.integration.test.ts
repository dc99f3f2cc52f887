/**
 * Funnels on both ClickHouse engines (Debian's 18.16 server and chDB's current engine) against the
 * brute-force evaluator the Postgres engine answers to (store/test/support/oracle/funnel.ts): random
 * funnels over generated data (seeded; a failure prints the query: 2–5 steps, filters, step windows,
 * each order, exclusions, breakdowns, time zones), then hand-written cases whose answers are written out
 * here: equal times (also mixed into random funnels), an event matching two steps, windows met exactly, a later start completing where the
 * earliest cannot, exclusions at a step's very time, strict order; a user with thousands of events (the
 * array passes stay linear); tenants, hostile strings and the documented columns.
 */
import {
  type EventRow,
  type FunnelQuery,
  isoTime,
  parseQuery,
  type PropertyFilter,
  type Query,
  type QueryOptions,
  resolveRange,
  uuidv7,
} from '@tally/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { funnelOracle } from '../../store/test/support/oracle/funnel.js';
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

function parse(input: unknown): FunnelQuery {
  const parsed = parseQuery(input);
  if (!parsed.ok) throw parsed.error;
  return parsed.query as FunnelQuery;
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
  const result = await store.query(tenant, q as Query, options);
  const { from, to } = resolveRange(q.range, q.tz, options.now as number);
  return { result, expected: funnelOracle(rows, q, { tenant, from, to }) };
}

function randomFilters(rand: Rand): PropertyFilter[] {
  const pool: PropertyFilter[] = [
    { property: 'properties.plan', op: 'eq', value: pick(rand, PLANS) },
    { property: 'properties.plan', op: 'neq', value: pick(rand, PLANS) },
    { property: 'properties.amount', op: 'gt', value: 20 },
    { property: 'properties.beta', op: 'is_set' },
    { property: 'properties.channel', op: 'in', value: [pick(rand, CHANNELS), pick(rand, CHANNELS)] },
    { property: 'anonymousId', op: 'is_not_set' },
    { property: 'properties.meta.source', op: 'neq', value: 'ad' },
  ];
  const r = rand();
  if (r < 0.55) return [];
  if (r < 0.9) return [pick(rand, pool)];
  return [pick(rand, pool), pick(rand, pool)];
}

const WINDOWS = ['30m', '2h', '6h', '1d', '3d'] as const;
const ms = { '30m': 1_800_000, '2h': 7_200_000, '6h': 21_600_000, '1d': DAY, '3d': 3 * DAY } as const;

/** A random funnel over part of the data's span (see the module comment), and the `now` it runs at. */
function randomQuery(rand: Rand, data: EventData, order: FunnelQuery['order']) {
  const n = 2 + Math.floor(rand() * 4);
  const window = pick(rand, WINDOWS);
  const steps = Array.from({ length: n }, (_, i) => {
    const step: Record<string, unknown> = { event: pick(rand, EVENT_NAMES), filters: randomFilters(rand) };
    const w = pick(rand, WINDOWS);
    if (order !== 'any' && i > 0 && rand() < 0.35 && ms[w] <= ms[window]) step.window = w;
    return step;
  });
  const exclusions: Record<string, unknown>[] = [];
  if (order !== 'any' && rand() < 0.45) {
    for (let x = 0; x < 1 + Math.floor(rand() * 2); x++) {
      const from = Math.floor(rand() * (n - 1));
      const to = from + 1 + Math.floor(rand() * (n - 1 - from));
      exclusions.push({ event: pick(rand, EVENT_NAMES), filters: randomFilters(rand), from, to });
    }
  }
  const span = Math.floor((2 + rand() * 12) * DAY);
  const from = data.from + Math.floor(rand() * (data.to - data.from - span));
  let range: Record<string, string> = { from: isoTime(from), to: isoTime(from + span) };
  let now = data.to;
  if (rand() < 0.2) {
    range = { last: `${2 + Math.floor(rand() * 10)}d` };
    now = data.to - Math.floor(rand() * 8 * DAY);
  }
  const input: Record<string, unknown> = { kind: 'funnel', range, tz: pick(rand, TZS), window, order, steps };
  if (exclusions.length > 0) input.exclusions = exclusions;
  if (rand() < 0.35) {
    input.breakdown = {
      property: pick(rand, ['properties.plan', 'properties.channel', 'properties.beta', 'properties.amount', 'userId']),
      limit: 1 + Math.floor(rand() * 4),
    };
  }
  return { input, now };
}

let evSeq = 0;
/** One event of `tenant` at the ISO instant `at`; `who` is a user id, or `{ anon }` / `{}` for none. */
function ev(
  tenant: string,
  name: string,
  who: string | { anon?: string },
  at: string,
  props: EventRow['properties'] = {},
) {
  const ts = Date.parse(at);
  const user = typeof who === 'string' ? { userId: who } : who.anon ? { anonymousId: who.anon } : {};
  return {
    id: uuidv7(ts),
    tenantId: tenant,
    name,
    ...user,
    properties: { n: evSeq++, ...props },
    context: {},
    timestamp: isoTime(ts),
    receivedAt: isoTime(ts + 1000),
  } satisfies EventRow;
}

describe.each(engines)('funnel: %s', (engine) => {
  let store: ClickHouseStore;
  let dispose: () => Promise<void>;
  let data: EventData;
  beforeAll(async () => {
    ({ store, cleanup: dispose } = await openStore(engine));
    data = await loadEvents(store, { seed: 1602, events: 2500, users: 50 });
  }, 600_000);
  afterAll(() => dispose?.(), 300_000);

  for (const order of ['ordered', 'strict', 'any'] as const) {
    it(`agrees with the brute-force evaluator on 40 random ${order} funnels`, async () => {
      const rand = seeded({ ordered: 21, strict: 22, any: 23 }[order]);
      let converted = 0;
      let timed = 0;
      for (let i = 0; i < 40; i++) {
        const { input, now } = randomQuery(rand, data, order);
        const { result, expected } = await both(store, data.stored, data.tenant, input, { now });
        expect(result.rows, `query ${i}: ${JSON.stringify(input)} now ${isoTime(now)}`).toEqual(expected);
        // The entered column follows step, event (and breakdown).
        const entered = input.breakdown ? 3 : 2;
        converted += expected.filter((r) => r[0] !== 1 && (r[entered] as number) > 0).length;
        timed += expected.filter((r) => r[r.length - 2] !== null).length;
      }
      // The funnels must have exercised something: users reaching later steps, with times.
      expect(converted).toBeGreaterThan(30);
      expect(timed).toBeGreaterThan(30);
    });
  }

  it('agrees with the brute-force evaluator when some users have events at one instant and others not', async () => {
    // The engine evaluates a user whose events all have distinct times apart from one with peers (events
    // at one instant, which must not follow each other): here every other user's times are cut to the
    // hour, so one query meets both kinds of user.
    const HOUR = 3_600_000;
    const coarse = (r: EventRow): EventRow => {
      if (!r.userId || Number(r.userId.slice(1)) % 2 === 1) return r;
      const ts = Math.floor(Date.parse(r.timestamp) / HOUR) * HOUR;
      return { ...r, timestamp: isoTime(ts) };
    };
    const mixed = await loadEvents(
      {
        insertEvents: (rows: readonly EventRow[]) => store.insertEvents(rows.map(coarse)),
        insertRequestLogs: (rows) => store.insertRequestLogs(rows),
      },
      { seed: 1603, events: 1500, users: 40, tenant: `mixed_${engine}` },
    );
    const stored = mixed.stored.map(coarse);
    const instants = new Map<string, number>();
    for (const r of stored)
      if (r.tenantId === mixed.tenant)
        instants.set(`${r.userId}@${r.timestamp}`, 1 + (instants.get(`${r.userId}@${r.timestamp}`) ?? 0));
    const withPeers = new Set([...instants].filter(([, n]) => n > 1).map(([k]) => k.split('@')[0]));
    expect(withPeers.size).toBeGreaterThan(10);
    const rand = seeded(24);
    for (let i = 0; i < 30; i++) {
      const { input, now } = randomQuery(rand, mixed, pick(rand, ['ordered', 'strict', 'any'] as const));
      const { result, expected } = await both(store, stored, mixed.tenant, input, { now });
      expect(result.rows, `query ${i}: ${JSON.stringify(input)} now ${isoTime(now)}`).toEqual(expected);
    }
  }, 180_000);

  describe('hand-written cases', () => {
    const tenant = `edges_${engine}`;
    const events: EventRow[] = [];
    const funnel = (steps: string[], extra: Record<string, unknown> = {}) => ({
      kind: 'funnel',
      range: { from: '2026-03-01T00:00:00Z', to: '2026-03-02T00:00:00Z' },
      window: '1h',
      steps: steps.map((s) => {
        // "b@30m": step b within 30 minutes of the previous step.
        const [event, window] = s.split('@');
        return window ? { event, window } : { event };
      }),
      ...extra,
    });
    const now = Date.parse('2026-03-10T00:00:00Z');
    const at = (hms: string) => `2026-03-01T${hms}Z`;

    beforeAll(async () => {
      events.push(
        // eq: a and b at the same instant (not one after the other), then c.
        ev(tenant, 'a', 'eq', at('10:00:00')),
        ev(tenant, 'b', 'eq', at('10:00:00')),
        ev(tenant, 'c', 'eq', at('10:00:01')),
        // two: two a's 5 s apart (a funnel a → a needs both: one event serves one step).
        ev(tenant, 'a', 'two', at('11:00:00')),
        ev(tenant, 'a', 'two', at('11:00:05')),
        // gap: b exactly 30 min after a, c exactly 1 h after a.
        ev(tenant, 'a', 'gap', at('12:00:00')),
        ev(tenant, 'b', 'gap', at('12:30:00')),
        ev(tenant, 'c', 'gap', at('13:00:00')),
        // late: from the first a, c is 90 min away; from the second, 50 min.
        ev(tenant, 'a', 'late', at('14:00:00')),
        ev(tenant, 'a', 'late', at('14:40:00')),
        ev(tenant, 'b', 'late', at('14:50:00')),
        ev(tenant, 'c', 'late', at('15:30:00')),
        // excl: x at a's very time and at c's very time.
        ev(tenant, 'a', 'excl', at('16:00:00')),
        ev(tenant, 'x', 'excl', at('16:00:00')),
        ev(tenant, 'b', 'excl', at('16:10:00')),
        ev(tenant, 'x', 'excl', at('16:20:00')),
        ev(tenant, 'c', 'excl', at('16:20:00')),
        // mid: x at b's very time.
        ev(tenant, 'a', 'mid', at('17:00:00')),
        ev(tenant, 'b', 'mid', at('17:10:00')),
        ev(tenant, 'x', 'mid', at('17:10:00')),
        ev(tenant, 'c', 'mid', at('17:20:00')),
        // strict: another event between a and b.
        ev(tenant, 'a', 'strict', at('18:00:00')),
        ev(tenant, 'noise', 'strict', at('18:01:00')),
        ev(tenant, 'b', 'strict', at('18:02:00')),
        ev(tenant, 'c', 'strict', at('18:03:00')),
        // an anonymous visitor counts by its anonymous id; events with neither id are nobody's.
        ev(tenant, 'a', { anon: 'v1' }, at('19:00:00')),
        ev(tenant, 'b', { anon: 'v1' }, at('19:10:00')),
        ev(tenant, 'a', {}, at('19:00:00')),
        ev(tenant, 'b', {}, at('19:10:00')),
        // between: x strictly between the first a and b, not after the second a.
        ev(tenant, 'a', 'between', at('20:00:00')),
        ev(tenant, 'x', 'between', at('20:05:00')),
        ev(tenant, 'a', 'between', at('20:06:00')),
        ev(tenant, 'b', 'between', at('20:10:00')),
        // cut: x strictly between its only a and b.
        ev(tenant, 'a', 'cut', at('21:00:00')),
        ev(tenant, 'x', 'cut', at('21:05:00')),
        ev(tenant, 'b', 'cut', at('21:10:00')),
        // edge: starts in the range's last minute, b after the range's end (within the window).
        ev(tenant, 'a', 'edge', at('23:59:00')),
        ev(tenant, 'b', 'edge', '2026-03-02T00:10:00Z'),
        // after: a at `to` itself starts nothing.
        ev(tenant, 'a', 'after', '2026-03-02T00:00:00Z'),
        ev(tenant, 'b', 'after', '2026-03-02T00:01:00Z'),
      );
      // Stored newest first, in two batches: order of arrival is no order of time.
      const sorted = [...events].sort((x, y) => y.timestamp.localeCompare(x.timestamp));
      await store.insertEvents(sorted.slice(0, 9));
      await store.insertEvents(sorted.slice(9));
    });

    /**
     * The engine agrees with the oracle, the oracle user by user reaches each step as `lists` say (written
     * out by hand from the events above), and the engine's entered column counts those lists.
     */
    const expectReached = async (input: unknown, lists: string[][]) => {
      const { result, expected } = await both(store, events, tenant, input, { now });
      expect(result.rows).toEqual(expected);
      const q = parse(input);
      const { from, to } = resolveRange(q.range, q.tz, now);
      const who = [...new Set(events.map((e) => e.userId ?? e.anonymousId ?? ''))].sort();
      const reached = lists.map((_, k) =>
        who.filter((u) => {
          const mine = events.filter((e) => (e.userId ?? e.anonymousId ?? '') === u);
          return (funnelOracle(mine, q, { tenant, from, to })[k]?.[2] as number) > 0;
        }),
      );
      expect(reached).toEqual(lists.map((l) => [...l].sort()));
      expect(result.rows.map((r) => r[2])).toEqual(lists.map((l) => l.length));
      return result.rows;
    };
    const STARTED = ['eq', 'two', 'gap', 'late', 'excl', 'mid', 'strict', 'v1', 'between', 'cut', 'edge'];

    it('events at the same instant are not one after the other; one event serves one step', async () => {
      const ab = ['gap', 'late', 'excl', 'mid', 'strict', 'v1', 'between', 'cut', 'edge'];
      await expectReached(funnel(['a', 'b']), [STARTED, ab]);
      await expectReached(funnel(['a', 'a']), [STARTED, ['two', 'late', 'between']]);
    });

    it('a gap exactly equal to a window counts', async () => {
      const abc = ['gap', 'late', 'excl', 'mid', 'strict'];
      const ab = ['gap', 'late', 'excl', 'mid', 'strict', 'v1', 'between', 'cut', 'edge'];
      await expectReached(funnel(['a', 'b@30m', 'c']), [STARTED, ab, abc]);
      const noGap = (l: string[]) => l.filter((u) => u !== 'gap');
      await expectReached(funnel(['a', 'b@29m', 'c']), [STARTED, noGap(ab), noGap(abc)]);
      await expectReached(funnel(['a', 'b', 'c'], { window: '59m' }), [STARTED, ab, noGap(abc)]);
    });

    it('a later start completes where the earliest cannot; times run along the chain reaching each step', async () => {
      const input = funnel(['a', 'b', 'c'], { range: { from: '2026-03-01T14:00:00Z', to: '2026-03-01T15:00:00Z' } });
      const rows = await expectReached(input, [['late'], ['late'], ['late']]);
      // late reaches b first at 14:50, 10 min after the a it extends (the one at 14:40, not the first at
      // 14:00), and c at 15:30, 40 min after that b.
      expect(rows).toEqual([
        [1, 'a', 1, 1, 0, 1, 1, null, null],
        [2, 'b', 1, 1, 0, 1, 1, 600, 600],
        [3, 'c', 1, 1, 0, 1, 1, 2400, 2400],
      ]);
    });

    it('exclusions: strictly between from and to; at a from or to step’s very time is not between', async () => {
      const ab = ['gap', 'late', 'excl', 'mid', 'strict', 'v1', 'between', 'cut', 'edge'];
      const abc = ['gap', 'late', 'excl', 'mid', 'strict'];
      const x = (from: number, to: number) => ({ exclusions: [{ event: 'x', from, to }] });
      // cut is out; between completes from its second a; excl's x at a's time and mid's at b's count not.
      const noCut = ab.filter((u) => u !== 'cut');
      await expectReached(funnel(['a', 'b', 'c'], x(0, 1)), [STARTED, noCut, abc]);
      // mid's x at b's time is strictly between a and c: out at step 3, still at step 2.
      await expectReached(funnel(['a', 'b', 'c'], x(0, 2)), [STARTED, ab, abc.filter((u) => u !== 'mid')]);
      // excl's x at c's time and mid's at b's time are not between b and c.
      await expectReached(funnel(['a', 'b', 'c'], x(1, 2)), [STARTED, ab, abc]);
      // Both at once: each applies from its own `to` on.
      await expectReached(funnel(['a', 'b', 'c'], { exclusions: [...x(0, 1).exclusions, ...x(0, 2).exclusions] }), [
        STARTED,
        noCut,
        abc.filter((u) => u !== 'mid'),
      ]);
    });

    it('strict order: the very next event (events at the same instant are not in between)', async () => {
      await expectReached(funnel(['a', 'b', 'c'], { order: 'strict' }), [
        STARTED,
        ['gap', 'late', 'excl', 'mid', 'v1', 'between', 'edge'],
        ['gap', 'late', 'excl', 'mid'],
      ]);
      // edge's b is after the range: no start.
      await expectReached(funnel(['b', 'c'], { order: 'strict' }), [
        ['eq', 'gap', 'late', 'excl', 'mid', 'strict', 'v1', 'between', 'cut'],
        ['eq', 'gap', 'late', 'excl', 'mid', 'strict'],
      ]);
      await expectReached(funnel(['a', 'c'], { order: 'strict' }), [STARTED, ['eq']]);
    });

    it('any order: distinct steps within the window from a start in the range', async () => {
      await expectReached(funnel(['c', 'b', 'a'], { order: 'any' }), [
        STARTED,
        ['eq', 'gap', 'late', 'excl', 'mid', 'strict', 'v1', 'between', 'cut', 'edge'],
        ['eq', 'gap', 'late', 'excl', 'mid', 'strict'],
      ]);
      // Steps have no window of their own in any order: the query model refuses one.
      expect(() => parse(funnel(['c', 'b@1m', 'a@1m'], { order: 'any' }))).toThrow(/steps\[1\]\.window/);
    });

    it('starts in the range, finishes up to a window after it', async () => {
      const input = funnel(['a', 'b'], { range: { from: '2026-03-01T19:00:00Z', to: '2026-03-02T00:00:00Z' } });
      await expectReached(input, [
        ['v1', 'between', 'cut', 'edge'],
        ['v1', 'between', 'cut', 'edge'],
      ]);
    });
  });

  it('breakdown: top values by users entering, the rest as "other"', async () => {
    const input = {
      kind: 'funnel',
      range: { from: '2026-03-09', to: '2026-03-30' },
      window: '1d',
      steps: [{ event: 'view' }, { event: 'click' }],
      breakdown: { property: 'properties.plan', limit: 2 },
    };
    const { result, expected } = await both(store, data.stored, data.tenant, input, { now: data.to });
    expect(result.rows).toEqual(expected);
    expect(result.rows.map((r) => r[2])).toContain('other');
    expect(result.meta.truncated).toBe(true);
    expect(new Set(result.rows.map((r) => r[2])).size).toBe(3);
  });

  it('the decoy tenant sees only its own rows; a tenant without events gets zeros', async () => {
    const input = {
      kind: 'funnel',
      range: { from: '2026-03-09', to: '2026-03-30' },
      window: '1d',
      steps: [{ event: 'signup' }, { event: 'view' }, { event: 'purchase' }],
    };
    const mine = await both(store, data.stored, data.tenant, input, { now: data.to });
    const decoy = await both(store, data.stored, data.otherTenant, input, { now: data.to });
    expect(mine.result.rows).toEqual(mine.expected);
    expect(decoy.result.rows).toEqual(decoy.expected);
    expect((decoy.expected[0]?.[2] as number) > 0).toBe(true);
    expect(decoy.result.rows).not.toEqual(mine.result.rows);
    const nobody = await store.query('nobody', parse(input), { now: data.to });
    expect(nobody.rows).toEqual([
      [1, 'signup', 0, 0, 0, null, null, null, null],
      [2, 'view', 0, 0, 0, null, null, null, null],
      [3, 'purchase', 0, 0, 0, null, null, null, null],
    ]);
  });

  it('hostile strings in every string field are data', async () => {
    const tenant = `hostile_${engine}`;
    const rows = HOSTILE.flatMap((h, i) => [
      ev(tenant, h, h, `2026-03-0${1 + (i % 5)}T10:00:00Z`, { [h]: h, note: `x${h}x` }),
      ev(tenant, `${h}2`, h, `2026-03-0${1 + (i % 5)}T10:05:00Z`, { [h]: h, note: `x${h}x` }),
    ]);
    await store.insertEvents(rows);
    for (const h of HOSTILE) {
      const input = {
        kind: 'funnel',
        range: { from: '2026-03-01', to: '2026-03-08' },
        window: '1h',
        steps: [
          { event: h, filters: [{ property: `properties.${h}`, op: 'eq', value: h }] },
          {
            event: `${h}2`,
            filters: [
              { property: 'properties.note', op: 'contains', value: h },
              { property: `context.${h}`, op: 'is_not_set' },
              { property: 'userId', op: 'in', value: [h, 'other'] },
            ],
          },
        ],
        exclusions: [{ event: h, filters: [{ property: `properties.${h}`, op: 'neq', value: h }], from: 0, to: 1 }],
        breakdown: { property: `properties.${h}` },
      };
      const { result, expected } = await both(store, rows, tenant, input, { now: Date.parse('2026-04-01T00:00:00Z') });
      expect(result.rows, h).toEqual(expected);
      expect(result.rows.find((r) => r[2] === h)?.[4], h).toBe(1);
    }
    const [count] = await store.client.query<{ n: number }>(
      `SELECT count() AS n FROM ${store.database}.events WHERE tenant_id = 'hostile_${engine}'`,
    );
    expect(Number(count?.n)).toBe(rows.length);
  });

  it('answers the documented columns, explains its source and cuts at maxRows', async () => {
    const input = {
      kind: 'funnel',
      range: { from: '2026-03-09', to: '2026-03-30' },
      tz: 'Europe/Berlin',
      window: '1d',
      steps: [{ event: 'signup' }, { event: 'view' }, { event: 'click' }],
      breakdown: { property: 'properties.channel', limit: 10 },
      explain: true,
    };
    const { result, expected } = await both(store, data.stored, data.tenant, input, { now: data.to });
    expect(result.columns).toEqual([
      { name: 'step', type: 'number' },
      { name: 'event', type: 'string' },
      { name: 'breakdown', type: 'string' },
      { name: 'entered', type: 'number' },
      { name: 'converted', type: 'number' },
      { name: 'dropped', type: 'number' },
      { name: 'conversion_from_first', type: 'number' },
      { name: 'conversion_from_previous', type: 'number' },
      { name: 'median_seconds', type: 'number' },
      { name: 'p90_seconds', type: 'number' },
    ]);
    expect(result.rows).toEqual(expected);
    expect(result.rows.length).toBe(12);
    expect(result.meta.truncated).toBe(false);
    expect(result.meta.source).toBe('detail');
    expect(result.meta.explain).toEqual({ source: 'detail', reason: expect.stringContaining('detail rows') });
    expect(result.meta.explain?.reason).toContain("funnels follow each user's events");
    const cut = await store.query(data.tenant, parse(input), { now: data.to, maxRows: 5 });
    expect(cut.rows).toEqual(expected.slice(0, 5));
    expect(cut.meta.truncated).toBe(true);
    const plain = await store.query(data.tenant, parse({ ...input, breakdown: undefined }), { now: data.to });
    expect(plain.columns.map((c) => c.name)).not.toContain('breakdown');
  });

  it('refuses exclusions in a funnel of any order (the query model does; the runner too, for a hand-made query)', async () => {
    const input = {
      kind: 'funnel',
      range: { from: '2026-03-09', to: '2026-03-30' },
      order: 'any',
      steps: [{ event: 'signup' }, { event: 'view' }],
      exclusions: [{ event: 'churn' }],
    };
    expect(() => parse(input)).toThrow(/exclusions/);
    const made = {
      ...parse({ ...input, exclusions: undefined }),
      exclusions: [{ event: 'churn', filters: [], from: 0, to: 1 }],
    };
    await expect(store.query(data.tenant, made, { now: data.to })).rejects.toMatchObject({ code: 'TALLY_BAD_QUERY' });
  });
});
