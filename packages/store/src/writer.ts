/**
 * The exactly-once writer. Callers hand it rows and await the outcome; it groups what arrives into
 * batches (by rows, or after a short interval), inserts each batch idempotently with its rollups in one
 * statement, and answers every caller once its rows are committed: stored, duplicate, or dead-lettered.
 *
 * Failures are classified, never guessed at:
 * - transient (connection lost or refused, server restarting, serialization failure, deadlock, too many
 *   connections, timeouts, and anything unrecognised): the same batch is retried with jittered backoff
 *   while new rows wait in the bounded queue. Retrying is safe because inserts are idempotent.
 * - data errors (SQLSTATE classes 22, 23, 54: an invalid UUID, a NUL in JSON text, a value too long):
 *   the batch is bisected until the offending rows are alone; those go to the dead-letter spool and
 *   every other row is stored.
 * On close, intake stops, the queue drains within the deadline, and what remains is written to the
 * pending spool, which `recoverPending()` re-ingests at the next start.
 */
import { appendFile, mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import {
  Batcher,
  type BatchReceiver,
  type BatchRejection,
  type BatchQueue,
  checkRequestLog,
  deliverBatch,
  type DeliveryOutcomes,
  ErrorCodes,
  isoTime,
  isUuid,
  parseTime,
  type RetryPolicy,
  TallyConfigError,
  TallyError,
} from '@tally/core';
import { readSpoolFile, Spool } from '@tally/spool';
import type { EventRow, RequestLogRow } from './rows.js';
import type { Store } from './types.js';

/**
 * A store that runs its writers elsewhere (the worker-backed store, worker/host.ts) offers them under
 * this key, and createWriter() hands the options over. Declared here, where it is looked up, so the
 * writer needs nothing from the worker modules above it.
 */
export const OPEN_WRITER = Symbol('tally.store.openWriter');

export type RowKind = 'event' | 'request_log';
const ROW_KINDS: readonly RowKind[] = ['event', 'request_log'];
type Row = EventRow | RequestLogRow;

export interface WriterOptions {
  store: Store;
  /** Directory for `dead-letters.jsonl` and pending spool files. */
  spoolDir: string;
  /**
   * Rows per insert statement. Default 2000 on Postgres, 1000 on PGlite (README "Storage" has the
   * measurements).
   */
  maxBatchRows?: number;
  /** Estimated bytes per insert statement (request logs carry bodies). Default 4 MiB. */
  maxBatchBytes?: number;
  /** How long a partial batch waits for company. Default 20 ms. */
  flushIntervalMs?: number;
  /** Rows waiting in memory; past it, writes answer TALLY_OVERLOADED at once. Default 100 000. */
  maxQueueRows?: number;
  /**
   * Insert statements in flight at once (Postgres pool; leave one connection of the pool for queries).
   * PGlite always uses 1. Default 2: one batch's COPY runs while the other waits for its commit to reach
   * the disk. More costs Postgres CPU: concurrent COPYs into the same indexes contend for their
   * rightmost pages, ~21–27 µs of Postgres CPU a row with 4 against 17–23 µs with 2 and 15–17 µs with 1
   * (300k events, store alone, interleaved runs), and `tally serve` shares its cores with Postgres.
   */
  concurrency?: number;
  retry?: { initialMs?: number; maxMs?: number };
  /** Called for dead letters and transient failures (logging, metrics). */
  onError?: (error: { code: string; message: string; sqlstate?: string; rows: number }) => void;
}

/** The outcome of one write call. Every row is in exactly one of the counts. */
export interface WriteResult {
  ok: boolean;
  /**
   * When `ok` is false: TALLY_OVERLOADED or TALLY_SHUTDOWN (nothing was taken), or TALLY_SPOOL_FAILED (some
   * rows could be neither stored nor written to a spool file): send the whole call again; ids dedupe.
   */
  code?: string;
  stored: number;
  /** Rows whose id was already stored: accepted, not stored again. */
  duplicates: number;
  /** The duplicates' positions in the call, ascending (what a consumer of new rows only, such as live, skips). */
  duplicateIndexes: number[];
  /** Rows that went to the dead-letter spool, with why. */
  rejected: BatchRejection[];
  /** Rows written to the pending spool because the writer closed before they were stored. */
  spooled: number;
}

export interface WriterStats {
  queued: number;
  inFlight: number;
  stored: number;
  duplicates: number;
  deadLettered: number;
  spooled: number;
  retries: number;
  batches: number;
  overloaded: number;
}

export interface DeadLetter {
  kind: RowKind;
  code: string;
  sqlstate?: string;
  reason: string;
  firstSeen: string;
  row: Row;
}

interface Request {
  result: WriteResult;
  remaining: number;
  resolve: (r: WriteResult) => void;
}

interface Entry {
  kind: RowKind;
  row: Row;
  index: number;
  req: Request;
  /** Estimated size (see rowBytes). */
  bytes: number;
}

export interface Writer {
  writeEvents(rows: readonly EventRow[]): Promise<WriteResult>;
  writeRequestLogs(rows: readonly RequestLogRow[]): Promise<WriteResult>;
  /** Resolves when everything queued now is stored or dead-lettered. */
  flush(): Promise<void>;
  /** Stops intake, drains within the deadline, spools the rest. Idempotent. */
  close(options?: { timeoutMs?: number }): Promise<WriterStats>;
  /** Re-ingests pending spool files left by an earlier close or crash. */
  recoverPending(): Promise<ReplayReport>;
  /** `tally replay <file>`: re-ingests a dead-letter file (after fixing it) or a pending spool file. */
  replay(path: string): Promise<ReplayReport>;
  stats(): WriterStats;
  readonly deadLetterFile: string;
}

export interface ReplayReport {
  stored: number;
  duplicates: number;
  stillFailing: number;
  unreadable: number;
}

// SQLSTATE classes that describe the data, not the moment: retrying the same row cannot succeed.
const DATA_ERROR = /^(22|23|54)/;

export function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && DATA_ERROR.test(code);
}

