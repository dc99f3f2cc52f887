/**
 * The logs kind on ClickHouse (Debian's 18.16 server and chDB's current engine), against the
 * brute-force evaluator the Postgres engine is held to (store/test/support/oracle/logs.ts): random
 * filters, every page walked with the cursor (each matching log exactly once, in order, also among many
 * logs of the same millisecond whose ids ClickHouse would order otherwise), malformed cursors refused
 * with the field named, a Postgres cursor's microseconds read as a position, URL text matched literally,
 * hostile strings in every filter as data, tenant isolation, and explain.
 */
import {
  ErrorCodes,
  type LogsQuery,
  parseQuery,
  type RequestLogRow,
  resolveRange,
  TallyError,
  uuidv7,
} from '@tally/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouseStore } from '../src/store.js';
import {
  HOSTILE,
  type LogData,
  loadRequestLogs,
  pick,
  ROUTES,
  type Rand,
  seeded,
} from '../../store/test/support/query-data.js';
import { logsOracle } from '../../store/test/support/oracle/logs.js';
import { UNMATCHED } from '../../store/test/support/oracle/routes.js';
import { engines, openStore } from './support/engines.js';
import { withinParse } from './support/floats.js';

const HOUR = 3_600_000;
/** The duration_ms column. */
const DURATION = 6;
const COLUMNS = [
  'id',
  'time',
  'method',
  'route',
  'url',
  'status',
  'duration_ms',
  'user_id',
  'api_key_id',
  'request_bytes',
  'response_bytes',
  'error',
];

function parse(input: Record<string, unknown>): LogsQuery {
  const parsed = parseQuery({ kind: 'logs', ...input });
  if (!parsed.ok) throw parsed.error;
  return parsed.query as LogsQuery;
}

function randomFilters(rand: Rand): Record<string, unknown> {
  const f: Record<string, unknown> = {};
  if (rand() < 0.15) f.status = pick(rand, [200, 301, 404, 500]);
  if (rand() < 0.15) f.statusClass = pick(rand, ['2xx', '3xx', '4xx', '5xx']);
  if (rand() < 0.2) f.method = pick(rand, ['GET', 'POST', 'DELETE']);
  if (rand() < 0.2) f.route = rand() < 0.8 ? pick(rand, ROUTES)[1] : UNMATCHED;
  if (rand() < 0.2) f.userId = `u${Math.floor(rand() * 20)}`;
  if (rand() < 0.2) f.apiKeyId = pick(rand, ['k1', 'k2']);
  if (rand() < 0.25) f.url = pick(rand, ['%', '_', 'b%', 'c_d', "'", '/orders', '?q=a']);
  return f;
}

const b64 = (s: string) => Buffer.from(s).toString('base64url');

