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
  backoffDelay,
  type BatchRejection,
  checkRequestLog,
  ErrorCodes,
  isoTime,
  isUuid,
  parseTime,
  sleep,
  TallyConfigError,
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
  const retry = { initialMs: options.retry?.initialMs ?? 100, maxMs: options.retry?.maxMs ?? 5000 };
  const deadLetterFile = deadLetterPath(options.spoolDir);
  const pending = pendingSpool(options.spoolDir);
  const queues: Record<RowKind, Entry[]> = { event: [], request_log: [] };
  const queuedBytes: Record<RowKind, number> = { event: 0, request_log: 0 };
  const abort = new AbortController();
  const inFlight = new Set<Promise<void>>();
  const stats = emptyWriterStats();
  let timer: NodeJS.Timeout | undefined;
  let closing = false;
  let closed: Promise<WriterStats> | undefined;
  let spoolReady: Promise<unknown> | undefined;
  const idle: (() => void)[] = [];

  const ensureDir = () => (spoolReady ??= mkdir(options.spoolDir, { recursive: true }));

  function write(kind: RowKind, rows: readonly Row[]): Promise<WriteResult> {
    const result: WriteResult = { ok: true, stored: 0, duplicates: 0, duplicateIndexes: [], rejected: [], spooled: 0 };
    if (closing) return Promise.resolve({ ...result, ok: false, code: ErrorCodes.SHUTDOWN });
    if (stats.queued + rows.length > maxQueueRows && stats.queued > 0) {
      stats.overloaded += rows.length;
      return Promise.resolve({ ...result, ok: false, code: ErrorCodes.OVERLOADED });
    }
    if (rows.length === 0) return Promise.resolve(result);
    return new Promise((resolve) => {
      const req: Request = { result, remaining: rows.length, resolve };
      rows.forEach((row, index) => {
        const entry = { kind, row, index, req, bytes: rowBytes(kind, row) };
        const problem = checkEnvelope(kind, row);
        if (problem) {
          void deadLetter([entry], ErrorCodes.INVALID_ENVELOPE, problem);
        } else {
          queues[kind].push(entry);
          queuedBytes[kind] += entry.bytes;
          stats.queued++;
        }
      });
      schedule();
    });
  }

  function schedule(): void {
    const full = (kind: RowKind) => queues[kind].length >= maxBatchRows || queuedBytes[kind] >= maxBatchBytes;
    const ready = full('event') || full('request_log');
    if (ready) pump();
    else if (timer === undefined && stats.queued > 0) {
      timer = setTimeout(() => {
        timer = undefined;
        pump(true);
      }, flushIntervalMs);
    }
  }

  function pump(partial = false): void {
    for (const kind of ['event', 'request_log'] as const) {
      const queue = queues[kind];
      while (
        inFlight.size < concurrency &&
        queue.length > 0 &&
        (partial || closing || queue.length >= maxBatchRows || queuedBytes[kind] >= maxBatchBytes)
      ) {
        // Up to maxBatchRows rows and maxBatchBytes (at least one row, however large).
        let n = 0;
        let bytes = 0;
        while (
          n < queue.length &&
          n < maxBatchRows &&
          (n === 0 || bytes + (queue[n] as Entry).bytes <= maxBatchBytes)
        ) {
          bytes += (queue[n] as Entry).bytes;
          n++;
        }
        const batch = queue.splice(0, n);
        queuedBytes[kind] -= bytes;
        stats.queued -= batch.length;
        stats.inFlight += batch.length;
        const run = insert(kind, batch).finally(() => {
          stats.inFlight -= batch.length;
          inFlight.delete(run);
          if (stats.queued > 0) {
            // Keep draining: a full batch now, a partial one after the interval (or at once when closing).
            if (closing) pump(true);
            else schedule();
          } else if (inFlight.size === 0) {
            for (const wake of idle.splice(0)) wake();
          }
        });
        inFlight.add(run);
      }
    }
    if (stats.queued > 0 && timer === undefined && !closing) {
      timer = setTimeout(() => {
        timer = undefined;
        pump(true);
      }, flushIntervalMs);
    }
  }

  /** Inserts one batch to its end: stored, or retried until it is, or bisected around bad rows. */
  async function insert(kind: RowKind, batch: Entry[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        stats.batches++;
        const rows = batch.map((e) => e.row);
        const ids =
          kind === 'event'
            ? await store.insertEvents(rows as EventRow[])
            : await store.insertRequestLogs(rows as RequestLogRow[]);
        settleInserted(batch, new Set(ids));
        return;
      } catch (error) {
        if (isDataError(error)) return bisect(kind, batch, error);
        if (abort.signal.aborted) return spoolPending(batch);
        stats.retries++;
        report(ErrorCodes.SINK_RETRYABLE, error, batch.length);
        await sleep(backoffDelay(attempt, retry), abort.signal);
        if (abort.signal.aborted) return spoolPending(batch);
      }
    }
  }

  async function bisect(kind: RowKind, batch: Entry[], error: unknown): Promise<void> {
    if (batch.length === 1) {
      const e = error as { code?: string; message?: string };
      return deadLetter(batch, ErrorCodes.INVALID_ROW, e.message ?? String(error), e.code);
    }
    const mid = batch.length >> 1;
    await insert(kind, batch.slice(0, mid));
    await insert(kind, batch.slice(mid));
  }

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

  async function flush(): Promise<void> {
    if (stats.queued === 0 && inFlight.size === 0) return;
    const done = new Promise<void>((resolve) => idle.push(resolve));
    pump(true);
    await done;
  }

  async function doClose(timeoutMs: number): Promise<WriterStats> {
    closing = true;
    if (timer) clearTimeout(timer);
    const deadline = setTimeout(() => abort.abort(), timeoutMs);
    try {
      pump(true);
      while (inFlight.size > 0) {
        await Promise.race(inFlight);
        if (abort.signal.aborted) break;
      }
      await Promise.all(inFlight);
      // Out of time, or nothing could be taken in flight: the rest goes to disk, not into the void.
      for (const kind of ['event', 'request_log'] as const) {
        const rest = queues[kind].splice(0);
        stats.queued -= rest.length;
        queuedBytes[kind] = 0;
        await spoolPending(rest);
      }
    } finally {
      clearTimeout(deadline);
    }
    return { ...stats };
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
    flush,
    close: (o = {}) => (closed ??= doClose(o.timeoutMs ?? 10_000)),
    recoverPending,
    replay,
    stats: () => ({ ...stats }),
  };
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
