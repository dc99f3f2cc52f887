/**
 * The lifecycle jobs with ClickHouse holding the detail (both engines: Debian's 18.16 server and chDB),
 * the control plane (manifests, job runs) in PGlite, as `tally serve` runs them with CLICKHOUSE_URL:
 * archive → verify → cleanup (whole partitions dropped, tenant days deleted by a mutation, late rows
 * kept) → restore, with counts, query answers and the full export equal before and after; a second
 * archive run archives nothing new; a file that fails to verify is never cleaned. And archives cross
 * engines: a day archived from ClickHouse restores into Postgres (PGlite) and the other way round.
 */
import { randomUUID } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import {
  ARCHIVE_COLUMNS,
  type DetailStore,
  type EventRow,
  EXPORT_FIELDS,
  isoTime,
  type RequestLogRow,
  uuidv7,
} from '@tally/core';
import { listManifests, relationalDetail, type Store } from '@tally/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { cutoff, runArchive } from '../../server/src/lifecycle/archive.js';
import { runCleanup } from '../../server/src/lifecycle/cleanup.js';
import { runRestore } from '../../server/src/lifecycle/restore.js';
import { takeStorageStats } from '../../server/src/lifecycle/jobs.js';
import { createLocalTarget } from '../../server/src/lifecycle/targets/local.js';
import type { ArchiveTarget } from '../../server/src/lifecycle/targets/target.js';
import { exportStream } from '../../server/src/query/export.js';
import { parsedQuery } from '../../store/test/support/query-data.js';
import { openStore as openRelational } from '../../store/test/support/stores.js';
import { createClickHouseDetail } from '../src/lifecycle.js';
import { type ClickHouseStore, localSerialize } from '../src/store.js';
import { engines, openStore } from './support/engines.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-11-23T12:00:00.000Z');
const TENANTS = ['acme', 'globex'];
const day = (daysBack: number) => isoTime(NOW - daysBack * DAY).slice(0, 10);

/** Text that has broken escaping before: quotes, backslashes, line breaks, non-BMP characters. */
const HOSTILE = `it's "quoted" \\ back\\slash\nnew line\ttab 🎉 ünï`;

function eventAt(tenantId: string, ms: number, i: number): EventRow {
  return {
    id: uuidv7(ms),
    tenantId,
    name: i % 3 === 0 ? 'signup' : 'view',
    ...(i % 4 === 0 ? {} : { userId: `u${i % 5}` }),
    ...(i % 4 === 0 ? { anonymousId: `anon-${i}` } : {}),
    properties: {
      n: i,
      price: i * 1.25,
      plan: i % 2 ? 'pro' : 'free',
      paid: i % 2 === 1,
      nested: { depth: [1, { x: 'y' }], empty: {} },
      text: HOSTILE,
      missing: null,
    },
    context: { service: 'lifecycle-test', ...(i % 5 === 0 ? { sampleRate: 0.5 } : {}) },
    timestamp: isoTime(ms),
    receivedAt: isoTime(ms + 7),
  };
}

function logAt(tenantId: string, ms: number, i: number): RequestLogRow {
  return {
    id: uuidv7(ms),
    tenantId,
    method: i % 2 ? 'POST' : 'GET',
    ...(i % 7 === 0 ? {} : { route: '/users/:id' }),
    url: `/users/${i}?q=${encodeURIComponent(HOSTILE)}`,
    status: i % 4 === 0 ? 500 : i % 4 === 1 ? 404 : 200,
    durationMs: 0.5 + i * 3.25,
    ...(i % 3 === 0
      ? {
          requestId: `req-${i}`,
          requestBytes: 10 * i,
          responseBytes: 20 * i,
          userId: `u${i % 5}`,
          apiKeyId: 'key-1',
          ip: '10.0.0.1',
          userAgent: HOSTILE,
          headers: { 'user-agent': 'test', authorization: '[REDACTED]' },
          requestBody: `{"a":"${i}"}`,
          responseBody: HOSTILE,
          bodyTruncated: true,
          streamBody: 'data: 1\n\n',
          aborted: true,
          error: 'boom',
        }
      : {}),
    timestamp: isoTime(ms),
    receivedAt: isoTime(ms + 3),
  };
}

