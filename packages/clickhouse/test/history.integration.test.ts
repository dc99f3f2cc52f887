/**
 * A user's request history and one request log in full, on ClickHouse (Debian's 18.16 server and
 * chDB's current engine), held to a plain evaluator and to the relational store itself: the same rows
 * go into an embedded PGlite store, and every page and every detail must be the same there. Paging as
 * the history routes do it (a page one longer than asked, the next page before the last item's time and
 * id), also among many logs of one millisecond; time ranges, status classes and routes; optional fields
 * absent stay absent and present ones come back as sent (headers, bodies, the streamed capture, who
 * sent it); another user's or tenant's log is never found; hostile strings are data.
 */
import { type HistoryItem, type HistoryQuery, type RequestLogDetail, type RequestLogRow, uuidv7 } from '@tally/core';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../store/src/index.js';
import { HOSTILE, type LogData, loadRequestLogs, pick, ROUTES, seeded } from '../../store/test/support/query-data.js';
import { openStore as openRelationalStore } from '../../store/test/support/stores.js';
import type { ClickHouseStore } from '../src/store.js';
import { engines, openStore } from './support/engines.js';
import { parseUlps, ulpsApart } from './support/floats.js';

const HOUR = 3_600_000;

/** A history page as the relational store's history.ts answers it, computed plainly. */
function historyOracle(rows: readonly RequestLogRow[], q: HistoryQuery): HistoryItem[] {
  const ms = (r: RequestLogRow) => Date.parse(r.timestamp);
  return rows
    .filter((r) => {
      if (r.tenantId !== q.tenantId || r.userId !== q.userId) return false;
      if (q.before) {
        const before = Date.parse(q.before.ts);
        if (ms(r) > before || (ms(r) === before && r.id >= q.before.id)) return false;
      }
      if (q.from && ms(r) < Date.parse(q.from)) return false;
      if (q.to && ms(r) >= Date.parse(q.to)) return false;
      if (q.statusClass && Math.floor(r.status / 100) !== q.statusClass) return false;
      if (q.route !== undefined && r.route !== q.route) return false;
      return true;
    })
    .sort((a, b) => ms(b) - ms(a) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    .slice(0, q.limit)
    .map(itemOf);
}

function itemOf(r: RequestLogRow): HistoryItem {
  return {
    id: r.id,
    requestId: r.requestId ?? null,
    method: r.method,
    route: r.route ?? null,
    url: r.url,
    status: r.status,
    durationMs: r.durationMs,
    requestBytes: r.requestBytes ?? null,
    responseBytes: r.responseBytes ?? null,
    aborted: r.aborted ?? false,
    error: r.error ?? null,
    timestamp: new Date(Date.parse(r.timestamp)).toISOString(),
  };
}

function detailOf(r: RequestLogRow): RequestLogDetail {
  return {
    ...itemOf(r),
    headers: r.headers ?? null,
    requestBody: r.requestBody ?? null,
    responseBody: r.responseBody ?? null,
    bodyTruncated: r.bodyTruncated ?? false,
    userAgent: r.userAgent ?? null,
    userId: r.userId ?? null,
    apiKeyId: r.apiKeyId ?? null,
    ip: r.ip ?? null,
    streamBody: r.streamBody ?? null,
  };
}

describe.each(engines)('request history on ClickHouse (%s)', (engine) => {
  let store: ClickHouseStore;
  let cleanup: () => Promise<void>;
  let pglite: Store;
  let disposePglite: () => Promise<void>;
  let data: LogData;
  let rows: RequestLogRow[];
  let crowded: number;
  let full: RequestLogRow;
  let bare: RequestLogRow;

  /** Items as expected, durations to the server's float parsing (support/floats.ts). */
  const expectItems = <T extends { durationMs: number }>(actual: T[], expected: T[], message?: string) => {
    const aligned = actual.map((a, i) => {
      const e = expected[i];
      return e && ulpsApart(a.durationMs, e.durationMs) <= parseUlps(engine) ? { ...a, durationMs: e.durationMs } : a;
    });
    expect(aligned, message).toEqual(expected);
  };

  /** Every page of `q` from the first, as the history routes page (limit + 1; before the last item). */
  async function walk(source: Pick<Store, 'requestHistory'>, q: Omit<HistoryQuery, 'before'>): Promise<HistoryItem[]> {
    const seen: HistoryItem[] = [];
    let before: HistoryQuery['before'];
    for (let page = 0; page < 1000; page++) {
      const found = await source.requestHistory({ ...q, ...(before ? { before } : {}), limit: q.limit + 1 });
      const items = found.slice(0, q.limit);
      seen.push(...items);
      const last = items.at(-1);
      if (found.length <= q.limit || !last) return seen;
      before = { ts: last.timestamp, id: last.id };
    }
    throw new Error('more than 1000 pages');
  }

  beforeAll(async () => {
    ({ store, cleanup } = await openStore(engine));
    ({ store: pglite, dispose: disposePglite } = await openRelationalStore('pglite'));
    const both = {
      insertEvents: async () => [],
      insertRequestLogs: async (batch: readonly RequestLogRow[]) => {
        const [a] = await Promise.all([store.insertRequestLogs(batch), pglite.insertRequestLogs(batch)]);
        return a;
      },
    };
    data = await loadRequestLogs(both, { seed: 23, logs: 1500 });
    crowded = data.from + 40 * HOUR + 321;
    const log = (ts: number, overrides: Partial<RequestLogRow> = {}): RequestLogRow => ({
      id: uuidv7(ts),
      tenantId: data.tenant,
      method: 'GET',
      route: '/crowded',
      url: '/crowded',
      status: 200,
      durationMs: 2.25,
      userId: 'u1',
      timestamp: new Date(ts).toISOString(),
      receivedAt: new Date(ts + 5).toISOString(),
      ...overrides,
    });
    full = log(data.from + 5 * HOUR, {
      requestId: 'req-1',
      method: 'POST',
      route: '/full/:id',
      url: '/full/7?a=1&b=%27',
      status: 201,
      durationMs: 12.345678901234567,
      requestBytes: 123,
      responseBytes: 2 ** 31 - 1,
      userId: 'u-full',
      apiKeyId: 'key-1',
      ip: '2001:db8::1',
      userAgent: 'curl/8 "quoted" \\ back',
      headers: { accept: '*/*', authorization: '[REDACTED]', 'x-ünï': "it's" },
      requestBody: '{"password":"[REDACTED]","note":"line\\nbreak"}',
      responseBody: '{"ok":true,"emoji":"😀"}',
      bodyTruncated: true,
      streamBody: 'data: 1\n\ndata: 2\n\n',
      aborted: true,
      error: 'client closed\tthe connection',
    });
    bare = {
      id: uuidv7(data.from + 6 * HOUR),
      tenantId: data.tenant,
      method: 'GET',
      url: '/bare',
      status: 404,
      durationMs: 0,
      timestamp: new Date(data.from + 6 * HOUR).toISOString(),
      receivedAt: new Date(data.from + 6 * HOUR).toISOString(),
    };
    const extra = [
      full,
      bare,
      // Empty headers and bodies are values, not absences.
      log(data.from + 7 * HOUR, { userId: 'u-empty', headers: {}, requestBody: '', responseBody: '', error: '' }),
      // Thirty logs of one user in one millisecond: pages fall among them.
      ...Array.from({ length: 30 }, (_, i) => log(crowded, { userId: 'u-crowded', status: i % 4 === 0 ? 503 : 200 })),
      // Hostile strings as the user, the route, the URL and the error.
      ...HOSTILE.map((s, i) =>
        log(data.from + (i + 9) * HOUR + 17, { userId: s, route: s, url: `/h?${s}`, error: s, headers: { [s]: s } }),
      ),
      // Ids whose time is not the log's: a UUIDv7 from days before, and a random (v4) one.
      log(data.from + 100 * HOUR, { id: uuidv7(data.from + 20 * HOUR), userId: 'u-ids', route: '/v7-early' }),
      log(data.from + 101 * HOUR, { id: randomUUID(), userId: 'u-ids', route: '/v4' }),
      // The same user id in the decoy tenant.
      log(data.from + 8 * HOUR, { tenantId: data.otherTenant, userId: 'u-full', route: '/decoy' }),
    ];
    await both.insertRequestLogs(extra);
    rows = [...data.stored, ...extra];
  }, 180_000);
  afterAll(async () => {
    await cleanup?.();
    await disposePglite?.();
  });

  it('pages through a user’s logs newest first, as the relational store does, for random ranges and filters', async () => {
    const rand = seeded(11);
    for (let i = 0; i < 30; i++) {
      const hours = (data.to - data.from) / HOUR;
      const from = data.from + Math.floor(rand() * hours * 0.8) * HOUR + Math.floor(rand() * HOUR);
      const to = Math.min(data.to, from + Math.floor(1 + rand() * hours) * HOUR);
      const q: Omit<HistoryQuery, 'before'> = {
        tenantId: data.tenant,
        userId: `u${Math.floor(rand() * 20)}`,
        limit: pick(rand, [1, 5, 20, 200]),
        ...(rand() < 0.7 ? { from: new Date(from).toISOString() } : {}),
        ...(rand() < 0.7 ? { to: new Date(to).toISOString() } : {}),
        ...(rand() < 0.3 ? { statusClass: pick(rand, [2, 3, 4, 5]) } : {}),
        ...(rand() < 0.3 ? { route: pick(rand, ROUTES)[1] as string } : {}),
      };
      const walked = await walk(store, q);
      const expected = historyOracle(rows, { ...q, limit: 100_000 });
      expectItems(walked, expected, `seed 11 query ${i}: ${JSON.stringify(q)}`);
      expectItems(walked, await walk(pglite, q), `seed 11 query ${i} against PGlite`);
    }
  });

  it('pages through logs of one millisecond without skipping or repeating any', async () => {
    for (const limit of [1, 4, 7, 29, 30]) {
      const q = { tenantId: data.tenant, userId: 'u-crowded', limit };
      const walked = await walk(store, q);
      expect(walked).toHaveLength(30);
      expect(new Set(walked.map((r) => r.id)).size).toBe(30);
      expectItems(walked, historyOracle(rows, { ...q, limit: 100 }));
      expectItems(walked, await walk(pglite, q));
    }
    const errors = { tenantId: data.tenant, userId: 'u-crowded', statusClass: 5, limit: 3 };
    expectItems(await walk(store, errors), historyOracle(rows, { ...errors, limit: 100 }));
  });

  it('reads a position with microseconds (a Postgres time) as the instant it names', async () => {
    const ids = rows.filter((r) => r.userId === 'u-crowded').map((r) => r.id);
    const middle = [...ids].sort()[15] as string;
    for (const [ts, expectedCount] of [
      [new Date(crowded).toISOString(), 15],
      [new Date(crowded).toISOString().replace('Z', '000Z'), 15],
      [new Date(crowded).toISOString().replace('Z', '001Z'), 30],
      [new Date(crowded - 1).toISOString().replace('Z', '999Z'), 0],
    ] as const) {
      const q = { tenantId: data.tenant, userId: 'u-crowded', before: { ts, id: middle }, limit: 100 };
      const found = await store.requestHistory(q);
      expect(found.length, ts).toBe(expectedCount);
      expectItems(found, await pglite.requestHistory(q), ts);
    }
  });

  it('gives a log back in full as sent, and absent fields as null, as the relational store does', async () => {
    for (const r of [full, bare, rows.find((x) => x.userId === 'u-empty') as RequestLogRow]) {
      const detail = await store.requestLog(data.tenant, null, r.id);
      expectItems([detail as RequestLogDetail], [detailOf(r)], r.url);
      expectItems(
        [detail as RequestLogDetail],
        [(await pglite.requestLog(data.tenant, null, r.id)) as RequestLogDetail],
      );
    }
    // Found by id whatever time the id carries.
    for (const r of rows.filter((x) => x.userId === 'u-ids')) {
      expectItems([(await store.requestLog(data.tenant, 'u-ids', r.id)) as RequestLogDetail], [detailOf(r)], r.route);
    }
    // The user's own, by that user; an upper-case id names the same log.
    expectItems(
      [(await store.requestLog(data.tenant, 'u-full', full.id.toUpperCase())) as RequestLogDetail],
      [detailOf(full)],
    );
    // The history list never carries bodies or headers.
    const [item] = await store.requestHistory({ tenantId: data.tenant, userId: 'u-full', limit: 1 });
    expect(Object.keys(item ?? {}).sort()).toEqual(Object.keys(itemOf(full)).sort());
  });

  it("never finds another user's or tenant's log, or an id that is not one", async () => {
    expect(await store.requestLog(data.tenant, 'u1', full.id)).toBeUndefined();
    expect(await store.requestLog(data.otherTenant, null, full.id)).toBeUndefined();
    expect(await store.requestLog(data.otherTenant, 'u-full', full.id)).toBeUndefined();
    // A log without a user is nobody's: not found for a user named ''.
    expect(await store.requestLog(data.tenant, '', bare.id)).toBeUndefined();
    expect(await store.requestHistory({ tenantId: data.tenant, userId: '', limit: 100 })).toEqual([]);
    expect(await store.requestLog(data.tenant, null, uuidv7())).toBeUndefined();
    expect(await store.requestLog(data.tenant, null, "'; DROP TABLE request_logs; --")).toBeUndefined();
    // The decoy tenant's log of the same user id is that tenant's only.
    const decoy = await store.requestHistory({ tenantId: data.otherTenant, userId: 'u-full', limit: 100 });
    expect(decoy.map((d) => d.route)).toEqual(['/decoy']);
    const mine = await store.requestHistory({ tenantId: data.tenant, userId: 'u-full', limit: 100 });
    expect(mine.map((d) => d.id)).toEqual([full.id]);
    // Every other-tenant history is the oracle's, and none of it is this tenant's.
    for (const userId of ['u1', 'u2', 'u3']) {
      const q = { tenantId: data.otherTenant, userId, limit: 1000 };
      expectItems(await store.requestHistory(q), historyOracle(rows, q));
    }
  });

  it('treats hostile strings as data: users, routes and tenants', async () => {
    for (const s of HOSTILE) {
      const q = { tenantId: data.tenant, userId: s, limit: 10 };
      const found = await store.requestHistory(q);
      expect(found.length, s).toBe(1);
      expectItems(found, historyOracle(rows, q), s);
      expectItems(found, await pglite.requestHistory(q), s);
      const routed = await store.requestHistory({ ...q, route: s });
      expectItems(routed, found, s);
      expect(await store.requestHistory({ ...q, tenantId: s })).toEqual([]);
      const detail = await store.requestLog(data.tenant, s, found[0]?.id as string);
      expect(detail?.headers).toEqual({ [s]: s });
      expect(detail?.error).toBe(s);
    }
    // The table is still there and whole.
    expect((await store.totals()).requestLogs).toBe(rows.length);
  });
});
