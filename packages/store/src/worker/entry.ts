/**
 * The worker thread of a worker-backed store (`createStore({ ..., worker: true })`): it owns the engine
 * (PGlite lives on the thread that opened it) and every writer of that store, and answers the app's
 * thread over its port. Nothing here knows about HTTP or the SDK: it runs the same Store and Writer
 * code the app would run in-process.
 */
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { openStore } from '../open-store.js';
import type { EventRow, RequestLogRow } from '../rows.js';
import type { SqlClient } from '../sql-client.js';
import type { Store } from '../types.js';
import { createWriter, type Writer } from '../writer.js';
import { type Call, toWire, type WorkerInit, type WorkerMessage } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('worker/entry.ts runs as a worker thread (see worker/host.ts)');
const { config, nice } = workerData as WorkerInit;
// On Linux nice is per thread and pid 0 is the calling thread: only this thread yields, not the app's.
// Elsewhere (macOS, Windows) it would lower the whole process, so it is not set there. A priority is a
// hint: where it cannot be set, the store works as it would at normal priority.
if (nice && process.platform === 'linux') {
  try {
    setPriority(nice);
  } catch {
    // See above.
  }
}

interface OpenTransaction {
  /** Set once the engine has begun the transaction. */
  sql?: SqlClient;
  finish: (commit: boolean) => void;
  done: Promise<unknown>;
}

const ROLLBACK = Symbol('rollback');
const writers = new Map<number, Writer>();
const transactions = new Map<number, OpenTransaction>();

const post = (message: WorkerMessage) => port.postMessage(message);

let store: Store;
try {
  store = await openStore(config);
} catch (error) {
  post({ type: 'failed', error: toWire(error) });
  process.exit(1);
}
post({ type: 'ready', kind: store.kind, schema: store.schema, capabilities: store.capabilities });

port.on('message', (call: Call) => {
  let work: Promise<unknown>;
  try {
    work = Promise.resolve(handle(call));
  } catch (error) {
    work = Promise.reject(error);
  }
  const writer = 'writer' in call ? writers.get(call.writer) : undefined;
  const fail = (error: unknown) =>
    post({ type: 'reply', id: call.id, ok: false, error: toWire(error), stats: writer?.stats() });
  work.then(
    (value) => {
      // A value that cannot be cloned to the app's thread (a function, a symbol) is that call's error,
      // not an unhandled rejection that would take the worker and every call in flight down with it.
      try {
        post({ type: 'reply', id: call.id, ok: true, value, stats: writer?.stats() });
      } catch (error) {
        fail(error);
      }
    },
    (error: unknown) => {
      try {
        fail(error);
      } catch (again) {
        fail(new Error(`could not send the error back: ${(again as Error).message}`));
      }
    },
  );
});

function handle(call: Call): unknown {
  switch (call.op) {
    case 'store':
      return (store[call.method] as (...args: unknown[]) => Promise<unknown>)(...call.args);
    case 'query':
      return sqlOf(call.tx).query(call.text, call.params);
    case 'exec':
      return sqlOf(call.tx).exec(call.text);
    case 'begin':
      return begin(call.tx, call.tenantId);
    case 'end':
      return end(call.tx, call.commit);
    case 'writer-open': {
      const { reportErrors, ...options } = call.options;
      const id = call.writer;
      const onError = reportErrors
        ? (error: { code: string; message: string; sqlstate?: string; rows: number }) =>
            post({ type: 'writer-error', writer: id, error })
        : undefined;
      writers.set(id, createWriter({ ...options, store, onError }));
      return undefined;
    }
    case 'write': {
      const writer = writerOf(call.writer);
      return call.kind === 'event'
        ? writer.writeEvents(call.rows as EventRow[])
        : writer.writeRequestLogs(call.rows as RequestLogRow[]);
    }
    case 'writer-flush':
      return writerOf(call.writer).flush();
    case 'writer-close':
      return writerOf(call.writer).close({ timeoutMs: call.timeoutMs });
    case 'writer-recover':
      return writerOf(call.writer).recoverPending();
    case 'writer-replay':
      return writerOf(call.writer).replay(call.path);
    case 'close':
      return closeAll();
  }
}

function writerOf(id: number): Writer {
  const writer = writers.get(id);
  if (!writer) throw new Error(`no writer ${id} in this store worker`);
  return writer;
}

function sqlOf(tx: number | undefined): SqlClient {
  if (tx === undefined) return store.sql;
  const sql = transactions.get(tx)?.sql;
  if (!sql) throw new Error(`transaction ${tx} is not open`);
  return sql;
}

/**
 * Opens a transaction that outlives this message: the engine's own transaction() runs a callback that
 * waits for the app's `end`. Resolves once it is open; rejects if it cannot begin.
 */
function begin(tx: number, tenantId: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    let finish!: (commit: boolean) => void;
    const ended = new Promise<boolean>((r) => (finish = r));
    const entry: OpenTransaction = { finish, done: Promise.resolve() };
    transactions.set(tx, entry);
    const body = async (sql: SqlClient) => {
      entry.sql = sql;
      resolve();
      if (!(await ended)) throw ROLLBACK;
    };
    entry.done = tenantId === undefined ? store.sql.transaction(body) : store.asTenant(tenantId, body);
    entry.done.catch((error: unknown) => {
      if (entry.sql === undefined) {
        transactions.delete(tx);
        reject(error);
      }
    });
  });
}

async function end(tx: number, commit: boolean): Promise<void> {
  const entry = transactions.get(tx);
  if (!entry) throw new Error(`transaction ${tx} is not open`);
  transactions.delete(tx);
  entry.finish(commit);
  try {
    await entry.done;
  } catch (error) {
    if (error !== ROLLBACK) throw error;
  }
}

/** Writers first (each drains within its own deadline or spools), then the engine. */
async function closeAll(): Promise<void> {
  await Promise.all([...writers.values()].map((w) => w.close()));
  for (const entry of transactions.values()) entry.finish(false);
  await store.close();
}
