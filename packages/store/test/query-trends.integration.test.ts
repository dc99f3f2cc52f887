/**
 * Trends on every engine against the brute-force evaluator (support/oracle/trends.ts): random queries
 * (seeded; a failure prints the seed and the query) over generated data across the DST changes of Europe
 * (2026-03-29) and North America (2026-03-08), in whole-hour and half-hour zones; the hourly rollup
 * answering exactly as the detail rows do; explain; hostile strings; tenant isolation.
 */
import { type FilterScalar, type PropertyFilter, type Query, resolveRange, type TrendsQuery } from '@tally/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerTrends } from '../src/query/trends.js';
import { planTrends } from '../src/query/trends-plan.js';
import type { Cell, QueryContext, QueryResult } from '../src/query/types.js';
import { type EventRow, rebuildRollups, type Store } from '../src/index.js';
import { trendsOracle } from './support/oracle/trends.js';
import {
  CHANNELS,
  EVENT_NAMES,
  type EventData,
  HOSTILE,
  loadEvents,
  pick,
  PLANS,
  type Rand,
  seeded,
  parsedQuery,
} from './support/query-data.js';
import { engines, openStore } from './support/stores.js';

const DAY = 86_400_000;
const FROM = Date.parse('2026-03-01T00:00:00Z');
const TO = Date.parse('2026-03-30T00:00:00Z');
const TZS = ['UTC', 'Europe/Berlin', 'Asia/Kolkata', 'America/St_Johns'] as const;
const MEASURES = ['count', 'unique_users', 'sum', 'avg', 'min', 'max', 'p50', 'p90', 'p95', 'p99'] as const;
const NUMERIC_PATHS = ['properties.amount', 'properties.amount', 'properties.meta.depth', 'properties.plan'];
/** The first four are rolled-up dimensions (DIMENSIONS). */
const BREAKDOWNS = [
  'properties.plan',
  'properties.channel',
  'properties.beta',
  'properties.amount',
  'properties.meta.source',
  'properties.meta',
  'properties.note',
  'userId',
  'anonymousId',
];

function randomFilter(rand: Rand): PropertyFilter {
  const choices: (() => PropertyFilter)[] = [
    () => ({ property: 'properties.plan', op: 'eq', value: pick(rand, PLANS) }),
    () => ({ property: 'properties.plan', op: 'neq', value: pick(rand, PLANS) }),
    () => ({ property: 'properties.channel', op: 'in', value: [pick(rand, CHANNELS), pick(rand, CHANNELS)] }),
    () => ({ property: 'properties.channel', op: 'nin', value: [pick(rand, CHANNELS)] }),
    () => ({ property: 'properties.note', op: 'contains', value: pick(rand, ['o', '%', "'", 'ü', '_']) }),
    () => ({
      property: 'properties.amount',
      op: pick(rand, ['gt', 'gte', 'lt', 'lte'] as const),
      value: Math.round(rand() * 100),
    }),
    () => ({ property: 'properties.plan', op: pick(rand, ['gt', 'lte'] as const), value: 'pro' }),
    () => ({ property: 'properties.beta', op: pick(rand, ['is_set', 'is_not_set'] as const) }),
    () => ({ property: 'properties.beta', op: 'eq', value: rand() < 0.5 }),
    () => ({ property: 'properties.amount', op: 'eq', value: String(Math.floor(rand() * 100)) as FilterScalar }),
    () => ({ property: 'properties.meta.source', op: 'eq', value: pick(rand, ['ad', 'seo', 'referral']) }),
    () => ({ property: 'context.library.name', op: 'eq', value: 'test' }),
    () => ({ property: 'userId', op: 'in', value: ['u1', 'u2', 'u3', 'u4', 'u5'] }),
    () => ({ property: 'anonymousId', op: 'is_set' }),
  ];
  return pick(rand, choices)();
}

const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

