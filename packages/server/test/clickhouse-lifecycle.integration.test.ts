/**
 * The lifecycle and the export of `tally serve` with CLICKHOUSE_URL (Debian's 18.16 server, a fresh
 * database per test file), control plane on PGlite: archive, cleanup, restore and stats through the
 * admin API (what the CLI calls on a running server) work on the rows ClickHouse holds, with the
 * manifests in the relational store; GET /v1/export streams ClickHouse's rows; hot-path snapshots are
 * computed from them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ARCHIVE_COLUMNS, EXPORT_FIELDS, isoTime, parseQuery, uuidv7 } from '@tally/core';
import { createApiKey, listJobRuns, listManifests } from '@tally/store';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { needs, probeClickHouse } from '../../node/test/support/service-gate.js';
import { eventRow, requestLog as logRow } from '../../store/test/support/stores.js';
import { createRemoteOps } from '../src/admin/client.js';
import type { AdminOps } from '../src/admin/ops.js';
import { call, event, requestLog, send } from './support/read-api.js';
import { serveFor, type TestServer } from './support/services.js';

const clickhouse = await probeClickHouse();
const CLICKHOUSE_URL = 'http://127.0.0.1:8123';
const DAY = 86_400_000;

needs(clickhouse).describe('lifecycle and export of tally serve with ClickHouse', () => {
  let s: TestServer;
  let database: string;
  let ops: AdminOps;
  const old = Date.now() - 6 * DAY;
  const oldDay = isoTime(old).slice(0, 10);
  const count = async (table: string, where = '1') =>
    Number(
      (
        await s.server.clickhouse!.client.query<{ n: number }>(
          `SELECT count() AS n FROM ${database}.${table} WHERE tenant_id = 'acme' AND ${where}`,
        )
      )[0]?.n,
    );
  const until = async (check: () => Promise<boolean>, what: string, ms = 20_000) => {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  beforeAll(async () => {
    database = `tally_serve_${Math.random().toString(36).slice(2, 10)}`;
    s = await serveFor('pglite', {
      'clickhouse-url': CLICKHOUSE_URL,
      'clickhouse-database': database,
      'clickhouse-flush-ms': '20',
      'snapshot-every': '1',
    });
    // First start: each job runs once to catch up; the old rows come after, so they are this test's.
    await until(async () => (await listJobRuns(s.server.store.sql)).length >= 5, 'the catch-up runs');
    const token = readFileSync(join(s.dataDir, 'admin-token'), 'utf8').trim();
    ops = createRemoteOps({ url: s.server.url, token }, { store: 'remote' });
    const ch = s.server.clickhouse!;
    // Rows 6 days old (the collector takes them as they come; stored here directly, as NATS would bring them).
    await ch.insertEvents(
      Array.from({ length: 40 }, (_, i) =>
        eventRow({ id: uuidv7(old + i), tenantId: 'acme', timestamp: isoTime(old + i), receivedAt: isoTime(old) }),
      ),
    );
    await ch.insertRequestLogs([
      logRow({ id: uuidv7(old), tenantId: 'acme', timestamp: isoTime(old), receivedAt: isoTime(old) }),
    ]);
    const key = (await createApiKey(s.server.store.sql, 'acme')).key;
    await send(s.server.url, key, [
      ...Array.from({ length: 10 }, (_, i) =>
        event('conversation_started', { conversationId: `c${i}`, channel: 'web' }),
      ),
      requestLog({ route: '/users/:id', status: 500 }),
      requestLog({ route: '/users/:id', status: 200 }),
    ]);
    await until(async () => (await count('events')) === 50 && (await count('request_logs')) === 3, 'the batch');
  }, 120_000);
  afterAll(async () => {
    await s?.server.clickhouse?.client.command(`DROP DATABASE IF EXISTS ${database}`).catch(() => undefined);
    await s?.dispose();
  });

  it('archive, cleanup, stats and restore through the admin API act on the rows ClickHouse holds', async () => {
    const progress: string[] = [];
    // The old day's hourly counts built (tally rollups rebuild), then kept true through cleanup and restore.
    const built = await ops.rebuildRollups({}, (l) => progress.push(l));
    expect(built).toMatchObject({ days: 1, events: 40 });
    expect(progress.some((l) => /building the hourly counts/.test(l))).toBe(true);
    const trends = parseQuery({
      kind: 'trends',
      series: [{ event: 'task_created' }],
      range: { from: oldDay, to: isoTime(Date.parse(oldDay) + 2 * DAY).slice(0, 10) },
      explain: true,
    });
    if (!trends.ok) throw trends.error;
    const oldCount = async () => {
      const r = await s.server.clickhouse!.query('acme', trends.query);
      return { n: r.rows[0]?.[2], source: r.meta.source };
    };
    expect(await oldCount()).toEqual({ n: 40, source: 'rollup' });

    const archived = await ops.runArchive({}, (l) => progress.push(l));
    expect(archived.outcome).toMatchObject({ outcome: 'ok', counts: { files: 2, rows: 41 } });
    const manifests = await listManifests(s.server.store.sql);
    expect(manifests.map((m) => [m.table, m.tenantId, m.day, m.rows]).sort()).toEqual([
      ['events', 'acme', oldDay, 40],
      ['request_logs', 'acme', oldDay, 1],
    ]);
    for (const m of manifests) {
      const file = gunzipSync(readFileSync(join(s.dataDir, 'archive', ...m.key.split('/'))));
      for (const line of file.toString().trim().split('\n'))
        expect(Object.keys(JSON.parse(line) as object)).toEqual(ARCHIVE_COLUMNS[m.table]);
    }

    const cleaned = await ops.cleanup({}, (l) => progress.push(l));
    expect(cleaned.outcome).toMatchObject({ outcome: 'ok', counts: { parts: 2, deleted: 41 } });
    // The only tenant of that day: its partitions went whole.
    expect(progress.filter((l) => l.startsWith('cleanup ')).every((l) => /whole day partition/.test(l))).toBe(true);
    expect(await count('events')).toBe(10);
    expect(await count('request_logs')).toBe(2);
    // The cleanup marked the day dirty before its rows went: the counts follow the detail rows.
    expect(await oldCount()).toEqual({ n: 0, source: 'detail' });

    const stats = await ops.stats();
    expect(stats.tables.find((t) => t.table === 'events')).toMatchObject({ engine: 'clickhouse', rows: 10 });
    expect(stats.tables.find((t) => t.table === 'request_logs')).toMatchObject({ engine: 'clickhouse', rows: 2 });
    expect(stats.archive).toMatchObject({ files: 2, rows: 41, cleanedRows: 41 });

    const restored = await ops.restoreArchive({ tenant: 'acme', day: oldDay }, () => undefined);
    expect(restored).toMatchObject({ parts: 2, restored: 41, alreadyPresent: 0 });
    expect(await count('events')).toBe(50);
    expect(await s.server.clickhouse!.duplicates()).toEqual({ events: 0, requestLogs: 0 });
    expect(await oldCount()).toEqual({ n: 40, source: 'detail' });
    expect(await ops.rebuildRollups({}, () => undefined)).toMatchObject({ days: 1, events: 40 });
    expect(await oldCount()).toEqual({ n: 40, source: 'rollup' });
    // Nothing of it went to the relational store's detail tables.
    const [rel] = await s.server.store.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM events');
    expect(Number(rel?.n)).toBe(0);
  }, 60_000);

  it('GET /v1/export streams the rows ClickHouse holds, as JSON lines and CSV', async () => {
    const read = (await createApiKey(s.server.store.sql, 'acme', { scope: 'read' })).key;
    const from = isoTime(old - DAY);
    const to = isoTime(Date.now() + DAY);
    const jsonl = await call(s.server.url, 'GET', `/v1/export?kind=events&from=${from}&to=${to}`, { key: read });
    expect(jsonl.status).toBe(200);
    const rows = jsonl.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows).toHaveLength(50);
    for (const r of rows) expect(Object.keys(r)).toEqual(EXPORT_FIELDS.events);
    const times = rows.map((r) => r.timestamp as string);
    expect(times).toEqual([...times].sort());
    const csv = await call(s.server.url, 'GET', `/v1/export?kind=logs&format=csv&from=${from}&to=${to}`, {
      key: read,
    });
    expect(csv.status).toBe(200);
    const lines = csv.text.trim().split('\r\n');
    expect(lines[0]).toBe(EXPORT_FIELDS.logs.join(','));
    expect(lines).toHaveLength(1 + 3);
  });

  it('hot-path snapshots are computed from the rows ClickHouse holds', async () => {
    const read = (await createApiKey(s.server.store.sql, 'acme', { scope: 'read' })).key;
    // A batch makes the server take a snapshot (every writer batch, here).
    const write = (await createApiKey(s.server.store.sql, 'acme')).key;
    await send(s.server.url, write, [requestLog({ route: '/health', status: 404 })]);
    let snap: { events?: { name: string; count: number }[]; paths?: { route: string; count: number }[] } = {};
    await until(async () => {
      const r = await call(s.server.url, 'GET', '/v1/snapshots/latest', { key: read });
      snap = r.json ?? {};
      return r.status === 200 && (snap.paths ?? []).some((p) => p.route === '/health');
    }, 'a snapshot with the last batch');
    // The last 24 h: the 10 events sent, not the restored ones 6 days old.
    expect(snap.events).toEqual([{ name: 'conversation_started', count: 10 }]);
    expect(snap.paths).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ method: 'GET', route: '/users/:id', count: 2, errorRate: 0.5 }),
        expect.objectContaining({ route: '/health', count: 1, clientErrorRate: 1 }),
      ]),
    );
  });
});
