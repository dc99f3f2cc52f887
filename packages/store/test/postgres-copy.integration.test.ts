/**
 * The Postgres store's COPY path (COPY into a temp staging table, then the same idempotent INSERT the
 * unnest arrays feed on PGlite): values that COPY's text format must escape come back exactly, on both
 * engines; a bad row fails with its own SQLSTATE, whether the INSERT refuses it or COPY itself does, and
 * the writer dead-letters it alone; nothing of a failed batch lingers in the staging table; overlapping
 * batches in any order never deadlock; a role that may not create temp tables still inserts.
 * The direct path (a batch of new events COPYed straight into `events`): taken when it can be, left for
 * the staging path on a resent id, and its rollup equals the staging path's.
 */
import { isoTime, type JsonValue, uuidv7 } from '@tally/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createStore, createWriter, type EventRow, type RequestLogRow, type Store } from '../src/index.js';
import { eventsBinary, requestLogsBinary } from '../src/copy-rows.js';
import { tempDir } from '../../node/test/support/helpers.js';
import { needs } from '../../node/test/support/service-gate.js';
import {
  dropSchema,
  type Engine,
  eventRow,
  eventRows,
  freshSchema,
  openStore,
  PG_URL,
  pg,
  requestLog,
  withThrowawayDatabase,
} from './support/stores.js';

// Everything COPY's text format treats specially, and things that look like it but are plain text.
const NASTY = [
  'tab\there',
  'new\nline',
  'cr\rand crlf\r\n',
  'back\\slash',
  'ends with a backslash\\',
  '\\N',
  '\\.',
  '\\t is a backslash and a t',
  'NULL',
  '',
  '  spaced  ',
  '"double" and \'single\' quotes',
  'emoji 🎉, 中文, e\u0301, \u2028\u2029',
  'control \u0001\u001f\u007f',
];

const JSON_EDGES: Record<string, JsonValue> = {
  nested: { deep: [1, 'two', null, true, { empty: [] }, {}] },
  backslashes: 'C:\\path\\to\\file',
  notANul: '\\u0000 as six characters',
  quotes: 'say "hi" \\"escaped\\"',
  whitespace: 'tab\tnew\nline\rcr',
  unicode: '🎉 中文 \u2028',
  big: 1e300,
  tiny: 5e-324,
  negative: -1.5,
  maxSafe: Number.MAX_SAFE_INTEGER,
  '': 'an empty key',
  'key\twith\ntabs': 'and a value',
  nasty: NASTY,
};

const EVENT_COLUMNS = 'id tenant_id name user_id anonymous_id properties context ts received_at'.split(' ');
const REQUEST_LOG_COLUMNS = (
  'id tenant_id request_id method route url status duration_ms request_bytes response_bytes user_id api_key_id ' +
  'ip user_agent headers request_body response_body body_truncated stream_body aborted error ts received_at'
).split(' ');

/**
 * COPYs binary `data` into `table` (its `columns`, in order) and reads the rows back by id: ids as
 * lowercase text, times in the canonical form Tally writes, so rows compare with what was encoded.
 */
async function copyBinaryAndReadBack(
  store: Store,
  table: string,
  columns: string[],
  data: Buffer | undefined,
  rows: readonly { id: string }[],
): Promise<Map<unknown, Record<string, unknown>>> {
  expect(data, 'every row encodes').toBeInstanceOf(Buffer);
  await store.sql.transaction(async (tx) => {
    await tx.copyIn?.(`COPY ${table} (${columns.join(', ')}) FROM STDIN (FORMAT binary)`, data as Buffer);
  });
  const select = columns.map((c) =>
    c === 'id'
      ? 'id::text AS id'
      : c === 'ts' || c === 'received_at'
        ? `to_char(${c} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ${c}`
        : c,
  );
  const stored = await store.sql.query<Record<string, unknown>>(
    `SELECT ${select.join(', ')} FROM ${table} WHERE id = ANY($1::uuid[])`,
    [rows.map((r) => r.id)],
  );
  expect(stored).toHaveLength(rows.length);
  return new Map(stored.map((r) => [r.id, r]));
}

function timeoutAfter(ms: number, what: string): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(`${what} did not finish in ${ms} ms`)), ms));
}

