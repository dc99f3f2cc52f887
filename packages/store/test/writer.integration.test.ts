/**
 * The exactly-once writer against the real engines: batching many callers, duplicates, bad rows
 * isolated into the dead-letter spool and replayed after a fix, overload, shutdown spooling and
 * recovery, and the SDK's direct sink end to end. The rollup = detail invariant is checked after each.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineCatalog, t } from '@tally/core';
import { createTracker } from '@tally/node';
import { spoolFileOwner } from '@tally/spool';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDirectSink, createStore, createWriter, type DeadLetter, type Store, type Writer } from '../src/index.js';
import { freePort, tempDir } from '../../node/test/support/helpers.js';
import { engines, eventRow, eventRows, openStore } from './support/stores.js';

describe.each(engines)('Writer on %s', (engine) => {
  let store: Store;
  let dispose: () => Promise<void>;
  const cleanups: (() => unknown)[] = [];
  beforeAll(async () => {
    ({ store, dispose } = await openStore(engine));
  });
  afterAll(() => dispose());
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    const totals = await store.totals();
    expect(totals.eventRollup).toBe(totals.events);
    expect(totals.pathRollup).toBe(totals.requestLogs);
  });

  function makeWriter(opts: Partial<Parameters<typeof createWriter>[0]> = {}): { writer: Writer; dir: string } {
    const tmp = tempDir('tally-writer-');
    const writer = createWriter({ store, spoolDir: tmp.dir, retry: { initialMs: 5, maxMs: 50 }, ...opts });
    cleanups.push(tmp.cleanup, () => writer.close({ timeoutMs: 2000 }));
    return { writer, dir: tmp.dir };
  }

  it('groups many callers into batches and answers each with its own counts', async () => {
    const { writer } = makeWriter({ maxBatchRows: 250 });
    const before = (await store.totals()).events;
    const calls = Array.from({ length: 40 }, () => eventRows(25));
    const results = await Promise.all(calls.map((rows) => writer.writeEvents(rows)));
    for (const r of results)
      expect(r).toEqual({ ok: true, stored: 25, duplicates: 0, duplicateIndexes: [], rejected: [], spooled: 0 });
    expect((await store.totals()).events - before).toBe(1000);
    expect(writer.stats().batches).toBeLessThanOrEqual(8);
  });

  it('a batch delivered twice, and half-overlapping, is stored once; rollups do not move on the repeat', async () => {
    const { writer } = makeWriter();
    const batch = eventRows(300);
    expect(await writer.writeEvents(batch)).toMatchObject({ stored: 300, duplicates: 0 });
    const mid = await store.totals();
    expect(await writer.writeEvents(batch)).toMatchObject({ stored: 0, duplicates: 300 });
    expect(await store.totals()).toEqual(mid);
    const shuffled = [...eventRows(150), ...batch.slice(150)].sort(() => Math.random() - 0.5);
    const result = await writer.writeEvents(shuffled);
    expect(result).toMatchObject({ stored: 150, duplicates: 150 });
    // Which positions were the duplicates, exactly (live streams show only the rest).
    const old = new Set(batch.map((r) => r.id));
    expect(result.duplicateIndexes).toEqual(shuffled.flatMap((r, i) => (old.has(r.id) ? [i] : [])));
    expect((await store.totals()).events - mid.events).toBe(150);
  });

  it('one invalid row: the rest is stored, it goes to the dead-letter spool, and replay stores it once fixed', async () => {
    const { writer } = makeWriter();
    const before = (await store.totals()).events;
    const rows = eventRows(50);
    const poisoned = { ...eventRow(), properties: { note: 'a NUL \u0000 Postgres refuses in jsonb' } };
    rows.splice(17, 0, poisoned);
    const result = await writer.writeEvents(rows);
    expect(result).toMatchObject({ ok: true, stored: 50, duplicates: 0, spooled: 0 });
    expect(result.rejected).toEqual([
      {
        index: 17,
        id: poisoned.id,
        code: 'TALLY_INVALID_ROW',
        message: expect.stringMatching(/\\u0000|unicode|null/i),
      },
    ]);
    expect((await store.totals()).events - before).toBe(50);
    const [line] = readFileSync(writer.deadLetterFile, 'utf8').trim().split('\n');
    const letter = JSON.parse(line as string) as DeadLetter;
    expect(letter).toMatchObject({ kind: 'event', code: 'TALLY_INVALID_ROW', row: { id: poisoned.id } });
    expect(letter.sqlstate).toMatch(/^22/);
    const [meta] = await store.sql.query<{ code: string }>('SELECT code FROM dead_letters WHERE event_id = $1', [
      poisoned.id,
    ]);
    expect(meta?.code).toBe('TALLY_INVALID_ROW');

    // An operator fixes the line, then replays the file: stored once, even if replayed twice.
    (letter.row as { properties: unknown }).properties = { note: 'fixed' };
    writeFileSync(writer.deadLetterFile, `${JSON.stringify(letter)}\n`);
    expect(await writer.replay(writer.deadLetterFile)).toEqual({
      stored: 1,
      duplicates: 0,
      stillFailing: 0,
      unreadable: 0,
    });
    expect(existsSync(writer.deadLetterFile)).toBe(false);
    expect((await store.totals()).events - before).toBe(51);
  });

  it('rows with a broken envelope are dead-lettered before the database sees them', async () => {
    const { writer } = makeWriter();
    const result = await writer.writeEvents([eventRow(), eventRow({ id: 'nope' }), eventRow({ timestamp: 'never' })]);
    expect(result.stored).toBe(1);
    expect(result.rejected.map((r) => [r.index, r.code])).toEqual([
      [1, 'TALLY_INVALID_ENVELOPE'],
      [2, 'TALLY_INVALID_ENVELOPE'],
    ]);
  });

  it('a dead-letter file that cannot be written: the call answers TALLY_SPOOL_FAILED, nothing is dropped', async () => {
    const tmp = tempDir('tally-writer-');
    cleanups.push(tmp.cleanup);
    const blocked = `${tmp.dir}/not-a-dir`;
    writeFileSync(blocked, 'a file where the spool directory should be');
    const errors: string[] = [];
    const writer = createWriter({ store, spoolDir: blocked, onError: (e) => errors.push(e.code) });
    cleanups.push(() => writer.close({ timeoutMs: 2000 }));
    const good = eventRow();
    const result = await writer.writeEvents([good, eventRow({ id: 'nope' })]);
    expect(result).toMatchObject({ ok: false, code: 'TALLY_SPOOL_FAILED', stored: 1, rejected: [] });
    expect(errors).toContain('TALLY_SPOOL_FAILED');
    // Sent again, the good row dedupes; the bad one is still refused the same way, never lost.
    expect(await writer.writeEvents([good, eventRow({ id: 'nope' })])).toMatchObject({ ok: false, duplicates: 1 });
  });

  it('answers TALLY_OVERLOADED at once when its queue is full, taking nothing', async () => {
    const { writer } = makeWriter({ maxQueueRows: 100, flushIntervalMs: 50 });
    const first = writer.writeEvents(eventRows(80));
    expect(await writer.writeEvents(eventRows(50))).toMatchObject({ ok: false, code: 'TALLY_OVERLOADED', stored: 0 });
    expect(await first).toMatchObject({ stored: 80 });
  });

  it('close drains what is queued, then refuses new writes', async () => {
    const { writer } = makeWriter({ flushIntervalMs: 1000 });
    const pending = writer.writeEvents(eventRows(10));
    const stats = await writer.close();
    expect(await pending).toMatchObject({ stored: 10 });
    expect(stats).toMatchObject({ queued: 0, inFlight: 0, spooled: 0 });
    expect(await writer.writeEvents(eventRows(1))).toMatchObject({ ok: false, code: 'TALLY_SHUTDOWN' });
  });

  it('request logs go through the same path', async () => {
    const { writer } = makeWriter();
    const now = new Date().toISOString();
    const log = {
      id: eventRow().id,
      tenantId: 'tenant-a',
      method: 'POST',
      route: '/v1/things',
      url: '/v1/things',
      status: 201,
      durationMs: 3.2,
      timestamp: now,
      receivedAt: now,
    };
    expect(await writer.writeRequestLogs([log, log])).toMatchObject({ stored: 1, duplicates: 1 });
  });

  it('cuts batches by estimated bytes as well as rows (request logs carry bodies)', async () => {
    const { writer } = makeWriter({ maxBatchRows: 1000, maxBatchBytes: 64 * 1024 });
    const now = new Date().toISOString();
    const logs = Array.from({ length: 20 }, () => ({
      id: eventRow().id,
      tenantId: 'tenant-a',
      method: 'POST',
      route: '/upload',
      url: '/upload',
      status: 200,
      durationMs: 1,
      requestBody: 'x'.repeat(16 * 1024),
      timestamp: now,
      receivedAt: now,
    }));
    const before = writer.stats().batches;
    expect(await writer.writeRequestLogs(logs)).toMatchObject({ stored: 20 });
    // ~16.5 KB a row: at most 3 rows fit in 64 KiB, so 20 rows take at least 7 statements.
    expect(writer.stats().batches - before).toBeGreaterThanOrEqual(7);
  });

  it('the direct sink: track() → writer → store, exactly once', async () => {
    const { writer } = makeWriter();
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const catalog = defineCatalog({ hit: { properties: { i: t.integer() }, required: ['i'] } });
    const tracker = createTracker({
      catalog,
      sink: createDirectSink(writer),
      spool: tmp.dir,
      context: { tenantId: 'direct' },
    });
    for (let i = 0; i < 1000; i++) tracker.track('hit', { i });
    expect(await tracker.shutdown()).toMatchObject({ delivered: 1000, spooled: 0, dropped: {} });
    const [row] = await store.sql.query<{ n: string; distinct_i: string }>(
      `SELECT count(*) AS n, count(DISTINCT properties->>'i') AS distinct_i FROM events WHERE tenant_id = 'direct'`,
    );
    expect([Number(row?.n), Number(row?.distinct_i)]).toEqual([1000, 1000]);
  });
});

// Opens PGlite twice inside the test, which has taken over 20 s on a busy 2-core machine.
describe('Writer when the database is unreachable', { timeout: 60_000 }, () => {
  it('retries, spools at the close deadline, and a later writer recovers the spool into the database', async () => {
    const port = await freePort();
    const tmp = tempDir('tally-writer-');
    const down = await createStore({
      kind: 'postgres',
      url: `postgres://postgres@127.0.0.1:${port}/test`,
      schema: 'x',
    }).catch((e: unknown) => e);
    // Opening a Postgres store against a closed port fails fast with a connection error, not a hang.
    expect((down as { code?: string }).code).toMatch(/ECONNREFUSED|CONNECT/);

    // A store that goes away after opening: PGlite closed under the writer stands in for a lost server.
    const { store, dispose } = await openStore('pglite');
    const writer = createWriter({ store, spoolDir: tmp.dir, retry: { initialMs: 5, maxMs: 20 } });
    const rows = eventRows(40);
    await store.close();
    const pending = writer.writeEvents(rows);
    const stats = await writer.close({ timeoutMs: 200 });
    expect(await pending).toMatchObject({ ok: true, stored: 0, spooled: 40 });
    expect(stats.retries).toBeGreaterThan(0);

    const again = await openStore('pglite');
    const recovering = createWriter({ store: again.store, spoolDir: tmp.dir });
    expect(await recovering.recoverPending()).toEqual({ stored: 40, duplicates: 0, stillFailing: 0, unreadable: 0 });
    expect((await again.store.totals()).events).toBe(40);
    // Recovered files are gone: every row is stored.
    expect(readdirSync(tmp.dir).filter((f) => spoolFileOwner(f))).toEqual([]);
    await recovering.close();
    await again.dispose();
    await dispose().catch(() => undefined);
    tmp.cleanup();
  });

  it('recovers pending files written before the spool format, and one whose recovery died, exactly once', async () => {
    const tmp = tempDir('tally-writer-');
    const child = spawn(process.execPath, ['-e', '0']);
    await once(child, 'exit');
    const dead = child.pid as number;
    const lines = (rows: ReturnType<typeof eventRows>) =>
      rows.map((row) => `${JSON.stringify({ kind: 'event', row })}\n`).join('');
    const rows = eventRows(8);
    writeFileSync(join(tmp.dir, `pending-${dead}-1000.jsonl`), lines(rows.slice(0, 5)));
    // A recovery cut off mid-way: its rows may be stored already (the first two), or not.
    writeFileSync(join(tmp.dir, `pending-${dead}-999.jsonl.recovering-${dead}`), lines(rows.slice(3)));
    const { store, dispose } = await openStore('pglite');
    const writer = createWriter({ store, spoolDir: tmp.dir });
    await writer.writeEvents(rows.slice(3, 5));
    expect(await writer.recoverPending()).toEqual({ stored: 6, duplicates: 4, stillFailing: 0, unreadable: 0 });
    expect((await store.totals()).events).toBe(8);
    expect(readdirSync(tmp.dir)).toEqual([]);
    await writer.close();
    await dispose();
    tmp.cleanup();
  });
});
