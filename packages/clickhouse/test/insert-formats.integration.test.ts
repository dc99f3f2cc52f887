/**
 * Every insert format the store writes, on every engine that reads it (Debian's 18.16 server: RowBinary,
 * TabSeparated and JSONEachRow; chDB's current engine: TabSeparated and JSONEachRow): rows of every
 * shape go in through the store and come back as sent. Hostile strings (quotes, backslashes, the
 * separators, NUL and every control character, `\N`, SQL), unicode (accents, CJK, emoji, a lone
 * surrogate: U+FFFD, as a literal sends it), strings around the varint length boundaries, nested and
 * odd properties (arrays, empty objects, nulls, keys with dots, NUL or digits), numbers of every form,
 * shared and changing contexts, absent optional fields; and a batch part stored, part new, so only
 * some rows of an encoded body are sent.
 *
 * What a row should hold is computed here plainly (Object.entries and JSON.stringify, as the stored
 * shape is defined in rows.ts), so a faster encoder that drifts from it fails.
 */
import { type EventRow, isoTime, type JsonValue, type RequestLogRow, uuidv7 } from '@tally/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOSTILE } from '../../store/test/support/query-data.js';
import type { ClickHouseClient } from '../src/client.js';
import type { InsertFormat } from '../src/row-writer.js';
import { str } from '../src/sql.js';
import { type ClickHouseStore, createClickHouseStore } from '../src/store.js';
import { type ChEngine, engines, freshDatabase, openClient } from './support/engines.js';
import { withinParse } from './support/floats.js';

const BASE = Date.parse('2026-03-10T12:00:00.000Z');
const CONTROL = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join('');

/** Strings a format could get wrong. */
const STRINGS = [
  '',
  ...HOSTILE,
  CONTROL,
  'tab\there',
  'line\nfeed',
  'carriage\rreturn',
  'nul\0byte',
  '\\N',
  '\\',
  "'",
  "''",
  '\\t\\n',
  "['a','b']",
  '[1,2]',
  '{"json":"text"}',
  ',',
  '\u007f del',
  'naïve café 日本語 中文 한국어',
  '😀 emoji 👍🏽 family 👨‍👩‍👧',
  'e\u0301 combining',
  'lone \ud800 high',
  'lone \udc00 low',
  'x'.repeat(42),
  'x'.repeat(43),
  'é'.repeat(42),
  'é'.repeat(43),
  'x'.repeat(127),
  'x'.repeat(128),
  'x'.repeat(16383),
  'x'.repeat(16384),
  'ü'.repeat(8192),
  `${'y'.repeat(100_000)}\t\n\\'`,
];

/** What the store sends for a string: a lone surrogate has no UTF-8 form and goes as U+FFFD. */
const sent = (s: string): string =>
  s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');

const T = { string: 1, number: 2, boolean: 3, object: 4, array: 5 };

/** The flattened attributes of a row, as rows.ts defines them (stated plainly). */
function attributes(row: EventRow): [string[], number[], string[]] {
  const out: [string[], number[], string[]] = [[], [], []];
  const put = (k: string, t: number, v: string) => {
    out[0].push(sent(k));
    out[1].push(t);
    out[2].push(sent(v));
  };
  const walk = (v: JsonValue | undefined, path: string): void => {
    if (v === null || v === undefined) return;
    if (typeof v === 'string') put(path, T.string, v);
    else if (typeof v === 'number') put(path, T.number, JSON.stringify(v));
    else if (typeof v === 'boolean') put(path, T.boolean, String(v));
    else if (Array.isArray(v)) put(path, T.array, JSON.stringify(v));
    else {
      put(path, T.object, JSON.stringify(v));
      for (const [k, x] of Object.entries(v)) if (!k.includes('\0')) walk(x, `${path}\0${k}`);
    }
  };
  for (const [k, v] of Object.entries(row.properties)) if (!k.includes('\0')) walk(v, `p\0${k}`);
  for (const [k, v] of Object.entries(row.context)) if (!k.includes('\0')) walk(v, `c\0${k}`);
  return out;
}

function expectedEvent(row: EventRow): unknown[] {
  const rate = row.context.sampleRate;
  return [
    row.id,
    sent(row.tenantId),
    sent(row.name),
    sent(row.userId ?? ''),
    sent(row.anonymousId ?? ''),
    Date.parse(row.timestamp),
    Date.parse(row.receivedAt),
    typeof rate === 'number' && rate > 0 && rate <= 1 ? rate : 1,
    JSON.stringify(row.properties),
    JSON.stringify(row.context),
    ...attributes(row),
  ];
}

const EVENT_SELECT = `toString(id) AS id, tenant_id, name, user_id, anonymous_id, ts_ms, received_ms, sample_rate,
  properties, context, attr_keys, attr_types, attr_values`;