describe.each((needs(pg).runs ? ['pglite', 'postgres'] : ['pglite']) as Engine[])(
  'COPY-escaped values round-trip: %s',
  (engine) => {
    let store: Store;
    let dispose: () => Promise<void>;
    beforeAll(async () => {
      ({ store, dispose } = await openStore(engine));
    });
    afterAll(() => dispose());

    it('events: every string column and JSON payload come back exactly', async () => {
      const rows = NASTY.map((s, i) =>
        eventRow({
          tenantId: `tenant ${s}`,
          name: `name ${s}`,
          userId: s,
          anonymousId: i % 2 ? undefined : `anon ${s}`,
          properties: { ...JSON_EDGES, s },
          context: { service: s, sampleRate: 0.5 },
        }),
      );
      expect(new Set(await store.insertEvents(rows))).toEqual(new Set(rows.map((r) => r.id)));
      const stored = await store.sql.query<Record<string, unknown>>(
        `SELECT id::text AS id, tenant_id, name, user_id, anonymous_id, properties, context,
              (extract(epoch FROM ts) * 1000)::float8 AS ts_ms FROM events WHERE id = ANY($1::uuid[])`,
        [rows.map((r) => r.id)],
      );
      const byId = new Map(stored.map((r) => [r.id, r]));
      for (const r of rows) {
        expect(byId.get(r.id)).toEqual({
          id: r.id,
          tenant_id: r.tenantId,
          name: r.name,
          user_id: r.userId,
          anonymous_id: r.anonymousId ?? null,
          properties: r.properties,
          context: r.context,
          ts_ms: Date.parse(r.timestamp),
        });
      }
    });

    it('events in COPY binary (the direct path): what the encoder writes is what the engine stores', async () => {
      // Times around Postgres' epoch (negative and zero microseconds), Unix' epoch and far ahead.
      const times = [
        '1999-12-31T23:59:59.999Z',
        '2000-01-01T00:00:00.000Z',
        '1970-01-01T00:00:00.000Z',
        '2250-06-30T12:34:56.789Z',
      ];
      const rows = NASTY.map((s, i) =>
        eventRow({
          id: i === 0 ? uuidv7().toUpperCase() : uuidv7(),
          tenantId: `tenant ${s}`,
          name: `name ${s}`,
          userId: i % 3 ? s : undefined,
          anonymousId: i % 2 ? undefined : `anon ${s}`,
          properties: { ...JSON_EDGES, s },
          context: { service: s, sampleRate: 0.5 },
          timestamp: times[i % times.length] as string,
          receivedAt: times[(i + 1) % times.length] as string,
        }),
      );
      const data = eventsBinary(rows, JSON.stringify);
      const byId = await copyBinaryAndReadBack(store, 'events', EVENT_COLUMNS, data, rows);
      for (const r of rows) {
        expect(byId.get(r.id.toLowerCase())).toEqual({
          id: r.id.toLowerCase(),
          tenant_id: r.tenantId,
          name: r.name,
          user_id: r.userId ?? null,
          anonymous_id: r.anonymousId ?? null,
          properties: r.properties,
          context: r.context,
          ts: r.timestamp,
          received_at: r.receivedAt,
        });
      }
    });

    it('events in COPY binary: what it cannot carry exactly is left to the text format', () => {
      const binary = (overrides: Partial<EventRow>) => eventsBinary([eventRow(), eventRow(overrides)], JSON.stringify);
      expect(binary({})).toBeInstanceOf(Buffer);
      for (const id of [
        'not-a-uuid',
        `${uuidv7().slice(0, 35)}g`,
        `${uuidv7().slice(0, 8)}_${uuidv7().slice(9)}`,
        '',
      ]) {
        expect(binary({ id }), id).toBeUndefined();
      }
      // Not the canonical form (Postgres reads those itself), or beyond what a double holds in microseconds.
      for (const timestamp of ['2024-01-01T00:00:00Z', '2024-01-01T01:00:00.000+01:00', '2300-01-01T00:00:00.000Z']) {
        expect(binary({ timestamp }), timestamp).toBeUndefined();
        expect(binary({ receivedAt: timestamp } as Partial<EventRow>), timestamp).toBeUndefined();
      }
      expect(binary({ userId: 42 as unknown as string })).toBeUndefined();
      expect(binary({ properties: undefined as unknown as Record<string, JsonValue> })).toBeUndefined();
    });

    it('request logs: urls, headers, bodies, numbers and flags come back exactly', async () => {
      const logs: RequestLogRow[] = NASTY.map((s, i) =>
        requestLog({
          tenantId: `tenant ${s}`,
          requestId: i % 3 ? s : undefined,
          route: i % 4 ? `/r/${s}` : undefined,
          url: `/r/${s}?q=${s}`,
          status: 200 + i,
          durationMs: 0.1 + 0.2 + i,
          requestBytes: i % 2 ? i * 1000 : undefined,
          responseBytes: 0,
          userAgent: s,
          headers: { 'x-nasty': s, 'x-json': '{"a":"\\n"}' },
          requestBody: `line 1\r\n${s}\\`,
          responseBody: s,
          bodyTruncated: i % 2 === 0,
          streamBody: `data: {"s":${JSON.stringify(s)}}\n\n`,
          aborted: i % 5 === 0,
          error: i % 2 ? undefined : `Error: ${s}\n    at somewhere`,
        }),
      );
      expect(new Set(await store.insertRequestLogs(logs))).toEqual(new Set(logs.map((r) => r.id)));
      const stored = await store.sql.query<Record<string, unknown>>(
        `SELECT id::text AS id, tenant_id, request_id, route, url, status, duration_ms, request_bytes, response_bytes,
              user_agent, headers, request_body, response_body, body_truncated, stream_body, aborted, error
       FROM request_logs WHERE id = ANY($1::uuid[])`,
        [logs.map((r) => r.id)],
      );
      const byId = new Map(stored.map((r) => [r.id, r]));
      for (const r of logs) {
        expect(byId.get(r.id)).toEqual({
          id: r.id,
          tenant_id: r.tenantId,
          request_id: r.requestId ?? null,
          route: r.route ?? null,
          url: r.url,
          status: r.status,
          duration_ms: r.durationMs,
          request_bytes: r.requestBytes ?? null,
          response_bytes: r.responseBytes,
          user_agent: r.userAgent,
          headers: r.headers,
          request_body: r.requestBody,
          response_body: r.responseBody,
          body_truncated: r.bodyTruncated,
          stream_body: r.streamBody,
          aborted: r.aborted,
          error: r.error ?? null,
        });
      }
    });

    it('request logs in COPY binary (the direct path): numbers, flags, NULLs and times stored as written', async () => {
      const times = ['1999-12-31T23:59:59.999Z', '2000-01-01T00:00:00.000Z', '2250-06-30T12:34:56.789Z'];
      const logs: RequestLogRow[] = NASTY.map((s, i) =>
        requestLog({
          tenantId: `tenant ${s}`,
          requestId: i % 3 ? s : undefined,
          route: i % 4 ? `/r/${s}` : undefined,
          url: `/r/${s}?q=${s}`,
          status: i === 0 ? -2_147_483_648 : i === 1 ? 2_147_483_647 : 200 + i,
          durationMs: i === 2 ? 5e-324 : 0.1 + 0.2 + i,
          requestBytes: i % 2 ? i * 1000 : undefined,
          responseBytes: i % 3 ? i : undefined,
          userId: i % 2 ? s : undefined,
          apiKeyId: i % 3 ? `key ${s}` : undefined,
          ip: i % 4 ? '10.0.0.0' : undefined,
          userAgent: s,
          headers: i % 5 ? { 'x-nasty': s, 'x-json': '{"a":"\\n"}' } : undefined,
          requestBody: `line 1\r\n${s}\\`,
          responseBody: i % 2 ? s : undefined,
          bodyTruncated: i % 2 === 0,
          streamBody: `data: {"s":${JSON.stringify(s)}}\n\n`,
          aborted: i % 5 === 0,
          error: i % 2 ? undefined : `Error: ${s}\n    at somewhere`,
          timestamp: times[i % times.length] as string,
          receivedAt: times[(i + 1) % times.length] as string,
        }),
      );
      const data = requestLogsBinary(logs);
      const byId = await copyBinaryAndReadBack(store, 'request_logs', REQUEST_LOG_COLUMNS, data, logs);
      for (const r of logs) {
        expect(byId.get(r.id)).toEqual({
          id: r.id,
          tenant_id: r.tenantId,
          request_id: r.requestId ?? null,
          method: r.method,
          route: r.route ?? null,
          url: r.url,
          status: r.status,
          duration_ms: r.durationMs,
          request_bytes: r.requestBytes ?? null,
          response_bytes: r.responseBytes ?? null,
          user_id: r.userId ?? null,
          api_key_id: r.apiKeyId ?? null,
          ip: r.ip ?? null,
          user_agent: r.userAgent ?? null,
          headers: r.headers ?? null,
          request_body: r.requestBody ?? null,
          response_body: r.responseBody ?? null,
          body_truncated: r.bodyTruncated,
          stream_body: r.streamBody ?? null,
          aborted: r.aborted,
          error: r.error ?? null,
          ts: r.timestamp,
          received_at: r.receivedAt,
        });
      }
    });

    it('request logs in COPY binary: what it cannot carry exactly is left to the text format', () => {
      const binary = (overrides: Partial<RequestLogRow>) => requestLogsBinary([requestLog(), requestLog(overrides)]);
      expect(binary({})).toBeInstanceOf(Buffer);
      expect(binary({ id: 'not-a-uuid' })).toBeUndefined();
      for (const status of [200.5, 2_147_483_648, Number.NaN])
        expect(binary({ status }), String(status)).toBeUndefined();
      expect(binary({ responseBytes: 1.5 })).toBeUndefined();
      expect(binary({ durationMs: '3' as unknown as number })).toBeUndefined();
      expect(binary({ url: 42 as unknown as string })).toBeUndefined();
      expect(binary({ timestamp: '2024-01-01T00:00:00Z' })).toBeUndefined();
      expect(binary({ receivedAt: '2300-01-01T00:00:00.000Z' })).toBeUndefined();
    });
  },
);