/** The writer's settings with their defaults, checked (a worker-backed store checks them on the caller's thread too). */
export function writerSettings(options: Omit<WriterOptions, 'store'>, concurrentWrites: boolean) {
  // Fewer, larger statements cost Postgres less per row (a transaction, a rollup statement, a commit
  // each); PGlite keeps 1000, what its measurements were made with (bench/fastify, bench/ingest).
  const maxBatchRows = options.maxBatchRows ?? (concurrentWrites ? 2000 : 1000);
  const maxBatchBytes = options.maxBatchBytes ?? 4 * 1024 * 1024;
  const flushIntervalMs = options.flushIntervalMs ?? 20;
  const maxQueueRows = options.maxQueueRows ?? 100_000;
  const concurrency = concurrentWrites ? (options.concurrency ?? 2) : 1;
  for (const [name, v] of Object.entries({ maxBatchRows, maxBatchBytes, flushIntervalMs, maxQueueRows, concurrency })) {
    if (!(Number.isInteger(v) && v > 0)) throw new TallyConfigError(`writer: ${name} must be a positive integer`);
  }
  if (typeof options.spoolDir !== 'string' || options.spoolDir === '') {
    throw new TallyConfigError('writer: spoolDir must name a directory');
  }
  return { maxBatchRows, maxBatchBytes, flushIntervalMs, maxQueueRows, concurrency };
}

export function deadLetterPath(spoolDir: string): string {
  return join(spoolDir, 'dead-letters.jsonl');
}

/**
 * The pending spool of a spool directory: rows a writer (or the store worker's host) could not store
 * before it closed or was cut off. `recoverPending()` takes the files no live writer holds. Unbounded in
 * size: it only ever holds what was queued at close, which maxQueueRows bounds.
 */
export function pendingSpool(spoolDir: string): Spool {
  return new Spool({ dir: spoolDir, owner: 'pending', maxBytes: Number.POSITIVE_INFINITY });
}

export function emptyWriterStats(): WriterStats {
  return {
    queued: 0,
    inFlight: 0,
    stored: 0,
    duplicates: 0,
    deadLettered: 0,
    spooled: 0,
    retries: 0,
    batches: 0,
    overloaded: 0,
  };
}