/** 10 days × 2 tenants: 30 events and 15 request logs a tenant and day, 02:20 to 12:00 UTC. */
function seedRows(): { events: EventRow[]; logs: RequestLogRow[] } {
  const events: EventRow[] = [];
  const logs: RequestLogRow[] = [];
  for (let d = 0; d < 10; d++) {
    for (const tenantId of TENANTS) {
      for (let i = 0; i < 30; i++) {
        const ms = NOW - d * DAY - i * 20 * 60_000;
        events.push(eventAt(tenantId, ms, i));
        if (i % 2 === 0) logs.push(logAt(tenantId, ms, i));
      }
    }
  }
  return { events, logs };
}

/** The control plane of `tally serve` with ClickHouse: the relational store, its detail in ClickHouse. */
const withDetail = (control: Store, detail: DetailStore): Store => ({ ...control, detail });

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text;
}

/** Everything a reader sees of the detail: counts, a query's answer, and the full export of each kind. */
async function observe(ch: ClickHouseStore, store: Store) {
  const counts = await ch.client.query<{ t: string; tenant: string; day: number; name: string; n: number }>(
    `SELECT 'e' AS t, tenant_id AS tenant, toYYYYMMDD(ts) AS day, name, count() AS n FROM ${ch.database}.events
     GROUP BY tenant, day, name
     UNION ALL
     SELECT 'l' AS t, tenant_id AS tenant, toYYYYMMDD(ts) AS day, method AS name, count() AS n FROM ${ch.database}.request_logs
     GROUP BY tenant, day, name`,
  );
  counts.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  const range = { from: day(12), to: isoTime(NOW + DAY) };
  const trends = await ch.query(
    'acme',
    parsedQuery({
      kind: 'trends',
      series: [{ event: 'view' }, { event: 'signup' }],
      interval: 'day',
      tz: 'UTC',
      range,
    }),
    { now: NOW },
  );
  const exports: Record<string, string[]> = {};
  for (const tenant of TENANTS) {
    for (const kind of ['events', 'logs'] as const) {
      const req = { kind, format: 'jsonl' as const, from: NOW - 12 * DAY, to: NOW + DAY };
      const text = await readAll(exportStream(store, tenant, req, { pageRows: 37 }));
      exports[`${tenant}/${kind}`] = text.split('\n').filter(Boolean).sort();
    }
  }
  return { counts, totals: await ch.totals(), trends: { columns: trends.columns, rows: trends.rows }, exports };
}

async function countOlder(ch: ClickHouseStore, table: string, before: string): Promise<number> {
  const [r] = await ch.client.query<{ n: number }>(
    `SELECT count() AS n FROM ${ch.database}.${table} WHERE ts_ms < ${Date.parse(before)}`,
  );
  return Number(r?.n);
}