function randomRange(rand: Rand, interval: string): TrendsQuery['range'] {
  const r = rand();
  const maxDays = interval === 'hour' ? 6 : 29;
  if (r < 0.2) return { last: `${1 + Math.floor(rand() * Math.min(maxDays, 14))}d` };
  if (r < 0.3 && interval === 'hour') return { last: `${1 + Math.floor(rand() * 100)}h` };
  const days = 1 + Math.floor(rand() * maxDays);
  const start = FROM + Math.floor(rand() * (29 - days + 1)) * DAY;
  if (r < 0.65) return { from: isoDay(start), to: isoDay(start + days * DAY) };
  // Instants off the hour and off the day: partial first and last buckets.
  const a = start + Math.floor(rand() * 24 * 60) * 60_000;
  const b = Math.min(TO + DAY, a + days * DAY - Math.floor(rand() * 24 * 60) * 60_000);
  return { from: new Date(a).toISOString(), to: new Date(b).toISOString() };
}

/** A random trends query as a user would write it (validated by parseQuery). */
function randomQuery(rand: Rand): unknown {
  const n = rand() < 0.5 ? 1 : rand() < 0.8 ? 2 : 3;
  // Counts without filters often, so that the rollup answers a good share of the queries.
  const plain = rand() < 0.45;
  const series = Array.from({ length: n }, () => {
    const measure = plain ? 'count' : pick(rand, MEASURES);
    const filters = plain ? [] : Array.from({ length: Math.floor(rand() * 3) }, () => randomFilter(rand));
    return {
      // null: all events (each once, whatever its name).
      event: rand() < 0.05 ? 'never_sent' : rand() < 0.08 ? null : pick(rand, EVENT_NAMES),
      measure,
      ...(measure === 'count' || measure === 'unique_users' ? {} : { property: pick(rand, NUMERIC_PATHS) }),
      filters,
    };
  });
  const interval = pick(rand, ['hour', 'day', 'day', 'week', 'month'] as const);
  const q: Record<string, unknown> = {
    kind: 'trends',
    series,
    interval,
    tz: pick(rand, [...TZS, 'UTC', 'Europe/Berlin']),
    range: randomRange(rand, interval),
  };
  if (rand() < 0.4) {
    // Plain counts mostly by a rolled-up dimension (DIMENSIONS), so that event_props_hourly answers some.
    const dimension = plain && rand() < 0.7;
    const property = dimension ? pick(rand, BREAKDOWNS.slice(0, 4)) : pick(rand, BREAKDOWNS);
    q.breakdown = { property, limit: 1 + Math.floor(rand() * 5) };
  }
  if (rand() < 0.3) q.compare = 'previous_period';
  if (n >= 2 && rand() < 0.5)
    q.formula = pick(rand, ['B / A', '(A + B) * 100 / A', 'A - B', '-A + 2.5', 'A / (B - B)']);
  return q;
}

/** Numbers equal within 1e-9 relative (sums, averages and percentiles add up in another order). */
function close(a: Cell, b: Cell): boolean {
  if (typeof a === 'number' && typeof b === 'number')
    return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
  return a === b;
}

function expectRows(actual: Cell[][], expected: Cell[][], what: string): void {
  const first = actual.findIndex((row, i) => {
    const e = expected[i];
    return !e || row.length !== e.length || row.some((c, j) => !close(c, e[j] as Cell));
  });
  if (first !== -1 || actual.length !== expected.length) {
    const at = first === -1 ? Math.min(actual.length, expected.length) : first;
    expect.fail(
      `${what}\nrows ${actual.length} vs ${expected.length}; first difference at row ${at}:\n` +
        `  engine ${JSON.stringify(actual[at])}\n  oracle ${JSON.stringify(expected[at])}`,
    );
  }
}

const NOW = TO;

/**
 * The properties rolled up per value (event_props_hourly): every name's plan, channel, beta and amount
 * (amount has many values: ties in the top N), except that churn has only its channel.
 */
const DIMENSIONS: Record<string, string[]> = Object.fromEntries(
  EVENT_NAMES.map((n) => [n, n === 'churn' ? ['channel'] : ['plan', 'channel', 'beta', 'amount']]),
);
const hasDimension = (q: TrendsQuery) => {
  const key = q.breakdown?.property.replace(/^properties\./, '');
  return key !== undefined && q.series.every((s) => s.event !== null && DIMENSIONS[s.event]?.includes(key));
};

