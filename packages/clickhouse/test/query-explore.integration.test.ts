/**
 * Explore on both ClickHouse engines (Debian's 18.16 server and chDB's current engine), against the
 * brute-force evaluator the Postgres engine answers to (store/test/support/oracle/explore.ts) over
 * generated events: event names with counts and last seen over whole hours, partial hours and spans
 * shorter than an hour; property keys of a sample that is cut (more events than the sample holds), with
 * events of one millisecond at the cut; values of every JSON type, null included; hostile names, keys and
 * tenants as data; tenant isolation; explain.
 */
import { type EventRow, type ExploreQuery, parseQuery, resolveRange, uuidv7 } from '@tally/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  exploreEventsOracle,
  explorePropertiesOracle,
  SAMPLE,
  sampleOf,
} from '../../store/test/support/oracle/explore.js';
import {
  type EventData,
  EVENT_NAMES,
  HOSTILE,
  loadEvents,
  pick,
  type Rand,
  seeded,
} from '../../store/test/support/query-data.js';
import type { ClickHouseStore } from '../src/store.js';
import { engines, openStore } from './support/engines.js';

const HOUR = 3_600_000;

function parse(input: Record<string, unknown>): ExploreQuery {
  const parsed = parseQuery({ kind: 'explore', ...input });
  if (!parsed.ok) throw parsed.error;
  return parsed.query as ExploreQuery;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** A range inside the data: whole hours, cut hours, or less than an hour. */
function randomRange(rand: Rand, data: EventData): { from: string; to: string } {
  const hours = (data.to - data.from) / HOUR;
  const shape = rand();
  const from = data.from + Math.floor(rand() * (hours - 2)) * HOUR;
  if (shape < 0.2) {
    const start = from + Math.floor(rand() * HOUR);
    return { from: iso(start), to: iso(start + 1 + Math.floor(rand() * (HOUR - 1))) };
  }
  const to = Math.min(data.to, from + (1 + Math.floor(rand() * hours)) * HOUR);
  if (shape < 0.6) return { from: iso(from), to: iso(to) };
  return {
    from: iso(from + Math.floor(rand() * HOUR)),
    to: iso(Math.max(from + HOUR, to - Math.floor(rand() * HOUR))),
  };
}

describe.each(engines)('explore on %s', (engine) => {
  let store: ClickHouseStore;
  let cleanup: () => Promise<void>;
  let data: EventData;
  let rows: EventRow[];

  const frameOf = (q: ExploreQuery, tenant = data.tenant) => ({ tenant, ...resolveRange(q.range, q.tz, data.to) });
  const run = (q: ExploreQuery, tenant = data.tenant) => store.query(tenant, q, { now: data.to });
  const whole = () => ({ from: iso(data.from), to: iso(data.to) });

  beforeAll(async () => {
    ({ store, cleanup } = await openStore(engine));
    // More of the tenant's events than the sample holds, so that the sample is cut.
    data = await loadEvents(store, { seed: 33, events: 8000 });
    // Names and property keys that look like SQL, and property values of every JSON type.
    const extra: EventRow[] = HOSTILE.map((s, i) => {
      const ts = data.from + (i + 1) * 13 * HOUR + 5;
      return {
        id: uuidv7(ts),
        tenantId: data.tenant,
        name: s,
        userId: 'u1',
        properties: { [s]: s, list: [1, 2], nothing: null, nested: { [s]: 1 }, n: i, yes: i % 2 === 0 },
        context: {},
        timestamp: iso(ts),
        receivedAt: iso(ts + 1000),
      };
    });
    // A burst in the last ten minutes: a range ending half an hour earlier must not count it towards
    // its sample (the rollup's last hour holds it).
    const burst: EventRow[] = Array.from({ length: 300 }, (_, i) => {
      const ts = data.to - 600_000 + i;
      return {
        id: uuidv7(ts),
        tenantId: data.tenant,
        name: 'burst',
        properties: { b: i % 3 },
        context: {},
        timestamp: iso(ts),
        receivedAt: iso(ts + 1000),
      };
    });
    extra.push(...burst);
    // Events of one millisecond where the whole range's sample ends, each with its own value: which of
    // them the sample keeps (by id, newest first) shows in the top values.
    const recent = [...data.stored, ...extra]
      .filter((r) => r.tenantId === data.tenant)
      .map((r) => Date.parse(r.timestamp))
      .sort((a, b) => b - a);
    const edge = recent[SAMPLE - 10] as number;
    const ties: EventRow[] = Array.from({ length: 30 }, (_, i) => ({
      id: uuidv7(edge),
      tenantId: data.tenant,
      name: 'tie',
      properties: { tie: `v${String(i).padStart(2, '0')}` },
      context: {},
      timestamp: iso(edge),
      receivedAt: iso(edge + 1000),
    }));
    await store.insertEvents([...extra, ...ties]);
    rows = [...data.stored, ...extra, ...ties];
  }, 180_000);
  // 18.16 drops a database part by part, and the generated batches span every day: a minute or more.
  afterAll(async () => cleanup?.(), 300_000);

  it('lists event names with count and last seen as the oracle does', async () => {
    const rand = seeded(9);
    for (let i = 0; i < 30; i++) {
      const q = parse({ what: 'events', range: randomRange(rand, data), limit: 1 + Math.floor(rand() * 20) });
      const result = await run(q);
      expect(result.columns.map((c) => c.name)).toEqual(['event', 'count', 'last_seen']);
      expect(result.meta.source).toBe('detail');
      const all = exploreEventsOracle(rows, { ...q, limit: 1000 }, frameOf(q));
      expect(result.rows, JSON.stringify(q.range)).toEqual(all.slice(0, q.limit));
      expect(result.meta.truncated).toBe(all.length > q.limit);
    }
  }, 180_000);

  it("marks each event listed or not when given the catalog's names", async () => {
    const q = parse({ what: 'events', range: { from: '2026-01-01', to: '2026-04-30' }, limit: 1000 });
    const result = await store.query(data.tenant, q, { now: data.to, listedEvents: ['view', 'signup', 'nope'] });
    expect(result.columns.map((c) => c.name)).toEqual(['event', 'count', 'last_seen', 'listed']);
    expect(result.rows.length).toBeGreaterThan(2);
    for (const row of result.rows) expect(row[3]).toBe(row[0] === 'view' || row[0] === 'signup');
  });

  it('lists property keys of the most recent events, with types and top values, as the oracle does', async () => {
    const rand = seeded(10);
    const mine = rows.filter((r) => r.tenantId === data.tenant);
    // The whole range holds more than the sample: the sample is cut there.
    expect(mine.length).toBeGreaterThan(SAMPLE);
    const queries = [
      parse({ what: 'properties', range: whole(), limit: 1000 }),
      parse({ what: 'properties', range: whole(), limit: 7 }),
      parse({ what: 'properties', range: whole(), event: 'view', limit: 1000 }),
      // Nearly all of it, ending inside an hour: that hour's events after the end do not count.
      parse({ what: 'properties', range: { from: iso(data.from), to: iso(data.to - 1_800_000) }, limit: 1000 }),
      parse({ what: 'properties', range: { from: iso(data.from + 600_000), to: iso(data.to - 60_000) }, limit: 1000 }),
    ];
    for (let i = 0; i < 10; i++) {
      const event = rand() < 0.5 ? pick(rand, EVENT_NAMES) : undefined;
      queries.push(
        parse({ what: 'properties', range: randomRange(rand, data), ...(event ? { event } : {}), limit: 1000 }),
      );
    }
    for (const q of queries) {
      const result = await run(q);
      expect(result.columns.map((c) => c.name)).toEqual(['event', 'property', 'type', 'count', 'top_values']);
      const all = explorePropertiesOracle(rows, { ...q, limit: 1000 }, frameOf(q));
      expect(result.rows, JSON.stringify(q)).toEqual(all.slice(0, q.limit));
      expect(result.meta.truncated).toBe(all.length > q.limit);
    }
    // Within the sample: the counts of a key add up to at most the sample's size.
    const full = await run(queries[0] as ExploreQuery);
    const plan = full.rows.filter((r) => r[1] === 'properties.plan').reduce((s, r) => s + (r[3] as number), 0);
    expect(plan).toBeLessThanOrEqual(SAMPLE);
    expect(sampleOf(rows, queries[0] as ExploreQuery, frameOf(queries[0] as ExploreQuery))).toHaveLength(SAMPLE);
  }, 180_000);

  it('finds the sample within the newest day or week when they hold it, as the oracle does', async () => {
    // A tenant whose last day alone holds more than the sample (the engine's first look), and six days
    // of older events behind it, and events of one millisecond where the cut falls. The whole range's
    // sample is in the last day; of clicks only, or ending 15 hours earlier, in the last 8 days; of
    // the last 3 hours, the whole range is the sample.
    const tenant = 'dense';
    const end = data.to;
    const dense: EventRow[] = [];
    const add = (ts: number, i: number) =>
      dense.push({
        id: uuidv7(ts),
        tenantId: tenant,
        name: i % 3 === 0 ? 'view' : 'click',
        properties: { i: i % 7, plan: i % 5 === 0 ? null : `p${i % 4}` },
        context: {},
        timestamp: iso(ts),
        receivedAt: iso(ts + 1000),
      });
    for (let i = 0; i < SAMPLE + 500; i++) add(end - 1 - Math.floor((i * 20 * HOUR) / (SAMPLE + 500)), i);
    for (let i = 0; i < 9000; i++) add(end - 2 * 24 * HOUR - i * 60_000, i);
    const recent = dense.map((r) => Date.parse(r.timestamp)).sort((a, b) => b - a);
    for (let i = 0; i < 20; i++) add(recent[SAMPLE - 5] as number, 1000 + i);
    for (let i = 0; i < dense.length; i += 5000) await store.insertEvents(dense.slice(i, i + 5000));
    const queries = [
      parse({ what: 'properties', range: { from: iso(end - 30 * 24 * HOUR), to: iso(end) }, limit: 1000 }),
      parse({
        what: 'properties',
        range: { from: iso(end - 30 * 24 * HOUR), to: iso(end) },
        event: 'click',
        limit: 1000,
      }),
      parse({ what: 'properties', range: { from: iso(end - 30 * 24 * HOUR), to: iso(end - 15 * HOUR) }, limit: 1000 }),
      parse({ what: 'properties', range: { from: iso(end - 3 * HOUR), to: iso(end) }, limit: 1000 }),
    ];
    for (const q of queries) {
      const result = await run(q, tenant);
      expect(result.rows, JSON.stringify(q)).toEqual(explorePropertiesOracle(dense, q, frameOf(q, tenant)));
    }
  }, 180_000);

  it('treats hostile event names and property keys as data', async () => {
    const events = await run(parse({ what: 'events', range: whole(), limit: 1000 }));
    const names = events.rows.map((r) => r[0]);
    for (const s of HOSTILE) expect(names).toContain(s);
    for (const s of HOSTILE) {
      const q = parse({ what: 'properties', range: whole(), event: s, limit: 1000 });
      const result = await run(q);
      expect(result.rows).toEqual(explorePropertiesOracle(rows, q, frameOf(q)));
      const byProperty = new Map(result.rows.map((r) => [r[1], r]));
      expect(byProperty.get(`properties.${s}`)?.slice(2)).toEqual([
        'string',
        1,
        JSON.stringify([{ value: s, count: 1 }]),
      ]);
      expect(byProperty.get('properties.list')?.slice(2)).toEqual(['array', 1, '[]']);
      expect(byProperty.get('properties.nothing')?.slice(2)).toEqual(['null', 1, '[]']);
      expect(byProperty.get('properties.nested')?.slice(2)).toEqual(['object', 1, '[]']);
      expect(byProperty.get('properties.yes')?.[2]).toBe('boolean');
    }
    const none = await run(parse({ what: 'properties', range: whole(), event: 'no such event', limit: 10 }));
    expect(none.rows).toEqual([]);
  });

  it("never shows another tenant's events", async () => {
    const events = parse({ what: 'events', range: whole(), limit: 1000 });
    expect((await run(events, data.otherTenant)).rows).toEqual(
      exploreEventsOracle(rows, events, frameOf(events, data.otherTenant)),
    );
    const total = (await run(events)).rows.reduce((s, r) => s + (r[1] as number), 0);
    expect(total).toBe(rows.filter((r) => r.tenantId === data.tenant).length);
    const props = parse({ what: 'properties', range: whole(), limit: 1000 });
    expect((await run(props, data.otherTenant)).rows).toEqual(
      explorePropertiesOracle(rows, props, frameOf(props, data.otherTenant)),
    );
    expect((await run(events, 'nobody')).rows).toEqual([]);
    expect((await run(props, 'nobody')).rows).toEqual([]);
    // A hostile tenant id is a tenant like any other, with nothing of anyone else's.
    for (const h of HOSTILE) {
      expect((await run(events, h)).rows).toEqual([]);
      expect((await run(props, h)).rows).toEqual([]);
    }
  });

  it('explains its source', async () => {
    const explain = async (input: Record<string, unknown>) =>
      (await run(parse({ ...input, explain: true }))).meta.explain;
    expect(await explain({ what: 'events', range: whole() })).toEqual({
      source: 'detail',
      reason: 'counts and last_seen from the detail rows, read through the sorting key (tenant, name, time)',
    });
    expect(await explain({ what: 'properties', range: whole() })).toEqual({
      source: 'detail',
      reason: expect.stringMatching(/^sampled: .*10000 most recent events/),
    });
  });
});
