/**
 * Export (`GET /v1/export`): every event or request log of a tenant in a time range, streamed as JSON
 * lines or CSV, from the store that holds the detail (the relational store or ClickHouse: both write
 * the same keys, core's EXPORT_FIELDS). Rows are read in pages in (ts, id) order, resuming after the
 * last row of the page before (keyset paging). On the relational store each page is its own short
 * transaction as the tenant (row-level security), and no transaction stays open between pages: on
 * PGlite, whose one connection the writer shares, ingestion goes on between them. A page is read only
 * when the client has taken the one before (the stream's backpressure), and a client that goes away
 * stops the export at the next page.
 *
 * Each page is looked for in a window of time after the cursor that widens while pages come back short
 * and narrows when they fill up, so a page's scan (Postgres: the BRIN index on ts, then a sort;
 * ClickHouse: the tenant's day partitions in the window, then a sort) covers about a page of rows, not
 * everything left of the range.
 */
import { Readable } from 'node:stream';
import {
  csvRecord,
  ErrorCodes,
  EXPORT_FIELDS,
  type ExportKind,
  isValidTimeZone,
  parseRangeTime,
  QUERY_LIMITS,
  TallyError,
} from '@tally/core';
import { detailOf, type Store } from '@tally/store';

export type { ExportKind };
export type ExportFormat = 'jsonl' | 'csv';

export interface ExportRequest {
  kind: ExportKind;
  format: ExportFormat;
  /** Epoch ms, half-open [from, to). */
  from: number;
  to: number;
}

const DAY = 86_400_000;

function bad(path: string, message: string): never {
  throw new TallyError(ErrorCodes.BAD_QUERY, `${path}: ${message}`, { path });
}

/** Checks the query string of an export; a mistake is TALLY_BAD_QUERY naming the parameter. */
export function parseExportParams(q: Record<string, unknown>): ExportRequest {
  const text = (name: string): string | undefined => {
    const v = q[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') bad(name, 'give it once');
    return v;
  };
  const kind = text('kind') ?? 'events';
  if (kind !== 'events' && kind !== 'logs') bad('kind', 'must be "events" or "logs"');
  const format = text('format') ?? 'jsonl';
  if (format !== 'jsonl' && format !== 'csv') bad('format', 'must be "jsonl" or "csv"');
  const tz = text('tz') ?? 'UTC';
  if (!isValidTimeZone(tz)) bad('tz', 'must be an IANA time zone name, e.g. "UTC" or "Europe/Berlin"');
  const iso = 'must be an ISO date or time, e.g. 2026-03-01 or 2026-03-01T00:00:00Z';
  const fromText = text('from');
  if (fromText === undefined) bad('from', `is required (${iso.replace('must be ', '')})`);
  const from = parseRangeTime(fromText, tz);
  if (from === undefined) bad('from', iso);
  const toText = text('to');
  if (toText === undefined) bad('to', `is required (${iso.replace('must be ', '')})`);
  const to = parseRangeTime(toText, tz);
  if (to === undefined) bad('to', iso);
  if (to <= from) bad('to', 'must be after from');
  if (to - from > QUERY_LIMITS.rangeDays * DAY) bad('to', `the range must span at most ${QUERY_LIMITS.rangeDays} days`);
  return { kind, format, from, to };
}

/** The CSV header of a kind: the JSON keys, in order. */
export function exportColumns(kind: ExportKind): string[] {
  return [...EXPORT_FIELDS[kind]];
}

/** The exports being streamed: counted for /metrics, stopped at shutdown. */
export interface ExportRegistry {
  /** Tracks an export until `done` is called; `abort` is called if the server shuts down first. */
  start(abort: () => void): { done: () => void };
  readonly active: number;
  abortAll(): void;
}

export function createExportRegistry(): ExportRegistry {
  const running = new Set<() => void>();
  return {
    start(abort) {
      running.add(abort);
      return { done: () => void running.delete(abort) };
    },
    get active() {
      return running.size;
    },
    abortAll() {
      for (const abort of [...running]) abort();
    },
  };
}

export interface ExportOptions {
  /** Rows per page. Default 5000. */
  pageRows?: number;
  /** Stops the export before its next page (the client went away, the server shuts down). */
  signal?: AbortSignal;
}

/**
 * The export as a stream of text chunks (one per page), read lazily: the next page is fetched when the
 * consumer asks for more.
 */
export function exportStream(
  store: Store,
  tenantId: string,
  req: ExportRequest,
  options: ExportOptions = {},
): Readable {
  return Readable.from(exportPages(store, tenantId, req, options), { objectMode: false });
}

async function* exportPages(
  store: Store,
  tenantId: string,
  req: ExportRequest,
  options: ExportOptions,
): AsyncGenerator<string> {
  const limit = options.pageRows ?? 5000;
  const detail = detailOf(store);
  const columns = exportColumns(req.kind);
  if (req.format === 'csv') yield csvRecord(columns);
  const end = new Date(req.to).toISOString();
  let cursorTs = new Date(req.from).toISOString();
  let cursorId: string | null = null;
  // The window after the cursor a page is looked for in; see the module comment.
  let span = 3_600_000;
  for (;;) {
    if (options.signal?.aborted) return;
    const windowEnd = Math.min(req.to, Date.parse(cursorTs) + span);
    const windowEndIso = windowEnd >= req.to ? end : new Date(windowEnd).toISOString();
    const rows = await detail.exportPage(tenantId, req.kind, { ts: cursorTs, id: cursorId }, windowEndIso, limit);
    if (rows.length > 0) {
      let chunk = '';
      if (req.format === 'jsonl') {
        for (const r of rows) chunk += `${r.line}\n`;
      } else {
        for (const r of rows) {
          const o = JSON.parse(r.line) as Record<string, unknown>;
          chunk += csvRecord(columns.map((c) => o[c] as never));
        }
      }
      yield chunk;
    }
    if (rows.length === limit) {
      const last = rows[rows.length - 1] as { ts: string; id: string };
      const covered = Date.parse(last.ts) - Date.parse(cursorTs);
      cursorTs = last.ts;
      cursorId = last.id;
      // Full: the next window about twice what this page needed (at least a second).
      span = Math.max(1000, Math.min(span, covered * 2));
    } else {
      if (windowEnd >= req.to) return;
      cursorTs = windowEndIso;
      cursorId = null;
      span = Math.min(span * 4, 31 * DAY);
    }
  }
}