function expectedLog(row: RequestLogRow): unknown[] {
  const opt = (s: string | undefined) => (s === undefined ? null : sent(s));
  return [
    row.id,
    sent(row.tenantId),
    opt(row.requestId),
    sent(row.method),
    sent(row.route ?? ''),
    sent(row.url),
    row.status,
    row.durationMs,
    row.requestBytes ?? null,
    row.responseBytes ?? null,
    sent(row.userId ?? ''),
    opt(row.apiKeyId),
    opt(row.ip),
    opt(row.userAgent),
    row.headers ? JSON.stringify(row.headers) : null,
    opt(row.requestBody),
    opt(row.responseBody),
    row.bodyTruncated ? 1 : 0,
    opt(row.streamBody),
    row.aborted ? 1 : 0,
    opt(row.error),
    Date.parse(row.timestamp),
    Date.parse(row.receivedAt),
  ];
}

const LOG_SELECT = `toString(id) AS id, tenant_id, request_id, method, route, url, status, duration_ms, request_bytes,
  response_bytes, user_id, api_key_id, ip, user_agent, headers, request_body, response_body, body_truncated,
  stream_body, aborted, error, ts_ms, received_ms`;

/** Properties of every shape, hostile strings in keys and values. */
function propertiesOf(i: number): Record<string, JsonValue> {
  const s = STRINGS[i % STRINGS.length] as string;
  return {
    s,
    [`key ${s.slice(0, 50)}`]: i,
    n: [0, -0, 1.5, -5, 1e21, 1e-7, 0.1 + 0.2, Number.MAX_SAFE_INTEGER, -1234567.125][i % 9] as number,
    b: i % 2 === 0,
    nul: null,
    nested: { a: { b: { c: s, d: [1, { e: s }] } }, empty: {}, none: [], 'n\0ul': 'skipped' },
    list: [s, i, true, null, { x: s }],
    'dotted.key': 'dot',
    'with\0nul': 'skipped in attributes, kept in the JSON',
    '2': 'two',
    '1': 'one',
    ünï: 'cödé',
    ...(i % 5 === 0 ? { '': 'empty key' } : {}),
  };
}

const SHARED_CONTEXT = { library: { name: '@tally/node', version: '0.4.0' }, service: 'api' };

function events(tenant: string, n: number): EventRow[] {
  return Array.from({ length: n }, (_, i) => {
    const s = STRINGS[(i * 7) % STRINGS.length] as string;
    // Contexts: one object shared by a run of events, equal copies, changing ones, odd sample rates.
    const context =
      i % 4 === 0
        ? SHARED_CONTEXT
        : i % 4 === 1
          ? { ...SHARED_CONTEXT }
          : { library: { name: s, version: String(i) }, requestId: s, sampleRate: [0.25, 0, 2, 1][i % 4] as number };
    return {
      id: uuidv7(),
      tenantId: tenant,
      name: i % 3 === 0 ? s || 'empty' : `event ${i % 5}`,
      ...(i % 2 === 0 ? { userId: s } : {}),
      ...(i % 3 === 1 ? { anonymousId: `anon ${s.slice(0, 30)}` } : {}),
      properties: i % 11 === 0 ? {} : propertiesOf(i),
      context,
      timestamp: isoTime(BASE + i * 61_001),
      receivedAt: isoTime(BASE + i * 61_001 + (i % 1000)),
    };
  });
}

function logs(tenant: string, n: number): RequestLogRow[] {
  return Array.from({ length: n }, (_, i) => {
    const s = STRINGS[(i * 5) % STRINGS.length] as string;
    const full = i % 2 === 0;
    return {
      id: uuidv7(),
      tenantId: tenant,
      method: ['GET', 'POST', 'DELETE'][i % 3] as string,
      ...(i % 3 !== 2 ? { route: `/r/${s.slice(0, 20)}` } : {}),
      url: `/r/${s}?q=${i}`,
      status: [200, 201, 301, 404, 500, 599][i % 6] as number,
      durationMs: [0, 1.5, 0.1 + 0.2, 12345.678, 1e-3][i % 5] as number,
      timestamp: isoTime(BASE + i * 1001),
      receivedAt: isoTime(BASE + i * 1001 + 3),
      ...(full
        ? {
            requestId: `req ${s}`,
            requestBytes: [0, 1, 2 ** 40, 123][i % 4] as number,
            responseBytes: [5, 0, 2 ** 33 + 7][i % 3] as number,
            userId: s,
            apiKeyId: `key ${s.slice(0, 10)}`,
            ip: '203.0.113.7',
            userAgent: s,
            headers: { accept: '*/*', 'x-odd': s },
            requestBody: s,
            responseBody: `{"echo":${JSON.stringify(s)}}`,
            bodyTruncated: i % 4 === 0,
            streamBody: `data: ${s}\n\n`,
            aborted: i % 3 === 0,
            error: s,
          }
        : {}),
    };
  });
}

/** Which formats each engine reads (chDB's raw insert takes text formats only). */
const FORMATS: Record<ChEngine, InsertFormat[]> = {
  server: ['RowBinary', 'TabSeparated', 'JSONEachRow'],
  chdb: ['TabSeparated', 'JSONEachRow'],
};

/** Float columns compared within the engine's text parse error (none for RowBinary). */
const floats = (engine: ChEngine, format: InsertFormat, rows: unknown[][], want: unknown[][], cols: number[]) =>
  format === 'RowBinary' ? rows : withinParse(engine, rows, want, cols);

