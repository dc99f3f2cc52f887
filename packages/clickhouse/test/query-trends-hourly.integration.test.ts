/**
 * Trends from the hourly rollup of sealed days (src/rollup.ts, src/query/trends-hourly.ts) on both
 * ClickHouse engines, against the brute-force evaluator: random plain-count queries over days of which
 * some are sealed and some not; late events into a sealed day, the same batch again, a dirty mark left
 * without its insert (a process killed in between), a build for other dimensions, and a lifecycle
 * delete. Every answer equals the evaluator's over the distinct events stored.
 */
import { type EventRow, resolveRange, type TrendsQuery, uuidv7 } from '@tally/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trendsOracle } from '../../store/test/support/oracle/trends.js';
import {
  EVENT_NAMES,
  type EventData,
  loadEvents,
  pick,
  type Rand,
  seeded,
  parsedQuery,
} from '../../store/test/support/query-data.js';
import { DAY_MS, dayStates, markDirty } from '../src/rollup.js';
import { type ClickHouseStore, createClickHouseStore } from '../src/store.js';
import { engines, openStore } from './support/engines.js';

type Cell = string | number | boolean | null;

const HOUR = 3_600_000;
const FROM = Date.parse('2026-03-01T00:00:00Z');
const TO = Date.parse('2026-03-30T00:00:00Z');
const NOW = TO + 2 * HOUR;
const DIMENSIONS = {
  signup: ['plan', 'channel', 'beta'],
  view: ['plan', 'channel', 'beta', 'amount'],
  click: ['channel', 'plan'],
  purchase: ['plan', 'channel'],
};
const BREAKDOWNS = [
  'properties.plan',
  'properties.channel',
  'properties.beta',
  'properties.amount',
  'properties.meta.source',
  'userId',
];

/** A plain-count trends query: mostly shapes the rollup answers, some it refuses. */
function randomQuery(rand: Rand): Record<string, unknown> {
  const n = rand() < 0.6 ? 1 : rand() < 0.8 ? 2 : 3;
  const series = Array.from({ length: n }, () => ({
    event: rand() < 0.08 ? null : rand() < 0.05 ? 'never_sent' : pick(rand, EVENT_NAMES),
  }));
  const interval = pick(rand, ['hour', 'day', 'day', 'week', 'month'] as const);
  const days = 1 + Math.floor(rand() * (interval === 'hour' ? 4 : 28));
  const start = FROM + Math.floor(rand() * (30 - days)) * DAY_MS;
  const r = rand();
  const range =
    r < 0.5
      ? {
          from: new Date(start).toISOString().slice(0, 10),
          to: new Date(start + days * DAY_MS).toISOString().slice(0, 10),
        }
      : r < 0.85
        ? // Whole hours, not days: partial first and last days.
          {
            from: new Date(start + Math.floor(rand() * 24) * HOUR).toISOString(),
            to: new Date(start + days * DAY_MS + Math.floor(rand() * 24) * HOUR).toISOString(),
          }
        : { last: `${days}d` };
  const q: Record<string, unknown> = {
    kind: 'trends',
    series,
    interval,
    tz: pick(rand, ['UTC', 'UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata']),
    range,
  };
  if (rand() < 0.55) q.breakdown = { property: pick(rand, BREAKDOWNS), limit: 1 + Math.floor(rand() * 4) };
  if (rand() < 0.3) q.compare = 'previous_period';
  return q;
}