describe.each(engines)('lifecycle with ClickHouse on %s', (engine) => {
  let ch: ClickHouseStore;
  let closeCh: () => Promise<void>;
  let control: Store;
  let closeControl: () => Promise<void>;
  let store: Store;
  let target: ArchiveTarget;
  let dir: ReturnType<typeof tempDir>;
  let before: Awaited<ReturnType<typeof observe>>;
  const progress: string[] = [];
  const cut = cutoff(NOW, 3);

  beforeAll(async () => {
    const serialize = localSerialize();
    ({ store: ch, cleanup: closeCh } = await openStore(engine, { serialize }));
    ({ store: control, dispose: closeControl } = await openRelational('pglite'));
    // Fast polls: the test waits for mutations many times.
    store = withDetail(control, createClickHouseDetail(ch, { serialize, mutationPollMs: 20 }));
    dir = tempDir('tally-ch-archive-');
    target = createLocalTarget(dir.dir);
    const { events, logs } = seedRows();
    await ch.insertEvents(events);
    await ch.insertRequestLogs(logs);
    before = await observe(ch, store);
    expect(before.totals.events).toBe(events.length);
  }, 120_000);
  afterAll(async () => {
    await closeCh?.();
    await closeControl?.();
    dir?.cleanup();
  });

  it('archive writes one verified file per tenant, table and day, in the relational shape; a rerun writes nothing', async () => {
    const oldRows = (await countOlder(ch, 'events', cut)) + (await countOlder(ch, 'request_logs', cut));
    expect(oldRows).toBeGreaterThan(0);
    const report = await runArchive(store, target, { olderThanDays: 3, now: NOW });
    expect(report.rows).toBe(oldRows);
    const manifests = await listManifests(store.sql);
    expect(manifests).toHaveLength(report.files);
    // Cutoff: midnight UTC 3 days back; the days 4–9 back are whole days before it, for 2 tenants, 2 tables.
    expect(new Set(manifests.map((m) => m.day)).size).toBe(6);
    expect(manifests).toHaveLength(6 * 2 * 2);
    for (const m of manifests) {
      const lines = gunzipSync((await target.get(m.key)) as Uint8Array)
        .toString()
        .trim()
        .split('\n');
      expect(lines).toHaveLength(m.rows);
      for (const line of lines) {
        const row = JSON.parse(line) as Record<string, unknown>;
        // The relational table's columns, in its order: the file restores into either engine.
        expect(Object.keys(row)).toEqual(ARCHIVE_COLUMNS[m.table]);
        expect(row.tenant_id).toBe(m.tenantId);
        expect(row.ts).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?\+00:00$/);
        expect(isoTime(Date.parse(row.ts as string)).slice(0, 10)).toBe(m.day);
      }
      expect(m.bytes).toBeLessThan(m.rawBytes);
    }
    const events = manifests.filter((m) => m.table === 'events');
    const sample = JSON.parse(
      gunzipSync((await target.get(events[0]?.key as string)) as Uint8Array)
        .toString()
        .split('\n')[0] as string,
    ) as Record<string, unknown>;
    expect(sample.properties).toMatchObject({ text: HOSTILE, nested: { depth: [1, { x: 'y' }], empty: {} } });
    expect((await runArchive(store, target, { olderThanDays: 3, now: NOW })).files).toBe(0);
  });

  it('cleanup never touches a part whose file fails to verify, keeps rows stored after the archive, and drops whole partitions', async () => {
    const manifests = await listManifests(store.sql, { uncleaned: true });
    // acme's events of 5 days back: a file that no longer verifies.
    const corrupt = manifests.find((m) => m.table === 'events' && m.tenantId === 'acme' && m.day === day(5));
    const good = (await target.get(corrupt?.key as string)) as Uint8Array;
    const bad = Uint8Array.from(good);
    bad[bad.length - 5] = (bad[bad.length - 5] as number) ^ 0xff;
    await target.put(corrupt?.key as string, bad);
    // A late event of globex, 6 days back, stored after the archive: no file holds it.
    const late = eventAt('globex', Date.parse(`${day(6)}T10:00:00Z`) + 123, 1);
    expect(await ch.insertEvents([late])).toEqual([late.id]);

    const dry = await runCleanup(store, target, { dryRun: true });
    expect(dry.deleted).toBe(0);
    expect(dry.refused.map((r) => r.key)).toEqual([corrupt?.key]);
    expect(await countOlder(ch, 'events', cut)).toBe(before.totals.events - (await countRecent()) + 1);

    const report = await runCleanup(store, target, { onProgress: (l) => progress.push(l) });
    expect(report.refused).toEqual([{ key: corrupt?.key, problem: expect.stringMatching(/SHA-256/) }]);
    const archived = manifests.filter((m) => m !== corrupt).reduce((a, m) => a + m.rows, 0);
    expect(report.deleted).toBe(archived);
    expect(report.parts).toBe(manifests.length - 1);
    // Left of the old days: the refused part's rows and the late event, nothing else.
    expect(await countOlder(ch, 'events', cut)).toBe((corrupt?.rows as number) + 1);
    expect(await countOlder(ch, 'request_logs', cut)).toBe(0);
    const [kept] = await ch.client.query<{ n: number }>(
      `SELECT count() AS n FROM ${ch.database}.events WHERE id = toUUID('${late.id}')`,
    );
    expect(Number(kept?.n)).toBe(1);
    // request_logs: every tenant's day archived and verified, so each day partition went whole; events of
    // 5 and 6 days back went by a delete of the tenant's day (a refused part, a late row in the partition).
    expect(
      progress.filter((l) => l.startsWith('cleanup request_logs')).every((l) => /whole day partition/.test(l)),
    ).toBe(true);
    expect(progress.find((l) => l.startsWith(`cleanup events globex ${day(6)}`))).toMatch(/tenant’s day/);
    expect(progress.find((l) => l.startsWith(`cleanup events globex ${day(5)}`))).toMatch(/tenant’s day/);
    expect(progress.find((l) => l.startsWith(`cleanup events acme ${day(8)}`))).toMatch(/whole day partition/);
    const partitions = await ch.client.query<{ p: string }>(
      `SELECT DISTINCT partition AS p FROM system.parts WHERE database = '${ch.database}' AND table = 'request_logs' AND active`,
    );
    expect(partitions.map((p) => p.p).sort()).toEqual([0, 1, 2, 3].map((d) => day(d).replaceAll('-', '')).sort());
    // No mutation left running.
    const [pending] = await ch.client.query<{ n: number }>(
      `SELECT count() AS n FROM system.mutations WHERE database = '${ch.database}' AND is_done = 0`,
    );
    expect(Number(pending?.n)).toBe(0);

    // Mended, the file verifies and its rows go; the late event stays until an archive holds it.
    await target.put(corrupt?.key as string, good);
    const again = await runCleanup(store, target);
    expect(again).toMatchObject({ refused: [], deleted: corrupt?.rows, parts: 1 });
    expect(await countOlder(ch, 'events', cut)).toBe(1);
    const next = await runArchive(store, target, { olderThanDays: 3, now: NOW });
    expect(next).toMatchObject({ files: 1, rows: 1 });
    const part2 = (await listManifests(store.sql, { uncleaned: true }))[0];
    expect(part2).toMatchObject({ tenantId: 'globex', table: 'events', day: day(6), part: 2, rows: 1 });
    expect((await runCleanup(store, target)).deleted).toBe(1);
    expect(await countOlder(ch, 'events', cut)).toBe(0);
    expect((await runCleanup(store, target)).deleted).toBe(0);

    const stats = await takeStorageStats(store);
    const events = stats.tables.find((t) => t.table === 'events');
    expect(events).toMatchObject({ engine: 'clickhouse', rows: await countRecent() });
    expect(events?.partitions?.map((p) => p.partition).sort()).toEqual(
      [0, 1, 2, 3].map((d) => day(d).replaceAll('-', '')).sort(),
    );
    expect(events?.totalBytes).toBeGreaterThan(0);
    expect(events?.uncompressedBytes).toBeGreaterThan(0);
    expect(stats.archive.cleanedRows).toBe(stats.archive.rows);
  }, 120_000);

  async function countRecent(): Promise<number> {
    const [r] = await ch.client.query<{ n: number }>(
      `SELECT count() AS n FROM ${ch.database}.events WHERE ts_ms >= ${Date.parse(cut)}`,
    );
    return Number(r?.n);
  }

  it('restore brings every day back exactly once: counts, query answers and the export as before', async () => {
    for (let d = 4; d <= 9; d++) {
      for (const tenant of TENANTS) await runRestore(store, target, tenant, day(d));
    }
    const twice = await runRestore(store, target, 'globex', day(6));
    expect(twice.restored).toBe(0);
    expect(twice.alreadyPresent).toBe(30 + 1 + 15);
    // The late event came back too (from its own part), once.
    const after = await observe(ch, store);
    const late = after.exports['globex/events']?.length as number;
    expect(late).toBe((before.exports['globex/events']?.length as number) + 1);
    expect(after.exports['acme/events']).toEqual(before.exports['acme/events']);
    expect(after.exports['acme/logs']).toEqual(before.exports['acme/logs']);
    expect(after.exports['globex/logs']).toEqual(before.exports['globex/logs']);
    expect(after.trends).toEqual(before.trends);
    expect(after.totals.requestLogs).toBe(before.totals.requestLogs);
    expect(after.totals.events).toBe(before.totals.events + 1);
    expect(await ch.duplicates()).toEqual({ events: 0, requestLogs: 0 });
    // Restored days are not archived again, nor cleaned but on request.
    expect((await runArchive(store, target, { olderThanDays: 3, now: NOW })).files).toBe(0);
    expect((await runCleanup(store, target)).deleted).toBe(0);
    const cleaned = await runCleanup(store, target, { includeRestored: true });
    expect(cleaned.deleted).toBe(
      after.totals.events - (await countRecent()) + before.totals.requestLogs - (await recentLogs()),
    );
    expect(await countOlder(ch, 'events', cut)).toBe(0);
  }, 120_000);

  async function recentLogs(): Promise<number> {
    const [r] = await ch.client.query<{ n: number }>(
      `SELECT count() AS n FROM ${ch.database}.request_logs WHERE ts_ms >= ${Date.parse(cut)}`,
    );
    return Number(r?.n);
  }

  it('exports the same keys as the relational store, and hot paths from the detail rows', async () => {
    const text = await readAll(
      exportStream(store, 'acme', { kind: 'logs', format: 'jsonl', from: NOW - 3 * DAY, to: NOW + DAY }),
    );
    const rows = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(Object.keys(r)).toEqual(EXPORT_FIELDS.logs);
    const full = rows.find((r) => r.requestId !== null);
    expect(full).toMatchObject({ userAgent: HOSTILE, headers: { authorization: '[REDACTED]' }, aborted: true });
    expect(rows.find((r) => r.requestId === null)).toMatchObject({ headers: null, aborted: false, userId: null });

    // Hot paths read the last 24 h of now: rows stored at this moment.
    const now = Date.now();
    const fresh = Array.from({ length: 12 }, (_, i) => logAt('hot', now - i * 1000, i));
    await ch.insertRequestLogs(fresh);
    await ch.insertEvents(Array.from({ length: 5 }, (_, i) => eventAt('hot', now - i * 1000, i)));
    const hot = await (store.detail as DetailStore).hotPaths(20);
    expect(hot.hot?.events).toEqual([
      { name: 'view', count: 3 },
      { name: 'signup', count: 2 },
    ]);
    const total = hot.hot?.paths.reduce((a, p) => a + p.count, 0);
    expect(total).toBe(12);
    for (const p of hot.hot?.paths ?? []) {
      const mine = fresh.filter((l) => l.method === p.method && (l.route ?? '(unmatched)') === p.route);
      expect(p.count).toBe(mine.length);
      expect(p.errorRate).toBeCloseTo(mine.filter((l) => l.status >= 500).length / mine.length);
      expect(p.clientErrorRate).toBeCloseTo(mine.filter((l) => l.status >= 400 && l.status < 500).length / mine.length);
      expect(p.buckets.reduce((a, b) => a + b, 0)).toBe(mine.length);
    }
  });
});

