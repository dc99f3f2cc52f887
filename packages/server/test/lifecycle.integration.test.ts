/**
 * The lifecycle jobs on PGlite and Postgres with detail spread over 10 days: archive → verify the files
 * → cleanup removes exactly the archived rows → rollups unchanged → restore brings them back without
 * duplicates; cleanup refuses a missing or corrupt file; one runner per job; a crash mid-job loses
 * nothing and the next run finishes.
 */
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { isoTime, uuidv7 } from '@tally/core';
import { createStore, listJobRuns, listManifests, type Store } from '@tally/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { engines, eventRow, openStore, PG_URL, requestLog } from '../../store/test/support/stores.js';
import { cutoff, runArchive } from '../src/lifecycle/archive.js';
import { runCleanup } from '../src/lifecycle/cleanup.js';
import { runJob } from '../src/lifecycle/jobs.js';
import { runRestore } from '../src/lifecycle/restore.js';
import { createLocalTarget } from '../src/lifecycle/targets/local.js';
import type { ArchiveTarget } from '../src/lifecycle/targets/target.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-11-23T12:00:00.000Z');
const TENANTS = ['acme', 'globex'];

/** 10 days × 2 tenants of events (and request logs), at fixed times so each day has rows. */
async function seed(store: Store): Promise<{ events: number; logs: number }> {
  const events = [];
  const logs = [];
  for (let d = 0; d < 10; d++) {
    for (const tenantId of TENANTS) {
      for (let i = 0; i < 30; i++) {
        const ms = NOW - d * DAY - i * 60_000;
        events.push(eventRow({ id: uuidv7(ms), tenantId, timestamp: isoTime(ms) }));
        if (i % 3 === 0)
          logs.push(requestLog({ id: uuidv7(ms), tenantId, timestamp: isoTime(ms), status: i % 2 ? 500 : 200 }));
      }
    }
  }
  await store.insertEvents(events);
  await store.insertRequestLogs(logs);
  return { events: events.length, logs: logs.length };
}

async function rollups(store: Store) {
  const [r] = await store.sql.query<{ e: number; p: number }>(
    `SELECT (SELECT coalesce(sum(count), 0)::int FROM event_counts_hourly) AS e,
            (SELECT coalesce(sum(count), 0)::int FROM path_stats_hourly) AS p`,
  );
  return { events: Number(r?.e), paths: Number(r?.p) };
}