describe.each(engines)('trends: %s', (engine) => {
  let store: Store;
  let dispose: () => Promise<void>;
  let data: EventData;

  beforeAll(async () => {
    ({ store, dispose } = await openStore(engine, undefined, { dimensions: DIMENSIONS }));
    data = await loadEvents(store, { seed: 16, events: 2500, from: FROM, to: TO });
    // The dimensions were registered with the first insert, complete from the next hour of real time;
    // a rebuild from detail makes them complete for all time, as `tally rollups rebuild` does.
    await rebuildRollups(store);
  });
  afterAll(() => dispose());

  const run = (q: Query, tenant = data.tenant, maxRows?: number): Promise<QueryResult> =>
    store.query(tenant, q, { now: NOW, ...(maxRows ? { maxRows } : {}) });

  const oracle = (q: TrendsQuery, tenant = data.tenant) =>
    trendsOracle(data.stored, tenant, q, resolveRange(q.range, q.tz, NOW));

  /** runQuery's context, for answering on a forced source as the tenant. */
  const withContext = <T>(q: TrendsQuery, fn: (ctx: QueryContext) => Promise<T>): Promise<T> =>
    store.asTenant(data.tenant, (sql) =>
      fn({
        sql,
        tenantId: data.tenant,
        tz: q.tz,
        ...resolveRange(q.range, q.tz, NOW),
        now: NOW,
        maxRows: 10_000,
        dimensions: DIMENSIONS,
      }),
    );

  it('answers random queries as the brute-force evaluator does', async () => {
    const seed = 1600;
    const rand = seeded(seed);
    const sources = { hourly: 0, dimension: 0, detail: 0 };
    for (let i = 0; i < 100; i++) {
      const input = randomQuery(rand);
      const q = parsedQuery<TrendsQuery>({ ...(input as object), explain: true });
      const result = await run(q);
      const expected = oracle(q);
      const what = `seed ${seed} query ${i}: ${JSON.stringify(input)}`;
      expect(
        result.columns.map((c) => c.name),
        what,
      ).toEqual(expected.columns);
      expectRows(result.rows, expected.rows, what);
      expect(result.meta.truncated, what).toBe(expected.other);
      const perValue = result.meta.explain?.reason.includes('per-value rollup');
      sources[result.meta.source === 'detail' ? 'detail' : perValue ? 'dimension' : 'hourly']++;
    }
    // Every source was exercised by the random queries.
    expect(sources.hourly, JSON.stringify(sources)).toBeGreaterThan(5);
    expect(sources.dimension, JSON.stringify(sources)).toBeGreaterThan(3);
    expect(sources.detail, JSON.stringify(sources)).toBeGreaterThan(30);
  });

  it('the rollups answer exactly as the detail rows, in whole-hour zones across DST', async () => {
    const rand = seeded(77);
    const compared = { hourly: 0, dimension: 0 };
    for (let i = 0; i < 50; i++) {
      const n = 1 + Math.floor(rand() * 3);
      const interval = pick(rand, ['hour', 'day', 'week', 'month'] as const);
      const q = parsedQuery<TrendsQuery>({
        kind: 'trends',
        series: Array.from({ length: n }, () => ({ event: pick(rand, EVENT_NAMES) })),
        interval,
        tz: pick(rand, ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Tokyo']),
        range: randomRange(rand, interval),
        ...(rand() < 0.4 ? { compare: 'previous_period' } : {}),
        ...(n >= 2 && rand() < 0.5 ? { formula: 'B / A * 100' } : {}),
        ...(rand() < 0.5
          ? {
              breakdown: {
                property: `properties.${pick(rand, ['plan', 'channel', 'beta', 'amount'])}`,
                limit: 1 + Math.floor(rand() * 4),
              },
            }
          : {}),
      });
      const { rollup, detail, plan } = await withContext(q, async (ctx) => {
        const plan = await planTrends(q, ctx);
        return {
          plan,
          rollup: await answerTrends(q, ctx, plan),
          detail: await answerTrends(q, ctx, { source: 'detail', reason: 'forced' }),
        };
      });
      const what = `rollup ${i}: ${JSON.stringify(q)} (${plan.reason})`;
      // Ranges off the UTC hour must go to detail; whole-day ranges in these zones must not, unless a
      // breakdown is not on a dimension of every series.
      const whole = 'from' in q.range && q.range.from.length === 10;
      if (whole && (!q.breakdown || hasDimension(q))) expect(plan.source, what).toBe('rollup');
      if (plan.source === 'rollup') compared[plan.table === 'event_props_hourly' ? 'dimension' : 'hourly']++;
      expect(rollup.rows, what).toEqual(detail.rows);
      expect(rollup.truncated, what).toBe(detail.truncated);
    }
    expect(compared.hourly, JSON.stringify(compared)).toBeGreaterThan(8);
    expect(compared.dimension, JSON.stringify(compared)).toBeGreaterThan(5);
  });

  it('explain says the source and why', async () => {
    const base = { kind: 'trends', range: { from: '2026-03-20', to: '2026-03-30' }, explain: true };
    const counts = await run(parsedQuery<TrendsQuery>({ ...base, series: [{ event: 'view' }], tz: 'Europe/Berlin' }));
    expect(counts.meta.source).toBe('rollup');
    expect(counts.meta.explain).toEqual({
      source: 'rollup',
      reason: 'counts by day in Europe/Berlin, every bucket whole UTC hours: summed from the hourly rollup',
    });
    const kolkata = await run(parsedQuery<TrendsQuery>({ ...base, series: [{ event: 'view' }], tz: 'Asia/Kolkata' }));
    expect(kolkata.meta.explain?.source).toBe('detail');
    expect(kolkata.meta.explain?.reason).toMatch(/^the range does not start and end on whole UTC hours/);
    const kolkataUtcRange = await run(
      parsedQuery<TrendsQuery>({
        ...base,
        range: { from: '2026-03-20T00:00:00Z', to: '2026-03-30T00:00:00Z' },
        series: [{ event: 'view' }],
        tz: 'Asia/Kolkata',
      }),
    );
    expect(kolkataUtcRange.meta.explain?.reason).toBe(
      'day buckets in Asia/Kolkata start off the UTC hour (2026-03-20T18:30:00.000Z), which the hourly rollups cannot split: read from the detail rows',
    );
    const filtered = await run(
      parsedQuery<TrendsQuery>({
        ...base,
        series: [
          { event: 'view' },
          { event: 'click', filters: [{ property: 'properties.plan', op: 'eq', value: 'pro' }] },
        ],
      }),
    );
    expect(filtered.meta.explain).toEqual({
      source: 'detail',
      reason: 'a filter on properties.plan (series B) needs the detail rows',
    });
    const users = await run(
      parsedQuery<TrendsQuery>({ ...base, series: [{ event: 'view', measure: 'unique_users' }] }),
    );
    expect(users.meta.explain?.reason).toBe(
      'series A measures unique_users, which the hourly rollups do not hold: read from the detail rows',
    );
    const plan = (series: unknown[], range = base.range) =>
      run(parsedQuery<TrendsQuery>({ ...base, range, series, breakdown: { property: 'properties.plan' } }));
    expect((await plan([{ event: null }])).meta.explain).toEqual({
      source: 'detail',
      reason:
        "a breakdown of all events by properties.plan needs the detail rows: the per-value rollup holds the catalog's declared events only",
    });
    // All events counted from the hourly rollup, every name summed: the same as from detail.
    const all = parsedQuery<TrendsQuery>({
      ...base,
      series: [{ event: null }, { event: 'view' }],
      formula: 'B / A',
    }) as TrendsQuery;
    const { planned, detail } = await withContext(all, async (ctx) => ({
      planned: await answerTrends(all, ctx, await planTrends(all, ctx)),
      detail: await answerTrends(all, ctx, { source: 'detail', reason: 'forced' }),
    }));
    expect(planned.source).toBe('rollup');
    expect(planned.rows.length).toBeGreaterThan(0);
    expect(planned.rows).toEqual(detail.rows);
    expect((await plan([{ event: 'view' }, { event: 'churn' }])).meta.explain).toEqual({
      source: 'detail',
      reason: 'a breakdown by properties.plan needs the detail rows: it is not a rolled-up dimension of churn',
    });
    expect((await plan([{ event: 'view' }])).meta.explain).toEqual({
      source: 'rollup',
      reason:
        'counts by day in UTC by properties.plan, a rolled-up dimension complete over the range: summed from the hourly per-value rollup',
    });
    // A dimension complete only from an hour after the range starts: the detail rows answer.
    await store.sql.query(
      `UPDATE rollup_dimensions SET complete_from = '2026-03-20T01:00:00Z' WHERE name = 'view' AND key = 'plan'`,
    );
    try {
      expect((await plan([{ event: 'view' }])).meta.explain).toEqual({
        source: 'detail',
        reason:
          'the rollup of properties.plan for view is complete only from 2026-03-20T01:00:00.000Z, after the range starts: read from the detail rows',
      });
      const later = await plan([{ event: 'view' }], { from: '2026-03-20T01:00:00Z', to: '2026-03-30' });
      expect(later.meta.explain?.source).toBe('rollup');
    } finally {
      await store.sql.query(
        `UPDATE rollup_dimensions SET complete_from = '-infinity' WHERE name = 'view' AND key = 'plan'`,
      );
    }
  });

  it('the answer has the documented columns, every bucket, and is cut at maxRows', async () => {
    const q = parsedQuery<TrendsQuery>({
      kind: 'trends',
      series: [{ event: 'view' }, { event: 'never_sent', measure: 'avg', property: 'properties.amount' }],
      breakdown: { property: 'properties.plan', limit: 2 },
      compare: 'previous_period',
      formula: 'A / B',
      range: { from: '2026-03-10', to: '2026-03-17' },
    });
    const result = await run(q);
    expect(result.columns).toEqual([
      { name: 'time', type: 'time' },
      { name: 'series', type: 'string' },
      { name: 'breakdown', type: 'string' },
      { name: 'value', type: 'number' },
      { name: 'previous', type: 'number' },
    ]);
    // 7 days × (A, B, formula) × (2 plans + other).
    expect(result.rows).toHaveLength(7 * 3 * 3);
    expect(new Set(result.rows.map((r) => r[0]))).toEqual(
      new Set(
        Array.from({ length: 7 }, (_, i) => new Date(Date.parse('2026-03-10T00:00:00Z') + i * DAY).toISOString()),
      ),
    );
    // A series of an event never sent: its average is null in every bucket, and so is A / B.
    expect(result.rows.filter((r) => r[1] !== 'A').every((r) => r[3] === null && r[4] === null)).toBe(true);
    expect(result.rows.filter((r) => r[1] === 'A').every((r) => typeof r[3] === 'number')).toBe(true);
    expect(result.meta.truncated).toBe(true);

    const cut = await run(
      parsedQuery<TrendsQuery>({ kind: 'trends', series: [{ event: 'view' }], range: { last: '7d' } }),
      data.tenant,
      3,
    );
    expect(cut.rows).toHaveLength(3);
    expect(cut.meta.truncated).toBe(true);
    const whole = await run(
      parsedQuery<TrendsQuery>({ kind: 'trends', series: [{ event: 'view' }], range: { last: '7d' } }),
    );
    expect(whole.rows).toHaveLength(7);
    expect(whole.meta.truncated).toBe(false);
  });

  it("never counts another tenant's rows, from either source", async () => {
    // A name only the decoy tenant sends.
    const decoy: EventRow = {
      id: '01900000-0000-7000-8000-00000000d3c0',
      tenantId: data.otherTenant,
      name: 'decoy_only',
      userId: 'u1',
      properties: { plan: 'pro', amount: 5 },
      context: {},
      timestamp: '2026-03-15T12:00:00.000Z',
      receivedAt: '2026-03-15T12:00:01.000Z',
    };
    await store.insertEvents([decoy]);
    data.stored.push(decoy);
    const range = { from: '2026-03-14', to: '2026-03-17' };
    for (const [series, value] of [
      [[{ event: 'decoy_only' }], 1],
      [[{ event: 'decoy_only', measure: 'unique_users' }], 1],
      [[{ event: 'decoy_only', measure: 'sum', property: 'properties.amount' }], 5],
    ] as const) {
      const q = parsedQuery<TrendsQuery>({ kind: 'trends', series, range, breakdown: { property: 'properties.plan' } });
      const mine = await run(q);
      expect(mine.rows).toEqual([]);
      const plain = await run(parsedQuery<TrendsQuery>({ kind: 'trends', series, range }));
      expect(plain.rows.map((r) => r[2])).toEqual([0, 0, 0]);
      const theirs = await run(parsedQuery<TrendsQuery>({ kind: 'trends', series, range }), data.otherTenant);
      expect(theirs.rows.map((r) => r[2])).toEqual([0, value, 0]);
    }
    // The whole decoy tenant, on random queries, as the evaluator sees it.
    const rand = seeded(5);
    for (let i = 0; i < 8; i++) {
      const q = parsedQuery<TrendsQuery>(randomQuery(rand));
      expectRows((await run(q, data.otherTenant)).rows, oracle(q, data.otherTenant).rows, JSON.stringify(q));
    }
  });

  it('hostile strings in every field are data', async () => {
    const [before] = await store.sql.query<{ n: string }>('SELECT count(*) AS n FROM events');
    const hostileRow = {
      tenantId: data.tenant,
      userId: HOSTILE[0],
      context: {},
      timestamp: '2026-03-15T12:00:00.000Z',
      receivedAt: '2026-03-15T12:00:01.000Z',
    };
    // Events whose names, keys and values are the hostile strings themselves: found as data.
    const hostile: EventRow[] = HOSTILE.map((h, i) => ({
      ...hostileRow,
      id: `01900000-0000-7000-8000-0000000${String(i).padStart(5, '0')}`,
      name: h,
      properties: { [h]: h, amount: i },
    }));
    await store.insertEvents(hostile);
    data.stored.push(...hostile);
    for (const h of HOSTILE) {
      const inputs = [
        { series: [{ event: h }], breakdown: { property: `properties.${h}` } },
        { series: [{ event: h, filters: [{ property: `properties.${h}`, op: 'eq', value: h }] }] },
        { series: [{ event: h, filters: [{ property: `properties.${h}`, op: 'contains', value: h }] }] },
        { series: [{ event: h, filters: [{ property: `properties.${h}`, op: 'in', value: [h, 'x'] }] }] },
        { series: [{ event: h, filters: [{ property: 'userId', op: 'gte', value: h }] }] },
        { series: [{ event: h, measure: 'p90', property: `properties.${h}` }], breakdown: { property: 'userId' } },
        { series: [{ event: 'view', filters: [{ property: `context.${h}`, op: 'neq', value: h }] }] },
      ];
      for (const input of inputs) {
        const q = parsedQuery<TrendsQuery>({
          kind: 'trends',
          range: { from: '2026-03-14', to: '2026-03-17' },
          ...input,
        });
        expectRows((await run(q)).rows, oracle(q).rows, JSON.stringify(q));
      }
    }
    const broken = await run(
      parsedQuery<TrendsQuery>({
        kind: 'trends',
        series: [{ event: HOSTILE[0] }],
        breakdown: { property: `properties.${HOSTILE[0]}` },
        range: { from: '2026-03-15', to: '2026-03-16' },
      }),
    );
    expect(broken.rows).toEqual([['2026-03-15T00:00:00.000Z', 'A', HOSTILE[0], 1]]);
    // Event names that are members of every JavaScript object are names like any other.
    for (const name of ['constructor', '__proto__', 'toString']) {
      const q = parsedQuery<TrendsQuery>({
        kind: 'trends',
        series: [{ event: name }],
        breakdown: { property: 'properties.plan' },
        range: { from: '2026-03-14', to: '2026-03-17' },
        explain: true,
      });
      const result = await run(q);
      expect(result.rows).toEqual([]);
      expect(result.meta.explain?.reason).toBe(
        `a breakdown by properties.plan needs the detail rows: it is not a rolled-up dimension of ${name}`,
      );
    }
    const [after] = await store.sql.query<{ n: string }>('SELECT count(*) AS n FROM events');
    expect(Number(after?.n)).toBe(Number(before?.n) + HOSTILE.length);
  });
});