needs(pg).describe('Postgres COPY path', () => {
  let store: Store;
  let dispose: () => Promise<void>;
  const cleanups: (() => unknown)[] = [];
  beforeAll(async () => {
    ({ store, dispose } = await openStore('postgres'));
  });
  afterAll(() => dispose());
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    const t = await store.totals();
    expect(t.eventRollup, 'SUM(event_counts_hourly.count) = COUNT(events)').toBe(t.events);
    expect(t.pathRollup, 'SUM(path_stats_hourly.count) = COUNT(request_logs)').toBe(t.requestLogs);
  });

  it('a bad value fails the batch with its SQLSTATE, from the INSERT or from COPY itself, and leaves nothing behind', async () => {
    const before = await store.totals();
    // jsonb refuses \u0000 (22P05) and timestamptz a 30th of February (22008): both in the INSERT.
    await expect(
      store.insertEvents([eventRow(), eventRow({ properties: { text: 'nul \u0000 inside' } })]),
    ).rejects.toMatchObject({ code: '22P05' });
    await expect(
      store.insertEvents([eventRow(), eventRow({ timestamp: '2024-02-30T10:00:00.000Z' })]),
    ).rejects.toMatchObject({ code: '22008' });
    // A raw NUL in a text column is refused by COPY itself (22021), after all its data was sent.
    await expect(store.insertEvents([...eventRows(500), eventRow({ userId: 'raw \u0000 nul' })])).rejects.toMatchObject(
      { code: '22021' },
    );
    await expect(store.insertRequestLogs([requestLog(), requestLog({ url: '/raw\u0000nul' })])).rejects.toMatchObject({
      code: '22021',
    });
    expect(await store.totals()).toEqual(before);

    // Nothing of those batches lingers in a staging table: the next batch on every pooled connection
    // inserts exactly its own rows, and no connection was left stuck in its transaction.
    const next = Array.from({ length: 8 }, () => eventRows(20));
    const inserted = await Promise.race([
      Promise.all(next.map((b) => store.insertEvents(b))),
      timeoutAfter(10_000, 'batches after failed COPYs'),
    ]);
    inserted.forEach((ids, i) => expect(new Set(ids)).toEqual(new Set(next[i]?.map((r) => r.id))));
    expect((await store.totals()).events - before.events).toBe(160);
  });

  it('the writer dead-letters only the bad rows of a COPY batch and stores the rest', async () => {
    const tmp = tempDir('tally-copy-');
    const writer = createWriter({ store, spoolDir: tmp.dir, retry: { initialMs: 5, maxMs: 50 } });
    cleanups.push(tmp.cleanup, () => writer.close({ timeoutMs: 2000 }));
    const before = (await store.totals()).events;
    const rows: EventRow[] = eventRows(300);
    const bad = {
      10: eventRow({ properties: { note: 'a NUL \u0000 jsonb refuses' } }),
      150: eventRow({ userId: 'a raw \u0000 COPY refuses' }),
      299: eventRow({ timestamp: '2024-02-30T10:00:00.000Z' }),
    };
    for (const [index, row] of Object.entries(bad)) rows[Number(index)] = row;
    const result = await writer.writeEvents(rows);
    expect(result).toMatchObject({ ok: true, stored: 297, duplicates: 0, spooled: 0 });
    expect(result.rejected.map((r) => [r.index, r.id, r.code])).toEqual(
      Object.entries(bad).map(([index, row]) => [Number(index), row.id, 'TALLY_INVALID_ROW']),
    );
    expect(writer.stats().retries).toBe(0);
    expect((await store.totals()).events - before).toBe(297);
  });

  it('a resent batch inserts nothing and moves no rollup', async () => {
    const events = eventRows(400);
    const logs = Array.from({ length: 50 }, () => requestLog());
    expect(await store.insertEvents(events)).toHaveLength(400);
    expect(await store.insertRequestLogs(logs)).toHaveLength(50);
    const mid = await store.totals();
    expect(await store.insertEvents(events)).toEqual([]);
    expect(await store.insertRequestLogs(logs)).toEqual([]);
    expect(await store.totals()).toEqual(mid);
  });

  it('concurrent batches overlapping in shuffled order do not deadlock and store each event once', async () => {
    const before = (await store.totals()).events;
    const pool = eventRows(2000);
    // Each batch takes a window of the pool in its own random order: without the INSERT's ORDER BY,
    // two of them would lock the same rows in opposite orders.
    const batches = Array.from({ length: 16 }, (_, i) =>
      pool
        .slice(i * 100, i * 100 + 500)
        .map((row) => ({ row, key: Math.random() }))
        .sort((a, b) => a.key - b.key)
        .map((x) => x.row),
    );
    const results = await Promise.race([
      Promise.all(batches.map((b) => store.insertEvents(b))),
      timeoutAfter(30_000, 'overlapping batches'),
    ]);
    const ids = results.flat();
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(2000);
    expect((await store.totals()).events - before).toBe(ids.length);
  });

  it("a table named like the staging table in the store's schema is never the one used", async () => {
    await store.sql.exec('CREATE TABLE tally_staged_events (note text)');
    cleanups.push(() => store.sql.exec('DROP TABLE tally_staged_events'));
    const rows = eventRows(10);
    expect(await store.insertEvents(rows)).toHaveLength(10);
    const [row] = await store.sql.query<{ n: string }>('SELECT count(*) AS n FROM tally_staged_events');
    expect(Number(row?.n)).toBe(0);
  });

  it('a role without the TEMP privilege gets the same statement fed from arrays', async () => {
    // Its own database, so revoking TEMP from PUBLIC touches nothing else on the server.
    await withThrowawayDatabase('tally_notemp', async (admin, name) => {
      await admin.unsafe(`CREATE DATABASE ${name}`);
      await admin.unsafe(`REVOKE TEMP ON DATABASE ${name} FROM PUBLIC`);
      // Migrating creates cluster-wide roles: the superuser does that; the limited role only writes.
      const owner = await createStore({
        kind: 'postgres',
        url: `postgres://postgres@127.0.0.1:5432/${name}`,
        schema: 'tally',
      });
      await owner.migrate();
      await owner.close();
      await admin.unsafe(`CREATE ROLE ${name} LOGIN IN ROLE tally_service`);
      const url = `postgres://${name}@127.0.0.1:5432/${name}`;
      const limited = await createStore({ kind: 'postgres', url, schema: 'tally', poolSize: 2 });
      try {
        const rows = eventRows(100);
        expect(await limited.insertEvents(rows)).toHaveLength(100);
        expect(await limited.insertEvents(rows)).toEqual([]);
        expect(await limited.insertRequestLogs([requestLog()])).toHaveLength(1);
        await expect(
          limited.insertEvents([eventRow({ properties: { text: 'nul \u0000 inside' } })]),
        ).rejects.toMatchObject({ code: '22P05' });
        expect(await limited.totals()).toEqual({ events: 100, eventRollup: 100, requestLogs: 1, pathRollup: 1 });
      } finally {
        await limited.close();
      }
    });
  });

  it('a COPY batch does not wait for delayed ACKs (Nagle off on the pool’s sockets)', async () => {
    // With Nagle on, COPY's small CopyDone waits for the ACK of the data before it: ~40 ms a batch.
    const times: number[] = [];
    for (let i = 0; i < 15; i++) {
      const start = performance.now();
      await store.insertEvents([eventRow({ id: uuidv7(), timestamp: isoTime(Date.now()) })]);
      times.push(performance.now() - start);
    }
    const median = times.sort((a, b) => a - b)[7] as number;
    expect(median).toBeLessThan(30);
  });
});

