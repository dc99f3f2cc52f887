/**
 * `GET /v1/export` over real HTTP on PGlite and Postgres: a range of detail comes out exactly (every row
 * of the tenant in [from, to), once, in (ts, id) order, with its content), across many pages and with
 * many rows sharing a timestamp; as JSON lines, CSV and gzip (a file or Content-Encoding); never another
 * tenant's rows; bad parameters named; a client that hangs up ends the export.
 */
import { request } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { isoTime, uuidv7 } from '@tally/core';
import { createApiKey, type EventRow, type RequestLogRow } from '@tally/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needs } from '../../node/test/support/service-gate.js';
import { exportColumns } from '../src/query/export.js';
import { call } from './support/read-api.js';
import { pg, serveFor, type TestServer } from './support/services.js';

const backends: ('pglite' | 'postgres')[] = ['pglite', ...(needs(pg).runs ? (['postgres'] as const) : [])];

const FROM = Date.parse('2026-03-01T00:00:00Z');
const TO = Date.parse('2026-03-04T00:00:00Z');
const HOUR = 3_600_000;

/** RFC 4180 records (quoted fields may hold commas, quotes and newlines). */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i++;
    } else field += c;
  }
  return records;
}

describe.each(backends)('export (%s)', (backend) => {
  let s: TestServer;
  let base: string;
  const keys: Record<string, string> = {};
  const inRange: EventRow[] = [];
  const logs: RequestLogRow[] = [];

  const event = (tenantId: string, ts: number, i: number): EventRow => ({
    id: uuidv7(),
    name: i % 3 === 0 ? 'escalation_triggered' : 'conversation_started',
    tenantId,
    userId: i % 4 === 0 ? undefined : `u${i % 17}`,
    anonymousId: i % 4 === 0 ? `anon-${i}` : undefined,
    properties: {
      conversationId: `c${i}`,
      channel: 'web',
      note: i % 5 === 0 ? 'has, a comma and "quotes"' : 'plain',
      n: i,
    },
    context: { locale: 'de' },
    timestamp: isoTime(ts),
    receivedAt: isoTime(ts + 1000),
  });

  beforeAll(async () => {
    s = await serveFor(backend, {}, { exportPageRows: 500 });
    base = s.server.url;
    const sql = s.server.store.sql;
    keys.readA = (await createApiKey(sql, 'acme', { scope: 'read' })).key;
    keys.writeA = (await createApiKey(sql, 'acme')).key;
    keys.readB = (await createApiKey(sql, 'globex', { scope: 'read' })).key;

    const rows: EventRow[] = [];
    // 6,000 rows of acme in the range, in groups of 40 sharing one timestamp (pages end inside a group),
    // denser on the first day; rows just outside on both sides; globex rows interleaved.
    const step = Math.floor((TO - FROM) / 151);
    for (let i = 0; i < 6000; i++) {
      const e = event('acme', FROM + Math.floor(i / 40) * step, i);
      rows.push(e);
      inRange.push(e);
    }
    const edge = event('acme', TO - 1, 6000);
    rows.push(edge);
    inRange.push(edge);
    rows.push(event('acme', TO, 6001), event('acme', FROM - 1, 6002), event('acme', FROM - 30 * HOUR, 6003));
    for (let i = 0; i < 300; i++) rows.push(event('globex', FROM + i * HOUR * 0.2, 7000 + i));
    for (let at = 0; at < rows.length; at += 1000) await s.server.store.insertEvents(rows.slice(at, at + 1000));

    for (let i = 0; i < 30; i++) {
      const ts = FROM + i * HOUR;
      logs.push({
        id: uuidv7(),
        tenantId: 'acme',
        method: 'POST',
        route: '/v1/things/:id',
        url: `/v1/things/${i}?q=a,b`,
        status: i % 7 === 0 ? 500 : 200,
        durationMs: 10 + i,
        userId: `u${i}`,
        requestBody: `{"i":${i}}`,
        responseBody: '=cmd|calc',
        headers: { 'content-type': 'application/json' },
        timestamp: isoTime(ts),
        receivedAt: isoTime(ts),
      });
    }
    await s.server.store.insertRequestLogs(logs);
  }, 180_000);
  afterAll(() => s?.dispose());

  const expectedOrder = () =>
    [...inRange].sort((a, b) =>
      a.timestamp === b.timestamp ? (a.id < b.id ? -1 : 1) : a.timestamp < b.timestamp ? -1 : 1,
    );
  const range = `from=${new Date(FROM).toISOString()}&to=${new Date(TO).toISOString()}`;
  const get = (path: string, key: string | undefined, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, { headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers } });

  it('JSON lines: every row of the range once, in (ts, id) order, with its content', async () => {
    const res = await get(`/v1/export?kind=events&${range}`, keys.readA, { 'accept-encoding': 'identity' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    expect(res.headers.get('content-encoding')).toBeNull();
    expect(res.headers.get('content-disposition')).toMatch(
      /attachment; filename="tally-acme-events-2026-03-01-2026-03-04\.jsonl"/,
    );
    const text = await res.text();
    const lines = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const expected = expectedOrder();
    expect(lines.length).toBe(expected.length);
    expect(lines.map((l) => l.id)).toEqual(expected.map((e) => e.id));
    for (const [i, e] of expected.entries()) {
      expect(lines[i]).toEqual({
        id: e.id,
        name: e.name,
        userId: e.userId ?? null,
        anonymousId: e.anonymousId ?? null,
        timestamp: e.timestamp,
        receivedAt: e.receivedAt,
        properties: e.properties,
        context: { locale: 'de' },
      });
    }
  });

  it('gzip: as a file with ?gzip=1, or as Content-Encoding when the client accepts it; the same rows', async () => {
    const plain = await (
      await get(`/v1/export?kind=events&${range}`, keys.readA, { 'accept-encoding': 'identity' })
    ).text();
    const file = await get(`/v1/export?kind=events&${range}&gzip=1`, keys.readA, { 'accept-encoding': 'identity' });
    expect(file.headers.get('content-type')).toBe('application/gzip');
    expect(file.headers.get('content-disposition')).toMatch(/\.jsonl\.gz"$/);
    const bytes = Buffer.from(await file.arrayBuffer());
    expect(bytes.length).toBeLessThan(plain.length / 3);
    expect(gunzipSync(bytes).toString('utf8')).toBe(plain);

    // Content-Encoding, read raw (fetch would inflate it unseen).
    const raw = await new Promise<{ encoding?: string; body: Buffer }>((resolve, reject) => {
      const req = request(`${base}/v1/export?kind=events&${range}`, {
        headers: { authorization: `Bearer ${keys.readA}`, 'accept-encoding': 'gzip' },
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ encoding: res.headers['content-encoding'], body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    expect(raw.encoding).toBe('gzip');
    expect(gunzipSync(raw.body).toString('utf8')).toBe(plain);
  });

  it('CSV: a header row and a record per row, JSON columns as JSON text, text guarded', async () => {
    const res = await get(`/v1/export?kind=events&format=csv&${range}`, keys.readA);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    const records = parseCsv(await res.text());
    expect(records[0]).toEqual(exportColumns('events'));
    const expected = expectedOrder();
    expect(records.length - 1).toBe(expected.length);
    const col = (name: string) => exportColumns('events').indexOf(name);
    for (const [i, e] of expected.entries()) {
      const r = records[i + 1] as string[];
      expect(r[col('id')]).toBe(e.id);
      expect(r[col('userId')]).toBe(e.userId ?? '');
      expect(JSON.parse(r[col('properties')] as string)).toEqual(e.properties);
    }

    const logsCsv = parseCsv(await (await get(`/v1/export?kind=logs&format=csv&${range}`, keys.readA)).text());
    expect(logsCsv[0]).toEqual(exportColumns('logs'));
    expect(logsCsv.length - 1).toBe(logs.length);
    expect(new Set(logsCsv.slice(1).map((r) => r[exportColumns('logs').indexOf('responseBody')]))).toEqual(
      new Set(["'=cmd|calc"]),
    );
  });

  it('request logs, with their bodies', async () => {
    const text = await (await get(`/v1/export?kind=logs&${range}`, keys.readA)).text();
    const lines = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.id)).toEqual(logs.map((l) => l.id));
    expect(lines[3]).toMatchObject({
      method: 'POST',
      route: '/v1/things/:id',
      url: '/v1/things/3?q=a,b',
      status: 200,
      durationMs: 13,
      userId: 'u3',
      requestBody: '{"i":3}',
      responseBody: '=cmd|calc',
      headers: { 'content-type': 'application/json' },
      timestamp: logs[3]?.timestamp,
    });
  });

  it("a tenant's key exports its own rows only; write keys and strangers none", async () => {
    const theirs = await (await get(`/v1/export?kind=events&${range}`, keys.readB)).text();
    const ids = theirs
      .trimEnd()
      .split('\n')
      .map((l) => (JSON.parse(l) as { id: string }).id);
    expect(ids.length).toBe(300);
    expect(new Set(ids).size).toBe(ids.length);
    const mine = new Set(inRange.map((e) => e.id));
    expect(ids.some((id) => mine.has(id))).toBe(false);
    expect((await get(`/v1/export?kind=logs&${range}`, keys.readB)).status).toBe(200);
    expect(await (await get(`/v1/export?kind=logs&${range}`, keys.readB)).text()).toBe('');
    expect((await get(`/v1/export?kind=events&${range}`, keys.writeA)).status).toBe(403);
    expect((await get(`/v1/export?kind=events&${range}`, undefined)).status).toBe(401);
  });

  it('bad parameters are 400 TALLY_BAD_QUERY naming the parameter', async () => {
    const cases: [string, string][] = [
      [`kind=things&${range}`, 'kind'],
      [`format=xml&${range}`, 'format'],
      [`to=2026-03-02`, 'from'],
      [`from=2026-03-02`, 'to'],
      [`from=yesterday&to=2026-03-02`, 'from'],
      [`from=2026-03-02&to=2026-03-01`, 'to'],
      [`from=2024-01-01&to=2026-01-01`, 'to'],
      [`tz=Mars/Base&${range}`, 'tz'],
      [`gzip=yes&${range}`, 'gzip'],
      [`kind=events&kind=logs&${range}`, 'kind'],
    ];
    for (const [query, param] of cases) {
      const r = await call(base, 'GET', `/v1/export?${query}`, { key: keys.readA });
      expect(r.status, query).toBe(400);
      expect(r.json.error, query).toMatchObject({ code: 'TALLY_BAD_QUERY', details: { path: param } });
    }
  });
});

describe('an export whose client hangs up', () => {
  it('stops: the export ends with the connection', async () => {
    const s = await serveFor('pglite', {}, { exportPageRows: 1000 });
    try {
      const base = s.server.url;
      const key = (await createApiKey(s.server.store.sql, 'acme', { scope: 'read' })).key;
      // ~25 MB of rows: more than the socket buffers between server and client hold.
      const pad = 'x'.repeat(1200);
      for (let b = 0; b < 20; b++) {
        await s.server.store.insertEvents(
          Array.from({ length: 1000 }, (_, i) => ({
            id: uuidv7(),
            name: 'conversation_started',
            tenantId: 'acme',
            properties: { conversationId: `c${b}-${i}`, channel: 'web', botId: pad },
            context: {},
            timestamp: isoTime(FROM + b * HOUR + i),
            receivedAt: isoTime(FROM + b * HOUR + i),
          })),
        );
      }
      const gauge = async () =>
        Number(/^tally_exports_active (\d+)/m.exec(await (await fetch(`${base}/metrics`)).text())?.[1]);
      const req = request(`${base}/v1/export?kind=events&from=2026-03-01&to=2026-03-02`, {
        headers: { authorization: `Bearer ${key}`, 'accept-encoding': 'identity' },
      });
      req.on('error', () => undefined);
      const response = await new Promise<import('node:http').IncomingMessage>((resolve) => {
        req.on('response', resolve);
        req.end();
      });
      expect(response.statusCode).toBe(200);
      // The first bytes, then the client stops reading: the export waits on it (backpressure)…
      await new Promise((resolve) => response.once('readable', resolve));
      response.pause();
      await new Promise((r) => setTimeout(r, 500));
      expect(await gauge()).toBe(1);
      // …and ends when it hangs up.
      req.destroy();
      const deadline = Date.now() + 5000;
      while ((await gauge()) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await gauge()).toBe(0);
    } finally {
      await s.dispose();
    }
  }, 180_000);
});