describe.each(engines)('insert formats on %s', (engine) => {
  let client: ClickHouseClient;
  let database: string;
  beforeAll(async () => {
    client = await openClient(engine);
    database = freshDatabase();
  });
  afterAll(async () => {
    await client?.command(`DROP DATABASE IF EXISTS ${database}`).catch(() => undefined);
    await client?.close();
  });

  it('the client says which format the store writes', () => {
    expect(client.insertFormat).toBe(FORMATS[engine][0]);
  });

  describe.each(FORMATS[engine])('%s', (format) => {
    let store: ClickHouseStore;
    beforeAll(async () => {
      store = createClickHouseStore({ client: { ...client, insertFormat: format }, database });
      await store.migrate();
    });

    const read = async (select: string, table: string, tenant: string) =>
      (
        await client.query<Record<string, unknown>>(
          `SELECT ${select} FROM ${database}.${table} WHERE tenant_id = ${str(tenant)} ORDER BY ts_ms, id`,
        )
      ).map((r) => Object.values(r));

    it('stores events of every shape as sent', async () => {
      const tenant = `events ${format}`;
      const rows = events(tenant, 240);
      expect(new Set(await store.insertEvents(rows))).toEqual(new Set(rows.map((r) => r.id)));
      const want = rows.map(expectedEvent);
      const got = await read(EVENT_SELECT, 'events', tenant);
      expect(got.length).toBe(rows.length);
      got.forEach((row, i) => expect(row, `row ${i}`).toEqual(want[i]));
    });

    it('stores request logs of every shape as sent, absent fields as NULL', async () => {
      const tenant = `logs ${format}`;
      const rows = logs(tenant, 120);
      expect(new Set(await store.insertRequestLogs(rows))).toEqual(new Set(rows.map((r) => r.id)));
      const want = rows.map(expectedLog);
      const got = floats(engine, format, await read(LOG_SELECT, 'request_logs', tenant), want, [7]);
      expect(got.length).toBe(rows.length);
      got.forEach((row, i) => expect(row, `row ${i}`).toEqual(want[i]));
    });

    it('sends only the new rows of a batch part stored (runs of rows cut from the body)', async () => {
      const tenant = `subset ${format}`;
      const rows = events(tenant, 60);
      // Stored before: single rows, a run, the first and the last, so the new ones come in several runs.
      const before = rows.filter((_, i) => i === 0 || i === 59 || i % 7 === 3 || (i >= 20 && i < 30));
      await store.insertEvents(before);
      const fresh = rows.filter((r) => !before.includes(r));
      expect(new Set(await store.insertEvents(rows))).toEqual(new Set(fresh.map((r) => r.id)));
      const got = await read(EVENT_SELECT, 'events', tenant);
      expect(got).toEqual(rows.map(expectedEvent));
    });

    it("keeps each batch's contexts when batches are encoded at the same time", async () => {
      // Two batches, each encoded in slices and taking turns, each with its own shared context object.
      const tenant = `turns ${format}`;
      const batch = (n: number, context: EventRow['context']): EventRow[] =>
        Array.from({ length: n }, (_, i) => ({
          id: uuidv7(),
          tenantId: tenant,
          name: `turn ${n}`,
          properties: { i, s: STRINGS[i % 20] as string },
          context,
          timestamp: isoTime(BASE + i * 7 + n),
          receivedAt: isoTime(BASE + i * 7 + n),
        }));
      const a = batch(2500, { library: { name: 'a', version: '1' }, service: 'first' });
      const b = batch(2501, { library: { name: 'b', version: '2' }, sampleRate: 0.5 });
      const [ia, ib] = await Promise.all([store.insertEvents(a), store.insertEvents(b)]);
      expect(ia.length + (ib?.length ?? 0)).toBe(a.length + b.length);
      const got = await read(EVENT_SELECT, 'events', tenant);
      const want = [...a, ...b].sort((x, y) => Date.parse(x.timestamp) - Date.parse(y.timestamp)).map(expectedEvent);
      const byId = new Map(got.map((r) => [r[0], r]));
      for (const w of want) expect(byId.get(w[0])).toEqual(w);
    });

    it('refuses a row it cannot encode with a data error, before sending anything', async () => {
      const tenant = `refused ${format}`;
      const [good, bad] = events(tenant, 2) as [EventRow, EventRow];
      for (const row of [
        { ...bad, id: 'not-a-uuid' },
        { ...bad, timestamp: 'yesterday' },
        { ...bad, name: 42 as unknown as string },
      ]) {
        await expect(store.insertEvents([good, row])).rejects.toMatchObject({ code: '22000' });
      }
      const [log] = logs(tenant, 1) as [RequestLogRow];
      await expect(store.insertRequestLogs([{ ...log, durationMs: Number.NaN }])).rejects.toMatchObject({
        code: '22000',
      });
      await expect(store.insertRequestLogs([{ ...log, requestBytes: 1.5 }])).rejects.toMatchObject({
        code: '22000',
      });
      expect(await read('id', 'events', tenant)).toEqual([]);
      expect(await read('id', 'request_logs', tenant)).toEqual([]);
    });
  });
});