describe.each(engines)('logs on ClickHouse (%s)', (engine) => {
  let store: ClickHouseStore;
  let cleanup: () => Promise<void>;
  let data: LogData;
  let rows: RequestLogRow[];
  /** A millisecond many logs share. */
  let crowded: number;

  const frameOf = (q: LogsQuery, tenant = data.tenant) => ({ tenant, ...resolveRange(q.range, q.tz, data.to) });

  /** Rows as the oracle's, duration_ms to the server's float parsing (support/floats.ts). */
  const expectLogs = (actual: readonly unknown[][], expected: unknown[][], message?: string) =>
    expect(withinParse(engine, actual, expected, [DURATION]), message).toEqual(expected);

  /** Every page of `q` from the first, with each answer's checks; the rows walked, in order. */
  async function walk(q: LogsQuery, tenant = data.tenant): Promise<unknown[][]> {
    const seen: unknown[][] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 1000; page++) {
      const result = await store.query(tenant, cursor ? { ...q, cursor } : q, { now: data.to });
      expect(result.columns.map((c) => c.name)).toEqual(COLUMNS);
      expect(result.meta.source).toBe('detail');
      expect(result.rows.length).toBeLessThanOrEqual(q.limit);
      seen.push(...result.rows);
      expect(result.meta.truncated).toBe(result.meta.next !== undefined);
      if (!result.meta.next) return seen;
      // A page with a next one is full.
      expect(result.rows.length).toBe(q.limit);
      cursor = result.meta.next;
    }
    throw new Error('more than 1000 pages');
  }

  beforeAll(async () => {
    ({ store, cleanup } = await openStore(engine));
    data = await loadRequestLogs(store, { seed: 61, logs: 1500 });
    crowded = data.from + 50 * HOUR + 777;
    const log = (ts: number, overrides: Partial<RequestLogRow> = {}): RequestLogRow => ({
      id: uuidv7(ts),
      tenantId: data.tenant,
      method: 'GET',
      route: '/crowded',
      url: '/crowded?n=1',
      status: 200,
      durationMs: 1.5,
      timestamp: new Date(ts).toISOString(),
      receivedAt: new Date(ts + 5).toISOString(),
      ...overrides,
    });
    // Thirty logs of one millisecond (a page boundary falls among them; ids of one millisecond differ in
    // their random halves, which ClickHouse's UUID order compares first), hostile strings stored in every
    // filtered field, and fields that need their exact text back (fractions, quotes, emoji).
    const extra = [
      ...Array.from({ length: 30 }, (_, i) => log(crowded, { status: i % 3 === 0 ? 500 : 200 })),
      ...HOSTILE.map((s, i) =>
        log(data.from + (i + 3) * 11 * HOUR, { route: s, url: `/h?${s}`, userId: s, apiKeyId: s, error: s }),
      ),
      log(data.from + 77 * HOUR, {
        route: '/exact',
        url: '/exact?😀="q"\\',
        durationMs: 0.1 + 0.2,
        requestBytes: 2 ** 40,
        responseBytes: 0,
        error: 'tab\tnew\nline',
      }),
    ];
    await store.insertRequestLogs(extra);
    rows = [...data.stored, ...extra];
  }, 180_000);
  afterAll(async () => cleanup?.());

  it('walks every matching log once, newest first, for random filters and page sizes', async () => {
    const rand = seeded(7);
    let walked = 0;
    for (let i = 0; i < 30; i++) {
      const hours = (data.to - data.from) / HOUR;
      const from = data.from + Math.floor(rand() * hours * 0.7) * HOUR + Math.floor(rand() * HOUR);
      const to = Math.min(data.to, from + Math.floor(1 + rand() * hours * 0.6) * HOUR);
      const q = parse({
        range: { from: new Date(from).toISOString(), to: new Date(to).toISOString() },
        filters: randomFilters(rand),
        limit: pick(rand, [1, 3, 17, 50, 200]),
      });
      const expected = logsOracle(rows, q, frameOf(q));
      // Small page sizes over big answers take many round trips: keep them to the narrow queries.
      if (expected.length / q.limit > 120) continue;
      expectLogs(await walk(q), expected, `seed 7 query ${i}: ${JSON.stringify(q)}`);
      walked++;
    }
    expect(walked).toBeGreaterThan(15);
  });

  it('gives every column back as stored: fractions, big byte counts, quotes, emoji, line breaks', async () => {
    const q = parse({ range: { last: '30d' }, filters: { route: '/exact' } });
    const [row] = (await store.query(data.tenant, q, { now: data.to })).rows;
    expectLogs([row as unknown[]], logsOracle(rows, q, frameOf(q)));
    expect(row?.[6]).toBe(0.1 + 0.2);
    expect(row?.[9]).toBe(2 ** 40);
    expect(row?.[7]).toBeNull();
  });

  it('pages through logs of one millisecond without skipping or repeating any', async () => {
    const range = { from: new Date(crowded - HOUR).toISOString(), to: new Date(crowded + HOUR).toISOString() };
    for (const limit of [1, 4, 7, 29, 30]) {
      const q = parse({ range, filters: { route: '/crowded' }, limit });
      const walked = await walk(q);
      expectLogs(walked, logsOracle(rows, q, frameOf(q)));
      expect(walked).toHaveLength(30);
      expect(new Set(walked.map((r) => r[0])).size).toBe(30);
    }
    const errors = parse({ range, filters: { route: '/crowded', statusClass: '5xx' }, limit: 3 });
    expectLogs(await walk(errors), logsOracle(rows, errors, frameOf(errors)));
  });

  it('refuses a malformed cursor, naming the field', async () => {
    const q = parse({ range: { last: '30d' } });
    const id = uuidv7();
    const bad = [
      'x',
      '!!!!',
      b64('not json'),
      b64('null'),
      b64('[]'),
      b64('{}'),
      b64(JSON.stringify({ ts: '2026-03-01T00:00:00.000000Z' })),
      b64(JSON.stringify({ ts: '2026-02-30T00:00:00.000000Z', id })),
      b64(JSON.stringify({ ts: '2026-03-01', id })),
      b64(JSON.stringify({ ts: '2026-03-01T00:00:00.000000Z', id: "'; DROP TABLE request_logs; --" })),
      b64(JSON.stringify({ ts: 1, id })),
    ];
    for (const cursor of bad) {
      const error = await store.query(data.tenant, { ...q, cursor }, { now: data.to }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, cursor).toBeInstanceOf(TallyError);
      expect((error as TallyError).code).toBe(ErrorCodes.BAD_QUERY);
      expect((error as TallyError).details).toEqual({ path: 'cursor' });
    }
  });

  it('reads any well-formed cursor as a position, microseconds (a Postgres cursor) included', async () => {
    const q = parse({ range: { last: '30d' } });
    const all = logsOracle(rows, q, frameOf(q));
    const micros = (r: unknown[]) => Date.parse(r[1] as string) * 1000;
    for (const id of [
      uuidv7(crowded),
      '00000000-0000-0000-0000-000000000000',
      'ffffffff-ffff-ffff-ffff-ffffffffffff',
    ]) {
      for (const extra of [0, 1, 500, 999]) {
        const ts = new Date(crowded).toISOString().replace('Z', `${String(extra).padStart(3, '0')}Z`);
        const at = b64(JSON.stringify({ ts, id }));
        const after = await store.query(data.tenant, { ...q, cursor: at, limit: 40 }, { now: data.to });
        const position = crowded * 1000 + extra;
        const expected = all.filter((r) => micros(r) < position || (micros(r) === position && (r[0] as string) < id));
        expectLogs(after.rows, expected.slice(0, 40), `${ts} ${id}`);
      }
    }
  });

  it('matches URL text literally: % and _ are characters, not wildcards', async () => {
    const range = { from: new Date(data.from).toISOString(), to: new Date(data.to).toISOString() };
    for (const url of ['%', '_', 'b%', 'c_d', '%_', 'q=%', '\\', '😀="q"\\']) {
      const q = parse({ range, filters: { url }, limit: 200 });
      const expected = logsOracle(rows, q, frameOf(q));
      expectLogs(await walk(q), expected, url);
      expect(expected.every((r) => (r[4] as string).includes(url))).toBe(true);
      // 'q=%' as a LIKE pattern would match every '?q=…'; as text it matches none of the generated URLs.
      if (url === 'q=%') expect(expected).toEqual([]);
      else expect(expected.length, url).toBeGreaterThan(0);
    }
  });

  it('treats hostile strings in every filter as data', async () => {
    const range = { from: new Date(data.from).toISOString(), to: new Date(data.to).toISOString() };
    for (const s of HOSTILE) {
      for (const key of ['route', 'userId', 'apiKeyId', 'url']) {
        const q = parse({ range, filters: { [key]: s }, limit: 10 });
        const walked = await walk(q);
        expectLogs(walked, logsOracle(rows, q, frameOf(q)));
        expect(walked.length, `${key} ${s}`).toBeGreaterThanOrEqual(1);
      }
    }
    // The table is still there and whole.
    const all = parse({ range, limit: 200 });
    expect(await walk(all)).toHaveLength(logsOracle(rows, all, frameOf(all)).length);
  });

  it("never shows another tenant's logs", async () => {
    const range = { from: new Date(data.from).toISOString(), to: new Date(data.to).toISOString() };
    const q = parse({ range, limit: 200 });
    const other = await walk(q, data.otherTenant);
    expectLogs(other, logsOracle(rows, q, frameOf(q, data.otherTenant)));
    const otherIds = new Set(rows.filter((r) => r.tenantId === data.otherTenant).map((r) => r.id));
    expect(other.length).toBe(otherIds.size);
    const mine = await walk(q);
    expect(mine.some((r) => otherIds.has(r[0] as string))).toBe(false);
    expect(await walk(q, 'nobody')).toEqual([]);
    expect(await walk(q, HOSTILE[0] as string)).toEqual([]);
  });

  it('explains its source', async () => {
    const result = await store.query(data.tenant, parse({ range: { last: '7d' }, explain: true }), { now: data.to });
    expect(result.meta.explain).toEqual({ source: 'detail', reason: expect.stringMatching(/newest first/) });
  });
});