async function countOlder(store: Store, table: string, before: string): Promise<number> {
  const [r] = await store.sql.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM ${table} WHERE ts < $1::timestamptz`,
    [before],
  );
  return Number(r?.n);
}

describe.each(engines)('lifecycle (%s)', (engine) => {
  let store: Store;
  let dispose: () => Promise<void>;
  let target: ArchiveTarget;
  let dir: ReturnType<typeof tempDir>;
  let seeded: { events: number; logs: number };
  const before = cutoff(NOW, 3);
  beforeAll(async () => {
    ({ store, dispose } = await openStore(engine));
    dir = tempDir('tally-archive-');
    target = createLocalTarget(dir.dir);
    seeded = await seed(store);
  }, 60_000);
  afterAll(async () => {
    await dispose();
    dir.cleanup();
  });

  it('archive writes one verified gzip JSONL file per tenant, table and day, with a manifest; a rerun writes nothing', async () => {
    const oldEvents = await countOlder(store, 'events', before);
    const oldLogs = await countOlder(store, 'request_logs', before);
    expect(oldEvents).toBeGreaterThan(0);
    const report = await runArchive(store, target, { olderThanDays: 3, now: NOW });
    expect(report.rows).toBe(oldEvents + oldLogs);
    const manifests = await listManifests(store.sql);
    expect(manifests.length).toBe(report.files);
    for (const m of manifests) {
      const data = await target.get(m.key);
      expect(data, m.key).toBeDefined();
      expect(
        createHash('sha256')
          .update(data as Uint8Array)
          .digest('hex'),
      ).toBe(m.sha256);
      const lines = gunzipSync(data as Uint8Array)
        .toString()
        .trim()
        .split('\n');
      expect(lines).toHaveLength(m.rows);
      const rows = lines.map((l) => JSON.parse(l) as { tenant_id: string; ts: string });
      expect(new Set(rows.map((r) => r.tenant_id))).toEqual(new Set([m.tenantId]));
      expect(rows.every((r) => Date.parse(r.ts) < Date.parse(before))).toBe(true);
      expect(m.bytes).toBeLessThan(m.rawBytes);
    }
    // Cutoff: midnight UTC 3 days back (2026-11-20T00:00Z); the days 4–9 back are whole days before it.
    expect(new Set(manifests.map((m) => m.day)).size).toBe(6);
    const again = await runArchive(store, target, { olderThanDays: 3, now: NOW });
    expect(again.files).toBe(0);
  });

  it('cleanup deletes exactly the archived rows, in batches, and leaves the rollups as they were', async () => {
    const rollupsBefore = await rollups(store);
    const totalBefore = await store.totals();
    const dry = await runCleanup(store, target, { dryRun: true });
    expect(dry.deleted).toBe(0);
    const archived = (await listManifests(store.sql)).reduce((a, m) => a + m.rows, 0);
    expect(dry.eligible).toBe(archived);
    const report = await runCleanup(store, target, { batchRows: 7 });
    expect(report.deleted).toBe(archived);
    expect(report.refused).toEqual([]);
    expect(await countOlder(store, 'events', before)).toBe(0);
    expect(await countOlder(store, 'request_logs', before)).toBe(0);
    const after = await store.totals();
    expect(after.events + after.requestLogs).toBe(totalBefore.events + totalBefore.requestLogs - archived);
    expect(await rollups(store)).toEqual(rollupsBefore);
    expect(rollupsBefore.events).toBe(seeded.events);
    expect((await runCleanup(store, target)).deleted).toBe(0); // nothing left to clean
  });

  it('restore brings a day back without duplicates; restoring twice adds nothing', async () => {
    const day = isoTime(NOW - 5 * DAY).slice(0, 10);
    const parts = await listManifests(store.sql, { tenantId: 'acme', day });
    const rows = parts.reduce((a, m) => a + m.rows, 0);
    const first = await runRestore(store, target, 'acme', day);
    expect(first).toEqual({ parts: parts.length, restored: rows, alreadyPresent: 0 });
    const second = await runRestore(store, target, 'acme', day);
    expect(second).toEqual({ parts: parts.length, restored: 0, alreadyPresent: rows });
    const [r] = await store.sql.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM events WHERE tenant_id = 'acme' AND (ts AT TIME ZONE 'UTC')::date = $1::date`,
      [day],
    );
    expect(Number(r?.n)).toBe(30);
    // Restored rows are not archived again, nor cleaned by the scheduled cleanup.
    expect((await runArchive(store, target, { olderThanDays: 3, now: NOW })).files).toBe(0);
    expect((await runCleanup(store, target)).deleted).toBe(0);
    expect((await runCleanup(store, target, { includeRestored: true })).deleted).toBe(rows);
    await expect(runRestore(store, target, 'nobody', day)).rejects.toMatchObject({ code: 'TALLY_NOT_FOUND' });
  });

  it('cleanup refuses a part whose file is missing or corrupt, and keeps its rows', async () => {
    // Two more days become old enough; archive them, then damage their files.
    const later = NOW + 2 * DAY;
    const report = await runArchive(store, target, { olderThanDays: 3, now: later });
    expect(report.files).toBeGreaterThan(0);
    const fresh = (await listManifests(store.sql, { uncleaned: true })).filter((m) => m.table === 'events');
    const [missing, corrupt] = fresh;
    await target.delete((missing as { key: string }).key);
    const bytes = (await target.get((corrupt as { key: string }).key)) as Uint8Array;
    bytes[bytes.length - 5] = (bytes[bytes.length - 5] as number) ^ 0xff;
    await target.put((corrupt as { key: string }).key, bytes);
    const rowsBefore = (await store.totals()).events;
    const cleaned = await runCleanup(store, target);
    expect(cleaned.refused.map((r) => r.key).sort()).toEqual([missing?.key, corrupt?.key].sort());
    expect(cleaned.refused.find((r) => r.key === missing?.key)?.problem).toMatch(/missing/);
    expect(cleaned.refused.find((r) => r.key === corrupt?.key)?.problem).toMatch(/SHA-256/);
    const cleanedEventRows = fresh.slice(2).reduce((a, m) => a + m.rows, 0);
    expect((await store.totals()).events).toBe(rowsBefore - cleanedEventRows);
    // Those two parts are still uncleaned, their rows in place.
    const left = await listManifests(store.sql, { uncleaned: true });
    expect(left.map((m) => m.key).sort()).toEqual([missing?.key, corrupt?.key].sort());
    // The cleanup job records the refusal as a failed run.
    const job = await runJob('cleanup', { store, target, archiveAfterDays: 3, keepSnapshots: 5 });
    expect(job).toMatchObject({ outcome: 'failed', error: expect.stringMatching(/refused 2/) });
    expect((await listJobRuns(store.sql, 'cleanup'))[0]).toMatchObject({ outcome: 'failed' });
  });
});