export function createWriter(options: WriterOptions): Writer {
  const store = options.store;
  // A store whose engine lives on a worker thread runs its writers there too, next to the engine.
  const remote = (store as { [OPEN_WRITER]?: (options: WriterOptions) => Writer })[OPEN_WRITER];
  if (remote) return remote(options);
  const { maxBatchRows, maxBatchBytes, flushIntervalMs, maxQueueRows, concurrency } = writerSettings(
    options,
    store.capabilities.concurrentWrites,
  );
  // Inserts are idempotent, so a transient failure is retried for as long as the writer runs; close's
  // deadline ends it (the batch goes to the pending spool).
  const retry: RetryPolicy = {
    initialMs: options.retry?.initialMs ?? 100,
    maxMs: options.retry?.maxMs ?? 5000,
    maxAttempts: Number.POSITIVE_INFINITY,
  };
  const deadLetterFile = deadLetterPath(options.spoolDir);
  const pending = pendingSpool(options.spoolDir);
  const abort = new AbortController();
  const stats = emptyWriterStats();
  const sources = ROW_KINDS.map(() => new EntryQueue());
  const batcher = new Batcher<Entry>(sources, {
    maxItems: maxBatchRows,
    maxBytes: maxBatchBytes,
    intervalMs: flushIntervalMs,
    concurrency,
    run: (batch, source) => insert(ROW_KINDS[source] as RowKind, batch),
  });
  let closing = false;
  let closed: Promise<WriterStats> | undefined;
  let spoolReady: Promise<unknown> | undefined;

  const ensureDir = () => (spoolReady ??= mkdir(options.spoolDir, { recursive: true }));

  function write(kind: RowKind, rows: readonly Row[]): Promise<WriteResult> {
    const result: WriteResult = { ok: true, stored: 0, duplicates: 0, duplicateIndexes: [], rejected: [], spooled: 0 };
    if (closing) return Promise.resolve({ ...result, ok: false, code: ErrorCodes.SHUTDOWN });
    const queued = batcher.queued;
    if (queued + rows.length > maxQueueRows && queued > 0) {
      stats.overloaded += rows.length;
      return Promise.resolve({ ...result, ok: false, code: ErrorCodes.OVERLOADED });
    }
    if (rows.length === 0) return Promise.resolve(result);
    const source = sources[ROW_KINDS.indexOf(kind)] as EntryQueue;
    return new Promise((resolve) => {
      const req: Request = { result, remaining: rows.length, resolve };
      rows.forEach((row, index) => {
        const entry = { kind, row, index, req, bytes: rowBytes(kind, row) };
        const problem = checkEnvelope(kind, row);
        if (problem) void deadLetter([entry], ErrorCodes.INVALID_ENVELOPE, problem);
        else source.push(entry);
      });
      batcher.added();
    });
  }

  /** Inserts one batch to its end: stored, retried until it is, or bisected around bad rows (deliverBatch). */
  function insert(kind: RowKind, batch: Entry[]): Promise<void> {
    return deliverBatch(receivers[kind], batch, retry, abort.signal, outcomes);
  }

  /** One insert statement per attempt; what its failure means for the batch, by SQLSTATE class. */
  function receiver(kind: RowKind): BatchReceiver<Entry> {
    return {
      name: 'store',
      async send(batch) {
        stats.batches++;
        try {
          const rows = batch.map((e) => e.row);
          const ids =
            kind === 'event'
              ? await store.insertEvents(rows as EventRow[])
              : await store.insertRequestLogs(rows as RequestLogRow[]);
          settleInserted(batch, new Set(ids));
          return { ok: true };
        } catch (error) {
          const e = error as { message?: string; code?: string } | undefined;
          const data = isDataError(error);
          const failure = new TallyError(
            data ? ErrorCodes.INVALID_ROW : ErrorCodes.SINK_RETRYABLE,
            e?.message ?? String(error),
            { sqlstate: e?.code },
          );
          return { ok: false, disposition: data ? 'split' : 'retry', error: failure };
        }
      },
    };
  }
  const receivers: Record<RowKind, BatchReceiver<Entry>> = {
    event: receiver('event'),
    request_log: receiver('request_log'),
  };

  const outcomes: DeliveryOutcomes<Entry> = {
    // Settled in send(), by the ids the insert returned: stored, or a duplicate.
    delivered: () => undefined,
    refused: (entry, error) =>
      entry && deadLetter([entry], ErrorCodes.INVALID_ROW, error.message, error.details.sqlstate as string | undefined),
    retrying: (error, _attempt, _delayMs, rows) => {
      stats.retries++;
      report(ErrorCodes.SINK_RETRYABLE, { message: error.message, code: error.details.sqlstate }, rows);
    },
    keep: (entries) => spoolPending(entries),
  };

  function settleInserted(batch: Entry[], inserted: Set<string>): void {
    for (const e of batch) {
      // A row whose id is inserted is stored once; a second row with the same id in this batch is a duplicate.
      if (inserted.delete(e.row.id)) {
        e.req.result.stored++;
        stats.stored++;
      } else {
        e.req.result.duplicates++;
        e.req.result.duplicateIndexes.push(e.index);
        stats.duplicates++;
      }
      settle(e);
    }
  }

  function settle(e: Entry): void {
    if (--e.req.remaining > 0) return;
    // Rows of one call can fail in different batches, in any order; callers get them by index.
    e.req.result.rejected.sort((a, b) => a.index - b.index);
    e.req.result.duplicateIndexes.sort((a, b) => a - b);
    e.req.resolve(e.req.result);
  }

  async function deadLetter(entries: Entry[], code: string, reason: string, sqlstate?: string): Promise<void> {
    const firstSeen = isoTime(Date.now());
    let text = '';
    for (const e of entries) {
      const letter: DeadLetter = { kind: e.kind, code, reason, firstSeen, row: e.row };
      if (sqlstate) letter.sqlstate = sqlstate;
      text += `${JSON.stringify(letter)}\n`;
    }
    if (!(await spoolOrRefuse(entries, () => ensureDir().then(() => appendFile(deadLetterFile, text))))) return;
    stats.deadLettered += entries.length;
    report(code, { message: reason, code: sqlstate }, entries.length);
    // Metadata for queries and the dashboard; the file is the source of truth, so a failure here is only logged.
    await store.sql
      .query(
        `INSERT INTO dead_letters (event_id, tenant_id, kind, code, reason, file)
         SELECT event_id::uuid, tenant_id, kind, code, reason, file
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
           AS t(event_id, tenant_id, kind, code, reason, file)
         WHERE t.event_id ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
         ON CONFLICT DO NOTHING`,
        [
          entries.map((e) => String(e.row.id)),
          entries.map((e) => String(e.row.tenantId)),
          entries.map((e) => e.kind),
          entries.map(() => code),
          entries.map(() => reason.slice(0, 500)),
          entries.map(() => deadLetterFile),
        ],
      )
      .catch(() => undefined);
    for (const e of entries) {
      e.req.result.rejected.push({ index: e.index, id: String(e.row.id), code, message: reason });
      settle(e);
    }
  }

  /**
   * Writes entries to a spool file. When the disk refuses (full, read-only), the rows are neither stored
   * nor kept: their calls answer `ok: false` (TALLY_SPOOL_FAILED), so the sender keeps them and retries.
   */
  async function spoolOrRefuse(entries: Entry[], write: () => Promise<unknown>): Promise<boolean> {
    try {
      await write();
      return true;
    } catch (error) {
      spoolReady = undefined;
      report(ErrorCodes.SPOOL_FAILED, error, entries.length);
      for (const e of entries) {
        e.req.result.ok = false;
        e.req.result.code = ErrorCodes.SPOOL_FAILED;
        settle(e);
      }
      return false;
    }
  }

  async function spoolPending(entries: Entry[]): Promise<void> {
    if (entries.length === 0) return;
    const write = async () => {
      for (const kind of ROW_KINDS) {
        const rows = entries.filter((e) => e.kind === kind).map((e) => e.row);
        if (rows.length > 0) await pending.append(kind, rows);
      }
    };
    if (!(await spoolOrRefuse(entries, write))) return;
    stats.spooled += entries.length;
    for (const e of entries) {
      e.req.result.spooled++;
      settle(e);
    }
  }

  function report(code: string, error: unknown, rows: number): void {
    const e = error as { message?: string; code?: string };
    options.onError?.({ code, message: e?.message ?? String(error), sqlstate: e?.code, rows });
  }

  function snapshot(): WriterStats {
    return { ...stats, queued: batcher.queued, inFlight: batcher.inFlight };
  }

  async function doClose(timeoutMs: number): Promise<WriterStats> {
    closing = true;
    const deadline = setTimeout(() => abort.abort(), timeoutMs);
    try {
      await batcher.drain(abort.signal);
      // Out of time: the rest goes to disk, not into the void.
      for (const source of sources) await spoolPending(source.take(source.size, Number.POSITIVE_INFINITY));
    } finally {
      clearTimeout(deadline);
    }
    return snapshot();
  }

  async function recoverPending(): Promise<ReplayReport> {
    const report: ReplayReport = { stored: 0, duplicates: 0, stillFailing: 0, unreadable: 0 };
    // Files of dead processes and of this process's other writers; this writer's own file is closed
    // first, so what it spooled itself comes back too.
    await pending.rotate();
    for (const claimed of await pending.claim()) {
      const { report: r, settled } = await ingest(claimed);
      add(report, r);
      // Every row is now stored, dead-lettered or in a new pending file. Otherwise (refused: overloaded,
      // closing, disk full) the claimed file stays, and is taken over once this process is gone.
      if (settled) await pending.remove(claimed);
    }
    return report;
  }

  /** `tally replay`: re-ingests a dead-letter file (after fixing it) or a pending spool file. */
  async function replay(path: string): Promise<ReplayReport> {
    // The file is moved aside first: rows failing again are appended to the current dead-letter file.
    const { report } = await ingest(path, () => rename(path, `${path}.replayed-${Date.now()}`));
    return report;
  }

  /** Writes the rows of a file of `{kind, row}` lines; settled when every write call was answered ok. */
  async function ingest(
    path: string,
    afterRead?: () => Promise<void>,
  ): Promise<{ report: ReplayReport; settled: boolean }> {
    const report: ReplayReport = { stored: 0, duplicates: 0, stillFailing: 0, unreadable: 0 };
    const byKind: Record<RowKind, Row[]> = { event: [], request_log: [] };
    const { records, corrupt } = await readSpoolFile(path);
    report.unreadable += corrupt;
    for (const { kind, row } of records) {
      if (kind === 'event' || kind === 'request_log') byKind[kind].push(row as Row);
      else report.unreadable++;
    }
    await afterRead?.();
    let settled = true;
    for (const kind of ROW_KINDS) {
      for (let i = 0; i < byKind[kind].length; i += maxBatchRows) {
        const chunk = byKind[kind].slice(i, i + maxBatchRows);
        const r = await write(kind, chunk);
        report.stored += r.stored;
        report.duplicates += r.duplicates;
        report.stillFailing += r.rejected.length + r.spooled + (r.ok ? 0 : chunk.length);
        if (!r.ok) settled = false;
      }
    }
    return { report, settled };
  }

  return {
    deadLetterFile,
    writeEvents: (rows) => write('event', rows),
    writeRequestLogs: (rows) => write('request_log', rows),
    flush: () => batcher.flush(),
    close: (o = {}) => (closed ??= doClose(o.timeoutMs ?? 10_000)),
    recoverPending,
    replay,
    stats: snapshot,
  };
}