/** One day of `rows`, archived by `from` and restored into `into`, compared through each one's export. */
describe.each(engines)('archives cross engines (ClickHouse on %s, PGlite)', (engine) => {
  let ch: ClickHouseStore;
  let closeCh: () => Promise<void>;
  let pg: Store;
  let closePg: () => Promise<void>;
  beforeAll(async () => {
    ({ store: ch, cleanup: closeCh } = await openStore(engine));
    ({ store: pg, dispose: closePg } = await openRelational('pglite'));
  }, 120_000);
  afterAll(async () => {
    await closeCh?.();
    await closePg?.();
  });

  const d = day(5);
  const dayRows = () => {
    const start = Date.parse(`${d}T00:00:00Z`);
    const tenant = `x-${randomUUID().slice(0, 8)}`;
    return {
      tenant,
      events: Array.from({ length: 40 }, (_, i) => eventAt(tenant, start + i * 1_800_000 + i, i)),
      logs: Array.from({ length: 15 }, (_, i) => logAt(tenant, start + i * 3_600_000 + 1, i)),
    };
  };

  async function archiveLines(detail: DetailStore, table: 'events' | 'request_logs', tenant: string) {
    const lines: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await detail.readDayPage(table, tenant, d, after, 7);
      lines.push(...page.lines.map((l) => l.line));
      if (page.next === undefined) return lines;
      after = page.next;
    }
  }

  async function exported(store: Store, tenant: string, kind: 'events' | 'logs') {
    const req = { kind, format: 'jsonl' as const, from: Date.parse(d), to: Date.parse(d) + DAY };
    const text = await readAll(exportStream(store, tenant, req, { pageRows: 9 }));
    return text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id: string })
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  const chStore = () => withDetail(pg, createClickHouseDetail(ch));

  it('a day archived from ClickHouse restores into PGlite, row for row', async () => {
    const { tenant, events, logs } = dayRows();
    await ch.insertEvents(events);
    await ch.insertRequestLogs(logs);
    const fromCh = createClickHouseDetail(ch);
    const into = relationalDetail(pg);
    const eventLines = await archiveLines(fromCh, 'events', tenant);
    const logLines = await archiveLines(fromCh, 'request_logs', tenant);
    expect(eventLines).toHaveLength(events.length);
    expect(await into.restoreLines('events', eventLines)).toBe(events.length);
    expect(await into.restoreLines('request_logs', logLines)).toBe(logs.length);
    expect(await into.restoreLines('events', eventLines)).toBe(0);
    expect(await exported(pg, tenant, 'events')).toEqual(await exported(chStore(), tenant, 'events'));
    expect(await exported(pg, tenant, 'logs')).toEqual(await exported(chStore(), tenant, 'logs'));
    // Without the store's insert lock (a source that does not give it), nothing is deleted.
    const day = { tenantId: tenant, table: 'events' as const, day: d, ids: events.map((e) => e.id) };
    const unlocked = createClickHouseDetail({
      client: ch.client,
      database: ch.database,
      insertEvents: (rows) => ch.insertEvents(rows),
      insertRequestLogs: (rows) => ch.insertRequestLogs(rows),
    });
    await expect(unlocked.deleteArchived([day], { batchRows: 100, onDeleted: async () => {} })).rejects.toThrow(
      /insert lock/,
    );
    expect(await exported(chStore(), tenant, 'events')).toHaveLength(events.length);
  });

  it('a day archived from PGlite restores into ClickHouse, row for row', async () => {
    const { tenant, events, logs } = dayRows();
    await pg.insertEvents(events);
    await pg.insertRequestLogs(logs);
    const into = createClickHouseDetail(ch);
    const eventLines = await archiveLines(relationalDetail(pg), 'events', tenant);
    const logLines = await archiveLines(relationalDetail(pg), 'request_logs', tenant);
    expect(await into.restoreLines('events', eventLines)).toBe(events.length);
    expect(await into.restoreLines('request_logs', logLines)).toBe(logs.length);
    expect(await into.restoreLines('request_logs', logLines)).toBe(0);
    expect(await exported(chStore(), tenant, 'events')).toEqual(await exported(pg, tenant, 'events'));
    expect(await exported(chStore(), tenant, 'logs')).toEqual(await exported(pg, tenant, 'logs'));
    // And what ClickHouse would archive of it now is what PGlite archived, row for row.
    const parse = (lines: string[]) =>
      lines.map((l) => JSON.parse(l) as { id: string }).sort((a, b) => a.id.localeCompare(b.id));
    const again = await archiveLines(into, 'events', tenant);
    expect(parse(again).map(normalizeTimes)).toEqual(parse(eventLines).map(normalizeTimes));
  });
});