describe.each(engines)('lifecycle runners (%s)', (engine) => {
  it('two runners start the same job at once: one runs, the other records a skip', async () => {
    const { store, dispose } = await openStore(engine);
    const dir = tempDir('tally-archive-');
    let second: Store | undefined;
    try {
      await seed(store);
      // A target that takes its time, so both runners overlap.
      const local = createLocalTarget(dir.dir);
      const slow: ArchiveTarget = {
        ...local,
        put: async (k, d) => (await new Promise((r) => setTimeout(r, 30)), local.put(k, d)),
      };
      // Postgres: a second store is a second process's connection pool. PGlite: same process.
      second =
        engine === 'postgres' ? await createStore({ kind: 'postgres', url: PG_URL, schema: store.schema }) : store;
      const ctx = (s: Store) => ({ store: s, target: slow, archiveAfterDays: 3, keepSnapshots: 5 });
      const [a, b] = await Promise.all([runJob('archive', ctx(store)), runJob('archive', ctx(second))]);
      expect([a.outcome, b.outcome].sort()).toEqual(['ok', 'skipped']);
      const runs = await listJobRuns(store.sql, 'archive');
      expect(runs.map((r) => r.outcome).sort()).toEqual(['ok', 'skipped']);
      // Nothing archived twice.
      const manifests = await listManifests(store.sql);
      expect(new Set(manifests.map((m) => `${m.table}/${m.tenantId}/${m.day}`)).size).toBe(manifests.length);
    } finally {
      if (second && second !== store) await second.close();
      await dispose();
      dir.cleanup();
    }
  }, 120_000);

  it('a crash in the middle of archive or cleanup loses no row, and the next run finishes the job', async () => {
    const { store, dispose } = await openStore(engine);
    const dir = tempDir('tally-archive-');
    try {
      const seeded = await seed(store);
      const local = createLocalTarget(dir.dir);
      let puts = 0;
      const crashing: ArchiveTarget = {
        ...local,
        async put(k, d) {
          if (++puts === 4) throw new Error('disk gone (test)');
          return local.put(k, d);
        },
      };
      await expect(runArchive(store, crashing, { olderThanDays: 3, now: NOW })).rejects.toThrow(/disk gone/);
      expect((await listManifests(store.sql)).length).toBe(3);
      const finished = await runArchive(store, local, { olderThanDays: 3, now: NOW });
      expect(finished.files).toBeGreaterThan(0);
      const manifests = await listManifests(store.sql);
      const archivedRows = manifests.reduce((a, m) => a + m.rows, 0);
      const before = cutoff(NOW, 3);
      expect(archivedRows).toBe(
        (await countOlder(store, 'events', before)) + (await countOlder(store, 'request_logs', before)),
      );

      // Cleanup dies after a few DELETE statements (as if the process were killed).
      let deletes = 0;
      const dying: Store = {
        ...store,
        sql: {
          ...store.sql,
          query: (text, params) => {
            if (text.startsWith('DELETE') && ++deletes === 5) return Promise.reject(new Error('killed (test)'));
            return store.sql.query(text, params);
          },
        },
      };
      await expect(runCleanup(dying, local, { batchRows: 10 })).rejects.toThrow(/killed/);
      const partial = await store.totals();
      expect(partial.events + partial.requestLogs).toBeGreaterThan(seeded.events + seeded.logs - archivedRows);
      const done = await runCleanup(store, local, { batchRows: 10 });
      expect(done.refused).toEqual([]);
      const after = await store.totals();
      // Every seeded row is either still in the database or in exactly one verified archive file.
      expect(after.events + after.requestLogs + archivedRows).toBe(seeded.events + seeded.logs);
      expect(await countOlder(store, 'events', before)).toBe(0);
      expect((await rollups(store)).events).toBe(seeded.events);
    } finally {
      await dispose();
      dir.cleanup();
    }
  }, 120_000);
});