/** A row kind's queue, cut into batches by the batcher. */
class EntryQueue implements BatchQueue<Entry> {
  private entries: Entry[] = [];
  bytes = 0;

  get size(): number {
    return this.entries.length;
  }

  push(entry: Entry): void {
    this.entries.push(entry);
    this.bytes += entry.bytes;
  }

  take(maxItems: number, maxBytes: number): Entry[] {
    let n = 0;
    let bytes = 0;
    const queue = this.entries;
    while (n < queue.length && n < maxItems && (n === 0 || bytes + (queue[n] as Entry).bytes <= maxBytes)) {
      bytes += (queue[n] as Entry).bytes;
      n++;
    }
    this.bytes -= bytes;
    return queue.splice(0, n);
  }
}

function add(into: ReplayReport, r: ReplayReport): void {
  into.stored += r.stored;
  into.duplicates += r.duplicates;
  into.stillFailing += r.stillFailing;
  into.unreadable += r.unreadable;
}

/**
 * A cheap size estimate (no serialization): fixed columns plus the strings that can be large. Event
 * properties are bounded upstream (2 KB); request logs carry bodies, which this counts.
 */
function rowBytes(kind: RowKind, row: Row): number {
  if (kind === 'event') {
    let bytes = 256;
    const props = (row as EventRow).properties;
    if (props && typeof props === 'object') {
      for (const key in props) {
        const v = props[key];
        bytes += key.length + (typeof v === 'string' ? v.length : 16);
      }
    }
    return bytes;
  }
  const r = row as RequestLogRow;
  return (
    512 +
    (r.url?.length ?? 0) +
    (r.userAgent?.length ?? 0) +
    (r.requestBody?.length ?? 0) +
    (r.responseBody?.length ?? 0) +
    (r.streamBody?.length ?? 0)
  );
}

/** Cheap checks before the database sees a row: what they catch is dead-lettered without a round trip. */
function checkEnvelope(kind: RowKind, row: Row): string | undefined {
  if (!row || typeof row !== 'object') return 'row is not an object';
  if (!isUuid(row.id)) return `id ${JSON.stringify(row.id)} is not a UUID`;
  if (typeof row.tenantId !== 'string' || row.tenantId === '') return 'tenantId is missing';
  if (typeof row.timestamp !== 'string' || Number.isNaN(parseTime(row.timestamp))) return 'timestamp is not a date';
  if (kind === 'event') {
    const e = row as EventRow;
    if (typeof e.name !== 'string' || e.name === '' || e.name.length > 200) return 'name must be 1–200 characters';
    return undefined;
  }
  // The same definition of a valid request log the SDK applies before sending one.
  return checkRequestLog(row)?.message;
}
