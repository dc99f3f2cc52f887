/**
 * A Store whose engine runs on a worker thread (`createStore({ ..., worker: true })`), with its writers
 * beside it. PGlite is one connection on the thread that opened it and costs ~100 µs of CPU per stored
 * request log, so an app that stores its own logs in PGlite would spend its request thread on WASM
 * Postgres; here that thread only clones each batch into a message and reads the answer.
 *
 * The proxy keeps the shapes callers use: the full Store (queries, transactions and `asTenant` too:
 * a transaction stays open in the worker until the app ends it) and, through `createWriter({ store })`,
 * a Writer whose results arrive only after the worker committed (or dead-lettered, or spooled) the rows.
 *
 * If the worker dies (crash, `terminate()`), nothing hangs: rows handed to it and not yet answered are
 * appended to the writer's pending spool (ids make a resend of rows it had committed harmless) and their
 * callers told `spooled`; queries reject and new writes are refused with TALLY_STORE_UNAVAILABLE.
 */
import { Worker } from 'node:worker_threads';
import { ErrorCodes, TallyConfigError, TallyError } from '@tally/core';
import type { StoreConfig } from '../open-store.js';
import type { SqlClient } from '../sql-client.js';
import {
  deadLetterPath,
  emptyWriterStats,
  OPEN_WRITER,
  pendingSpool,
  type RowKind,
  type WriteResult,
  type Writer,
  type WriterOptions,
  type WriterStats,
  writerSettings,
} from '../writer.js';
import {
  type Call,
  fromWire,
  type Reply,
  type WorkerBackedStore,
  type WorkerInit,
  type WorkerMessage,
  type WorkerWriterOptions,
} from './protocol.js';

/** Extra time a writer's close may take past its own deadline before the worker is presumed stuck. */
const CLOSE_GRACE_MS = 5000;

interface HostWriter {
  id: number;
  spoolDir: string;
  /** As of the worker's last answer to this writer. */
  stats: WriterStats;
  /**
   * Calls concerning this writer not answered yet. The worker answers a write once its rows are stored or
   * spooled, so with none left its writer holds no rows: queued and in flight are 0, whatever the last
   * answer's counts said (they were taken just before that batch let go of its slot).
   */
  calls: number;
  closing: boolean;
  closed?: Promise<WriterStats>;
  onError?: WriterOptions['onError'];
}

interface PendingCall {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  /** The writer a call concerns: its answer carries that writer's counts. */
  writer?: HostWriter;
  /** A write: its rows stay here until answered, so a dead worker's rows can still be spooled. */
  write?: { writer: HostWriter; kind: RowKind; rows: readonly unknown[] };
}

type CallBody = Call extends infer C ? (C extends Call ? Omit<C, 'id'> : never) : never;