describe.each(engines)('trends from the hourly rollup on %s', (engine) => {
  let store: ClickHouseStore;
  let cleanup: () => Promise<void>;
  let data: EventData;

  beforeAll(async () => {
    ({ store, cleanup } = await openStore(engine, { dimensions: DIMENSIONS }));
    data = await loadEvents(store, { seed: 23, events: 2500, from: FROM, to: TO + 2 * HOUR });
  }, 180_000);
  afterAll(async () => cleanup?.(), 300_000);

  const run = async (q: TrendsQuery, on: ClickHouseStore = store) => {
    const result = await on.query(data.tenant, { ...q, explain: true }, { now: NOW });
    const expected = trendsOracle(data.stored, data.tenant, q, resolveRange(q.range, q.tz, NOW));
    return { result, expected };
  };

  /** The engine's rows equal the evaluator's, within 1e-9 where numbers are formula results. */
  function same(actual: Cell[][], expected: Cell[][], what: string): void {
    const near = (a: Cell, b: Cell) =>
      typeof a === 'number' && typeof b === 'number' ? Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)) : a === b;
    const at = actual.findIndex((row, i) => !expected[i] || row.some((c, j) => !near(c, expected[i]![j] as Cell)));
    if (at !== -1 || actual.length !== expected.length) {
      expect.fail(
        `${what}\nrows ${actual.length} vs ${expected.length} at ${at}: ${JSON.stringify(actual[at])} vs ${JSON.stringify(expected[at])}`,
      );
    }
  }

  it('seals every day that is over, and only those', async () => {
    const sealed = await store.sealRollups({ now: NOW });
    // 2026-03-01 … 2026-03-29, for the tenant and the decoy; 2026-03-30 ended after NOW.
    expect(sealed.built).toBe(58);
    expect(sealed.rows).toBeGreaterThan(0);
    const states = await dayStates(store.client, store.database, {
      tenantId: data.tenant,
      fromDay: FROM / DAY_MS,
      toDay: TO / DAY_MS,
    });
    expect(states.map((s) => s.day).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 29 }, (_, i) => FROM / DAY_MS + i),
    );
    expect(states.every((s) => s.build > 0)).toBe(true);
    // Nothing more to do the second time.
    expect((await store.sealRollups({ now: NOW })).built).toBe(0);
  }, 120_000);

  it('answers random count queries as the evaluator does, from the rollup where the shape allows', async () => {
    const seed = 2300;
    const rand = seeded(seed);
    const sources = { rollup: 0, detail: 0, mixed: 0, breakdown: 0 };
    for (let i = 0; i < 80; i++) {
      const input = randomQuery(rand);
      const q = parsedQuery<TrendsQuery>(input);
      const { result, expected } = await run(q);
      const what = `seed ${seed} query ${i}: ${JSON.stringify(input)}\n${result.meta.explain?.reason}`;
      expect(
        result.columns.map((c) => c.name),
        what,
      ).toEqual(expected.columns);
      same(result.rows as Cell[][], expected.rows as Cell[][], what);
      expect(result.meta.truncated, what).toBe(expected.other);
      sources[result.meta.source]++;
      if (result.meta.source === 'rollup' && q.breakdown) sources.breakdown++;
      if (result.meta.explain?.reason.includes('the rest measured from the detail rows')) sources.mixed++;
    }
    for (const [what, n] of Object.entries(sources))
      expect(n, `${what}: ${JSON.stringify(sources)}`).toBeGreaterThan(4);
  }, 300_000);

  const late = (ts: number, plan: string): EventRow => ({
    id: uuidv7(ts),
    tenantId: data.tenant,
    name: 'view',
    userId: 'u_late',
    properties: { plan, channel: 'web' },
    context: {},
    timestamp: new Date(ts).toISOString(),
    receivedAt: new Date().toISOString(),
  });
  const march10 = parsedQuery<TrendsQuery>({
    kind: 'trends',
    series: [{ event: 'view' }],
    interval: 'hour',
    range: { from: '2026-03-09', to: '2026-03-12' },
    breakdown: { property: 'properties.plan', limit: 5 },
  });

  it('a late event into a sealed day marks it dirty and counts at once; the same batch again counts once', async () => {
    const day = Date.parse('2026-03-10T00:00:00Z') / DAY_MS;
    const batch = [
      late(Date.parse('2026-03-10T13:20:00Z'), 'enterprise'),
      late(Date.parse('2026-03-10T13:40:00Z'), 'free'),
    ];
    expect(await store.insertEvents(batch)).toHaveLength(2);
    data.stored.push(...batch);
    const [state] = await dayStates(store.client, store.database, { pairs: [{ tenantId: data.tenant, day }] });
    expect(state?.build).toBe(0);
    const { result, expected } = await run(march10);
    same(result.rows as Cell[][], expected.rows as Cell[][], 'after the late events');
    expect(result.meta.explain?.reason).toContain('2 of 3 days');
    expect(result.rows.some((r) => r[2] === 'enterprise' && r[3] === 1)).toBe(true);

    // Resent (a redelivery): nothing inserted, nothing marked; sealed again, then resent again.
    expect(await store.insertEvents(batch)).toEqual([]);
    expect((await store.sealRollups({ now: NOW })).built).toBe(1);
    expect(await store.insertEvents(batch)).toEqual([]);
    const [after] = await dayStates(store.client, store.database, { pairs: [{ tenantId: data.tenant, day }] });
    expect(after?.build).toBeGreaterThan(0);
    const again = await run(march10);
    same(again.result.rows as Cell[][], again.expected.rows as Cell[][], 'sealed again');
    expect(again.result.meta.explain?.reason).toContain('3 of 3 days');
  }, 120_000);

  it('a dirty mark whose insert never came (a process killed in between) costs a rebuild, not a count', async () => {
    const day = Date.parse('2026-03-11T00:00:00Z') / DAY_MS;
    await markDirty(store.client, store.database, [{ tenantId: data.tenant, day }]);
    const dirty = await run(march10);
    same(dirty.result.rows as Cell[][], dirty.expected.rows as Cell[][], 'dirty');
    expect(dirty.result.meta.explain?.reason).toContain('2 of 3 days');
    expect((await store.sealRollups({ now: NOW })).built).toBe(1);
    const sealed = await run(march10);
    same(sealed.result.rows as Cell[][], sealed.expected.rows as Cell[][], 'rebuilt');
    expect(sealed.result.meta.explain?.reason).toContain('3 of 3 days');
  }, 120_000);

  it('days built for other dimensions are read from the detail rows until rebuilt', async () => {
    // Another process with another catalog: its plan is not a dimension of purchase any more.
    const other = createClickHouseStore({
      client: store.client,
      database: store.database,
      serialize: store.serialize,
      dimensions: { ...DIMENSIONS, purchase: ['channel'], churn: ['plan'] },
    });
    const q = parsedQuery<TrendsQuery>({
      kind: 'trends',
      series: [{ event: 'click' }],
      interval: 'day',
      range: { from: '2026-03-02', to: '2026-03-20' },
      breakdown: { property: 'properties.plan' },
    });
    const stale = await run(q, other);
    same(stale.result.rows as Cell[][], stale.expected.rows as Cell[][], 'other dimensions');
    expect(stale.result.meta.source).toBe('detail');
    const rebuilt = await other.sealRollups({ now: NOW });
    expect(rebuilt.built).toBe(58);
    const fresh = await run(q, other);
    same(fresh.result.rows as Cell[][], fresh.expected.rows as Cell[][], 'rebuilt for the other dimensions');
    expect(fresh.result.meta.source).toBe('rollup');
    // The first store's dimensions now differ from the builds: it reads the detail rows, still exactly.
    const mine = await run(q);
    expect(mine.result.meta.source).toBe('detail');
    same(mine.result.rows as Cell[][], mine.expected.rows as Cell[][], 'first store');
    expect((await store.sealRollups({ now: NOW })).built).toBe(58);
  }, 300_000);
});