describe.each(engines)('cleanup of a day most of whose rows came after its archive (%s)', (engine) => {
  it('deletes the archived ids by name, in statements of bounded size, and keeps the rest', async () => {
    const serialize = localSerialize();
    const { store: ch, cleanup } = await openStore(engine, { serialize });
    try {
      const start = Date.parse(`${day(5)}T00:00:00Z`);
      const archived = Array.from({ length: 2500 }, (_, i) => eventAt('acme', start + i * 1000, i));
      const late = Array.from({ length: 2100 }, (_, i) => eventAt('acme', start + i * 1000 + 500, i));
      const other = Array.from({ length: 10 }, (_, i) => eventAt('globex', start + i * 1000, i));
      await ch.insertEvents([...archived, ...late, ...other]);
      const detail = createClickHouseDetail(ch, { serialize, mutationPollMs: 20 });
      const done: string[] = [];
      const deleted = await detail.deleteArchived(
        [{ tenantId: 'acme', table: 'events', day: day(5), ids: archived.map((e) => e.id) }],
        { batchRows: 100, onDeleted: async (d, n, method) => void done.push(`${d.tenantId} ${n} ${method}`) },
      );
      expect(deleted).toBe(2500);
      expect(done).toEqual(['acme 2500 tenant-day']);
      const left = await ch.client.query<{ tenant_id: string; n: number }>(
        `SELECT tenant_id, count() AS n FROM ${ch.database}.events GROUP BY tenant_id ORDER BY tenant_id`,
      );
      expect(left.map((r) => [r.tenant_id, Number(r.n)])).toEqual([
        ['acme', 2100],
        ['globex', 10],
      ]);
      const ids = await ch.client.query<{ id: string }>(
        `SELECT toString(id) AS id FROM ${ch.database}.events WHERE tenant_id = 'acme'`,
      );
      expect(new Set(ids.map((r) => r.id))).toEqual(new Set(late.map((e) => e.id)));
    } finally {
      await cleanup();
    }
  }, 120_000);
});

/** Times as instants: both engines write `+00:00` times, but a trailing fraction may differ in length. */
function normalizeTimes(row: { id: string } & Record<string, unknown>) {
  return { ...row, ts: Date.parse(row.ts as string), received_at: Date.parse(row.received_at as string) };
}