export async function openWorkerStore(config: StoreConfig): Promise<WorkerBackedStore> {
  const nice = typeof config.worker === 'object' ? config.worker.nice : undefined;
  if (nice !== undefined && !(Number.isInteger(nice) && nice >= 0 && nice <= 19)) {
    throw new TallyConfigError(`worker.nice must be an integer from 0 to 19; got ${nice}`, { nice });
  }
  const worker = spawnWorker({ config: { ...config, worker: false }, nice });
  const ready = await new Promise<Extract<WorkerMessage, { type: 'ready' }>>((resolve, reject) => {
    const onMessage = (m: WorkerMessage) => {
      if (m.type === 'ready') done(() => resolve(m));
      else if (m.type === 'failed') done(() => reject(fromWire(m.error)));
    };
    const onError = (error: Error) => done(() => reject(error));
    const onExit = (code: number) =>
      done(() => reject(new TallyError(ErrorCodes.STORE_UNAVAILABLE, `store worker exited (${code}) while opening`)));
    const done = (settle: () => void) => {
      worker.off('message', onMessage).off('error', onError).off('exit', onExit);
      settle();
    };
    worker.on('message', onMessage).on('error', onError).on('exit', onExit);
  }).catch(async (error: unknown) => {
    await worker.terminate();
    throw error;
  });

  const pending = new Map<number, PendingCall>();
  const writers = new Map<number, HostWriter>();
  let nextCall = 1;
  let nextWriter = 1;
  let nextTx = 1;
  let dead: TallyError | undefined;
  let closing: Promise<void> | undefined;
  let exiting = false;
  // Idle, the worker does not keep the process alive (an app that forgets close() still exits, as it
  // would with the engine in-process); while a call is pending it does, so no answer is cut off.
  worker.unref();

  worker.on('message', (m: WorkerMessage) => {
    if (m.type === 'reply') settleReply(m);
    else if (m.type === 'writer-error') {
      try {
        writers.get(m.writer)?.onError?.(m.error);
      } catch {
        // The app's logging callback failing must not take the store's answers down with it.
      }
    }
  });
  worker.on('error', (error) => {
    die(new TallyError(ErrorCodes.STORE_UNAVAILABLE, `store worker crashed: ${error.message}`, {}, { cause: error }));
  });
  worker.on('exit', (code) => {
    // After close() too: a call made while it closed must not wait forever, nor any made after it.
    die(
      new TallyError(
        ErrorCodes.STORE_UNAVAILABLE,
        exiting ? 'the store is closed' : `store worker exited unexpectedly (${code})`,
      ),
    );
  });

  // Process exit cuts the worker off mid-batch: what it was handed and had not answered goes to disk,
  // synchronously (the last chance), as the in-process tracker does with its queue.
  const onProcessExit = () => {
    for (const [spoolDir, kinds] of pendingRows()) {
      try {
        const spool = pendingSpool(spoolDir);
        for (const [kind, rows] of kinds) spool.appendSync(kind, rows);
      } catch {
        // Nothing more can be done at exit; the tracker's own exit spool holds the same rows.
      }
    }
  };
  process.on('exit', onProcessExit);

  function settleReply(m: Reply): void {
    const call = pending.get(m.id);
    if (!call) return;
    forget(m.id);
    if (call.writer) {
      call.writer.calls--;
      if (m.stats) call.writer.stats = m.stats;
    }
    if (m.ok) call.resolve(m.value);
    else call.reject(fromWire(m.error));
  }

  function forget(id: number): void {
    pending.delete(id);
    if (pending.size === 0 && !exiting) worker.unref();
  }

  function call<T>(body: CallBody, writer?: HostWriter, write?: PendingCall['write']): Promise<T> {
    if (dead) return Promise.reject(dead);
    const id = nextCall++;
    return new Promise<T>((resolve, reject) => {
      const entry: PendingCall = { resolve: resolve as (v: unknown) => void, reject, writer, write };
      const message = { ...body, id } as Call;
      try {
        worker.postMessage(message);
      } catch (error) {
        // DataCloneError: something in the rows has no structured clone (a function, a symbol). The
        // store would have serialized it to JSON anyway, so send what JSON keeps.
        if (!(body.op === 'write' && (error as Error).name === 'DataCloneError')) return reject(error as Error);
        const rows = JSON.parse(JSON.stringify(body.rows)) as unknown[];
        worker.postMessage({ ...message, rows });
      }
      if (pending.size === 0) worker.ref();
      pending.set(id, entry);
      if (writer) writer.calls++;
    });
  }

  /** Rows of pending writes by spool directory and kind, for the pending spool `recoverPending()` reads. */
  function pendingRows(): Map<string, Map<RowKind, unknown[]>> {
    const out = new Map<string, Map<RowKind, unknown[]>>();
    for (const p of pending.values()) {
      if (!p.write) continue;
      const { writer, kind, rows } = p.write;
      let kinds = out.get(writer.spoolDir);
      if (!kinds) out.set(writer.spoolDir, (kinds = new Map()));
      kinds.set(kind, [...(kinds.get(kind) ?? []), ...rows]);
    }
    return out;
  }

  function die(reason: TallyError): void {
    if (dead) return;
    dead = reason;
    exiting = true;
    process.off('exit', onProcessExit);
    const calls = [...pending.values()];
    const byDir = pendingRows();
    pending.clear();
    worker.terminate().catch(() => undefined);
    const spooled = new Map<string, Promise<boolean>>();
    for (const [dir, kinds] of byDir) {
      const spool = pendingSpool(dir);
      spooled.set(
        dir,
        Promise.all([...kinds].map(([kind, rows]) => spool.append(kind, rows))).then(
          () => true,
          () => false,
        ),
      );
    }
    for (const c of calls) {
      if (!c.write) {
        c.reject(reason);
        continue;
      }
      const { writer, rows } = c.write;
      void (spooled.get(writer.spoolDir) as Promise<boolean>).then((ok) => {
        if (ok) {
          writer.stats.spooled += rows.length;
          c.resolve({
            ok: true,
            stored: 0,
            duplicates: 0,
            duplicateIndexes: [],
            rejected: [],
            spooled: rows.length,
          } satisfies WriteResult);
        } else {
          // Not on disk either: refuse the rows, so the caller (the SDK's direct sink) retries and spools them.
          c.resolve(refused(reason.code));
        }
      });
    }
  }

  function sqlProxy(tx: number | undefined): SqlClient {
    const client: SqlClient = {
      query: (text, params) => call({ op: 'query', tx, text, params }),
      exec: async (text) => {
        await call({ op: 'exec', tx, text });
      },
      // Inside a transaction, a nested one is the same transaction (as with the in-process clients).
      transaction: (fn) => (tx === undefined ? transaction(undefined, fn) : fn(client)),
    };
    return client;
  }

  async function transaction<T>(tenantId: string | undefined, fn: (sql: SqlClient) => Promise<T>): Promise<T> {
    const tx = nextTx++;
    await call(tenantId === undefined ? { op: 'begin', tx } : { op: 'begin', tx, tenantId });
    let result: T;
    try {
      result = await fn(sqlProxy(tx));
    } catch (error) {
      await call({ op: 'end', tx, commit: false }).catch(() => undefined);
      throw error;
    }
    await call({ op: 'end', tx, commit: true });
    return result;
  }

  function openWriter(options: WriterOptions): Writer {
    // Bad settings throw here, on the caller's thread, as createWriter does in-process.
    writerSettings(options, ready.capabilities.concurrentWrites);
    const { store: _store, onError, ...rest } = options;
    const w: HostWriter = {
      id: nextWriter++,
      spoolDir: options.spoolDir,
      stats: emptyWriterStats(),
      calls: 0,
      closing: false,
      onError,
    };
    writers.set(w.id, w);
    const workerOptions: WorkerWriterOptions = { ...rest, reportErrors: onError !== undefined };
    // A failure to open shows up on the writer's first call, which names the same error.
    call({ op: 'writer-open', writer: w.id, options: workerOptions }, w).catch(() => undefined);

    const write = (kind: RowKind, rows: readonly unknown[]): Promise<WriteResult> => {
      if (w.closing) return Promise.resolve(refused(ErrorCodes.SHUTDOWN));
      if (dead) return Promise.resolve(refused(dead.code));
      if (rows.length === 0)
        return Promise.resolve({ ok: true, stored: 0, duplicates: 0, duplicateIndexes: [], rejected: [], spooled: 0 });
      return call<WriteResult>({ op: 'write', writer: w.id, kind, rows }, w, { writer: w, kind, rows });
    };

    async function close(timeoutMs: number): Promise<WriterStats> {
      w.closing = true;
      if (dead) return { ...w.stats, queued: 0, inFlight: 0 };
      let timer: NodeJS.Timeout | undefined;
      const stuck = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs + CLOSE_GRACE_MS);
      });
      try {
        const stats = await Promise.race([
          call<WriterStats>({ op: 'writer-close', writer: w.id, timeoutMs }, w),
          stuck.then(() => {
            die(new TallyError(ErrorCodes.STORE_UNAVAILABLE, `store worker did not close its writer in time`));
            return undefined;
          }),
        ]);
        if (stats) w.stats = stats;
      } catch {
        // The worker died while closing: its rows were spooled (see die()).
      } finally {
        clearTimeout(timer);
      }
      return { ...w.stats, ...(dead ? { queued: 0, inFlight: 0 } : {}) };
    }

    return {
      deadLetterFile: deadLetterPath(options.spoolDir),
      writeEvents: (rows) => write('event', rows),
      writeRequestLogs: (rows) => write('request_log', rows),
      flush: async () => {
        if (dead) return;
        await call({ op: 'writer-flush', writer: w.id }, w).catch((error: unknown) => {
          if (!dead) throw error;
        });
      },
      close: (o = {}) => (w.closed ??= close(o.timeoutMs ?? 10_000)),
      recoverPending: () => call({ op: 'writer-recover', writer: w.id }, w),
      replay: (path) => call({ op: 'writer-replay', writer: w.id, path }, w),
      // The counts as of the worker's last answer to this writer (see HostWriter.calls).
      stats: () => (w.calls === 0 ? { ...w.stats, queued: 0, inFlight: 0 } : { ...w.stats }),
    };
  }

  const remoteWriters: Writer[] = [];
  const store: WorkerBackedStore = {
    kind: ready.kind,
    schema: ready.schema,
    worker,
    capabilities: ready.capabilities,
    sql: sqlProxy(undefined),
    migrate: () => call({ op: 'store', method: 'migrate', args: [] }),
    insertEvents: (rows) => call({ op: 'store', method: 'insertEvents', args: [rows] }),
    insertRequestLogs: (rows) => call({ op: 'store', method: 'insertRequestLogs', args: [rows] }),
    requestHistory: (query) => call({ op: 'store', method: 'requestHistory', args: [query] }),
    requestLog: (tenantId, userId, id) => call({ op: 'store', method: 'requestLog', args: [tenantId, userId, id] }),
    // The whole query runs in the worker: its statements never cross the thread one by one.
    query: (tenantId, query, options) => call({ op: 'store', method: 'query', args: [tenantId, query, options] }),
    totals: () => call({ op: 'store', method: 'totals', args: [] }),
    asTenant: (tenantId, fn) => transaction(tenantId, fn),
    // Drains every writer (each within its deadline, the rest to its pending spool), then the engine.
    close: () =>
      (closing ??= (async () => {
        await Promise.all(remoteWriters.map((w) => w.close()));
        if (!dead) await call({ op: 'close' }).catch(() => undefined);
        exiting = true;
        process.off('exit', onProcessExit);
        await worker.terminate();
      })()),
    [OPEN_WRITER]: (options) => {
      const writer = openWriter(options);
      remoteWriters.push(writer);
      return writer;
    },
  };
  return store;
}

function refused(code: string): WriteResult {
  return { ok: false, code, stored: 0, duplicates: 0, duplicateIndexes: [], rejected: [], spooled: 0 };
}

/**
 * Built, the worker is `entry.js` beside this file (dist/worker/). From the TypeScript sources (tests,
 * tsx) it is `entry.ts`, which a plain worker cannot load: tsx's loader is registered inside the worker
 * first, and `--conditions=source` makes the workspace packages resolve to their sources as here.
 */
function spawnWorker(workerData: WorkerInit): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./entry.js', import.meta.url), { workerData });
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./entry.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true, workerData, execArgv: ['--conditions=source'] });
}
