/**
 * The worker-backed store (`createStore({ worker: true })`) beyond the shared suites, which already run
 * on it (support/stores.ts `engines`): close drains, errors keep their codes and classes across the
 * thread, a dead-lettered row still reaches the app's onError, and a worker that dies (terminated, or
 * the process exiting) leaves its accepted rows in the pending spool instead of hanging or losing them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineCatalog, ErrorCodes, t, TallyConfigError, TallyError, TallyValidationError } from '@tally/core';
import { createTracker } from '@tally/node';
import { SPOOL_FILE } from '@tally/spool';
import { afterEach, describe, expect, it } from 'vitest';
import { createDirectSink, createStore, createWriter, type Store, type WorkerBackedStore } from '../src/index.js';
import { fromWire, toWire } from '../src/worker/protocol.js';
import { freePort, tempDir } from '../../node/test/support/helpers.js';
import { engines, eventRow, eventRows, isPostgres, openStore } from './support/stores.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function temp(): string {
  const tmp = tempDir('tally-worker-store-');
  cleanups.push(tmp.cleanup);
  return tmp.dir;
}

const pendingFiles = (dir: string) => readdirSync(dir).filter((f) => SPOOL_FILE.exec(f)?.[1] === 'pending');
const spooledRows = (dir: string) =>
  pendingFiles(dir).flatMap((f) => readFileSync(join(dir, f), 'utf8').trim().split('\n').filter(Boolean));

// Opening PGlite takes seconds on a busy 2-core machine, and some tests open it twice.
const SLOW = { timeout: 60_000 };

describe.each(engines.filter((e) => e.endsWith('-worker')))('worker-backed store: %s', SLOW, (engine) => {
  async function open(): Promise<WorkerBackedStore> {
    const { store, dispose } = await openStore(engine);
    cleanups.push(() => dispose().catch(() => undefined));
    return store as WorkerBackedStore;
  }

  it('store.close() drains what its writers hold: every accepted row is committed before it resolves', async () => {
    const dir = temp();
    const dataDir = join(dir, 'db');
    const store = isPostgres(engine) ? await open() : await createStore({ kind: 'pglite', dataDir, worker: true });
    if (!isPostgres(engine)) await store.migrate();
    const before = (await store.totals()).events;
    // A long batching interval: without the drain these rows would still be waiting in the worker.
    const writer = createWriter({ store, spoolDir: join(dir, 'spool'), flushIntervalMs: 60_000 });
    const results = Array.from({ length: 5 }, () => writer.writeEvents(eventRows(100)));
    await store.sql.query('SELECT 1');
    if (isPostgres(engine)) {
      await writer.close();
      expect((await store.totals()).events - before).toBe(500);
    } else {
      await store.close();
      const again = await createStore({ kind: 'pglite', dataDir });
      expect((await again.totals()).events).toBe(500);
      await again.close();
    }
    for (const r of await Promise.all(results)) expect(r).toMatchObject({ ok: true, stored: 100, spooled: 0 });
    expect(await writer.writeEvents(eventRows(1))).toMatchObject({ ok: false, code: 'TALLY_SHUTDOWN' });
    expect(writer.stats()).toMatchObject({ stored: 500, queued: 0, inFlight: 0, spooled: 0 });
  });

  it('a writer whose writes are all answered reports nothing queued or in flight (not the last reply’s counts)', async () => {
    const store = await open();
    const writer = createWriter({ store, spoolDir: join(temp(), 'spool'), maxBatchRows: 50 });
    const results = await Promise.all(Array.from({ length: 4 }, () => writer.writeEvents(eventRows(50))));
    for (const r of results) expect(r).toMatchObject({ ok: true, stored: 50 });
    expect(writer.stats()).toMatchObject({ stored: 200, queued: 0, inFlight: 0 });
    await writer.close();
  });

  it('errors keep their codes, properties and classes across the thread', async () => {
    const store = await open();
    const error = await store.sql.query('SELECT * FROM no_such_table').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ code: '42P01', message: expect.stringContaining('no_such_table') });
    // Inside a transaction too, and the transaction is rolled back.
    const id = eventRow().id;
    await expect(
      store.sql.transaction(async (tx) => {
        await tx.query(
          `INSERT INTO events (id, tenant_id, name, properties, context, ts, received_at)
           VALUES ($1, 'tx', 'x', '{}', '{}', now(), now())`,
          [id],
        );
        await tx.query('SELECT 1/0');
      }),
    ).rejects.toMatchObject({ code: '22012' });
    expect(await store.sql.query('SELECT id FROM events WHERE id = $1', [id])).toEqual([]);
    // Writer settings are checked on the caller's thread, synchronously, as in-process.
    expect(() => createWriter({ store, spoolDir: temp(), maxBatchRows: 0 })).toThrow(TallyConfigError);
    // A file-system error from the worker keeps its code.
    const writer = createWriter({ store, spoolDir: temp() });
    cleanups.push(() => writer.close());
    await expect(writer.replay('/nonexistent/tally.jsonl')).rejects.toMatchObject({ code: 'ENOENT' });
    // Tally errors come back as their own classes, details included.
    const back = fromWire(
      toWire(new TallyValidationError(ErrorCodes.INVALID_TYPE, 'bad', { event: 'e', path: 'properties.x' })),
    );
    expect(back).toBeInstanceOf(TallyValidationError);
    expect(back).toMatchObject({ code: 'TALLY_INVALID_TYPE', message: 'bad', details: { path: 'properties.x' } });
    expect(fromWire(toWire(new TallyConfigError('no')))).toBeInstanceOf(TallyConfigError);
  });

  it('a data error is dead-lettered in the worker and reported to onError on the caller’s thread', async () => {
    const store = await open();
    const reported: { code: string; sqlstate?: string; rows: number }[] = [];
    const writer = createWriter({ store, spoolDir: temp(), onError: (e) => reported.push(e) });
    cleanups.push(() => writer.close());
    const bad = eventRow({ properties: { text: 'NUL \u0000' } });
    const result = await writer.writeEvents([eventRow(), bad, eventRow()]);
    expect(result).toMatchObject({
      ok: true,
      stored: 2,
      rejected: [{ index: 1, id: bad.id, code: 'TALLY_INVALID_ROW' }],
    });
    expect(existsSync(writer.deadLetterFile)).toBe(true);
    expect(writer.stats().deadLettered).toBe(1);
    expect(reported).toContainEqual(
      expect.objectContaining({ code: 'TALLY_INVALID_ROW', sqlstate: expect.stringMatching(/^22/), rows: 1 }),
    );
  });

  it('the worker dying spools what it held, refuses new work with a code, and never hangs', async () => {
    const spoolDir = temp();
    const store = await open();
    const writer = createWriter({ store, spoolDir, flushIntervalMs: 60_000 });
    const held = [writer.writeEvents(eventRows(30)), writer.writeEvents(eventRows(20))];
    await store.sql.query('SELECT 1');
    await store.worker.terminate();

    for (const r of await Promise.all(held))
      expect(r).toMatchObject({ ok: true, stored: 0, spooled: expect.any(Number) });
    expect(spooledRows(spoolDir)).toHaveLength(50);
    const refused = await writer.writeEvents(eventRows(1));
    expect(refused).toMatchObject({ ok: false, code: ErrorCodes.STORE_UNAVAILABLE });
    const error = await store.totals().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TallyError);
    expect(error).toMatchObject({ code: 'TALLY_STORE_UNAVAILABLE' });
    await expect(writer.flush()).resolves.toBeUndefined();
    expect(await writer.close()).toMatchObject({ spooled: 50, queued: 0, inFlight: 0 });
    await store.close();

    // The next life recovers them, once.
    const next = await openStore(engine);
    cleanups.push(() => next.dispose());
    const recovering = createWriter({ store: next.store, spoolDir });
    cleanups.push(() => recovering.close());
    const before = (await next.store.totals()).events;
    expect(await recovering.recoverPending()).toMatchObject({ stored: 50, stillFailing: 0 });
    expect((await next.store.totals()).events - before).toBe(50);
  });

  it('with the SDK in front, a dead worker surfaces as retries and then the SDK’s spool, not a hang or a loss', async () => {
    const store = await open();
    const writerSpool = temp();
    const trackerSpool = temp();
    const writer = createWriter({ store, spoolDir: writerSpool });
    const errors: string[] = [];
    const tracker = createTracker({
      catalog: defineCatalog({ hit: { properties: { i: t.integer() }, required: ['i'] } }),
      sink: createDirectSink(writer),
      spool: trackerSpool,
      retry: { initialMs: 5, maxMs: 20, maxAttempts: 3 },
      onError: (e) => errors.push(e.message),
    });
    await store.worker.terminate();
    for (let i = 0; i < 100; i++) tracker.track('hit', { i });
    const report = await tracker.shutdown({ timeoutMs: 5000 });
    expect(report).toMatchObject({ delivered: 0, spooled: 100, dropped: {}, timedOut: false });
    expect(errors.some((m) => m.includes('TALLY_STORE_UNAVAILABLE'))).toBe(true);
    await writer.close();
  });
});

describe('worker-backed store, opening and exiting', SLOW, () => {
  it('a failure to open in the worker rejects with the driver’s code', async () => {
    const port = await freePort();
    const error = await createStore({
      kind: 'postgres',
      url: `postgres://postgres@127.0.0.1:${port}/test`,
      schema: 'x',
      worker: true,
    }).catch((e: unknown) => e);
    expect((error as { code?: string }).code).toMatch(/ECONNREFUSED|CONNECT/);
  });

  it('a process that exits with rows in the worker leaves them in the pending spool', async () => {
    const spoolDir = temp();
    const child = fileURLToPath(new URL('./support/worker-store-child.ts', import.meta.url));
    const run = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', child, spoolDir, '25'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.stdout).toContain('written');
    expect(run.status).toBe(0);
    expect(spooledRows(spoolDir)).toHaveLength(25);
    const { store, dispose } = await openStore('pglite');
    cleanups.push(dispose);
    const writer = createWriter({ store, spoolDir });
    cleanups.push(() => writer.close());
    expect(await writer.recoverPending()).toMatchObject({ stored: 25, stillFailing: 0 });
  });

  // Linux keeps a nice value per thread (elsewhere the option is not applied: it would slow the whole app).
  it.runIf(process.platform === 'linux')(
    '{ nice } lowers the priority of the store thread alone, not of the app’s thread',
    async () => {
      const niceOfThreads = () =>
        readdirSync('/proc/self/task').map((tid) => {
          const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
          // Fields after the command name (which may hold spaces): state is 3rd, nice the 19th.
          return { tid: Number(tid), nice: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]) };
        });
      expect(niceOfThreads().filter((t) => t.nice === 7)).toEqual([]);
      const store = await createStore({ kind: 'pglite', worker: { nice: 7 } });
      cleanups.push(() => store.close());
      await store.migrate();
      const niced = niceOfThreads().filter((t) => t.nice === 7);
      expect(niced).toHaveLength(1);
      expect(niced[0]?.tid).not.toBe(process.pid);
      expect(niceOfThreads().find((t) => t.tid === process.pid)?.nice).toBe(0);
      expect(await store.totals()).toMatchObject({ requestLogs: 0 });
    },
  );

  it('a nice value outside 0–19 is a config error before any thread starts', async () => {
    for (const nice of [-1, 20, 1.5]) {
      const error = await createStore({ kind: 'pglite', worker: { nice } }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TallyConfigError);
      expect((error as Error).message).toContain('worker.nice');
    }
  });

  it('an idle worker does not keep the process alive', async () => {
    const code = `
      import { createStore } from ${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)};
      const store = await createStore({ kind: 'pglite', worker: true });
      await store.migrate();
      console.log('idle');
    `;
    const run = spawnSync(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', '--input-type=module', '-e', code],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(run.stdout).toContain('idle');
    expect(run.signal).toBeNull();
    expect(run.status).toBe(0);
  });
});

// Keeps the type import honest: a worker-backed store is a Store.
const _typecheck: (s: WorkerBackedStore) => Store = (s) => s;
void _typecheck;