needs(pg).describe('Postgres direct COPY of new events', () => {
  const schemas: string[] = [];
  const stores: Store[] = [];
  /** One connection, so what the store's session holds (its temp tables) can be looked at. */
  async function oneConnectionStore(): Promise<Store> {
    const schema = freshSchema();
    schemas.push(schema);
    const store = await createStore({ kind: 'postgres', url: PG_URL, schema, poolSize: 1 });
    stores.push(store);
    await store.migrate();
    return store;
  }
  const stagingExists = async (store: Store) =>
    (await store.sql.query<{ t: string | null }>(`SELECT to_regclass('pg_temp.tally_staged_events')::text AS t`))[0]
      ?.t !== null;
  const rollup = (store: Store) =>
    store.sql.query<{ tenant_id: string; name: string; hour: string; count: string; weighted: number }>(
      `SELECT tenant_id, name, hour::text, count::text, weighted FROM event_counts_hourly ORDER BY 1, 2, 3`,
    );
  afterAll(async () => {
    for (const store of stores) await store.close();
    for (const schema of schemas) await dropSchema(schema);
  });

  it('takes new events without the staging table, and leaves a batch with a stored id to it', async () => {
    const store = await oneConnectionStore();
    const first = eventRows(300);
    expect(await store.insertEvents(first)).toEqual(first.map((r) => r.id));
    expect(await stagingExists(store), 'staging table after a batch of new events').toBe(false);

    // One id already stored: the COPY fails whole, and the staging path stores the other 99 once.
    const fresh = eventRows(99);
    const ids = await store.insertEvents([...fresh.slice(0, 50), first[7] as EventRow, ...fresh.slice(50)]);
    expect(new Set(ids)).toEqual(new Set(fresh.map((r) => r.id)));
    expect(await stagingExists(store), 'staging table after a batch with a stored id').toBe(true);
    expect(await store.totals()).toEqual({ events: 399, eventRollup: 399, requestLogs: 0, pathRollup: 0 });
  });

  it('rolls up as the staging path does: hours, tenants, names and sample weights', async () => {
    const direct = await oneConnectionStore();
    const staged = await oneConnectionStore();
    const instants = ['2026-11-23T09:59:59.999Z', '2026-11-23T10:00:00.000Z', '2026-11-23T10:30:00.000Z'];
    const rows = Array.from({ length: 240 }, (_, i) =>
      eventRow({
        tenantId: `tenant-${i % 3}`,
        name: i % 2 ? 'task_created' : 'task_failed',
        timestamp: instants[Math.floor(i / 3) % 3] as string,
        context: i % 4 === 0 ? { sampleRate: 0.25 } : i % 4 === 1 ? { sampleRate: 1 } : { service: 'x' },
      }),
    );
    expect(await direct.insertEvents(rows)).toHaveLength(240);
    expect(await stagingExists(direct)).toBe(false);
    // The same instants written with a zero offset: not canonical, so these go the staging way.
    const offset = rows.map((r) => ({ ...r, timestamp: r.timestamp.replace('Z', '+00:00') }));
    expect(await staged.insertEvents(offset)).toHaveLength(240);
    expect(await stagingExists(staged)).toBe(true);
    const expected = await rollup(staged);
    expect(expected.length).toBe(12); // 3 tenants × 2 names × 2 hours
    expect(await rollup(direct)).toEqual(expected);
  });
});
