/**
 * What the lifecycle jobs (archive, cleanup, restore, storage statistics, hot-path snapshots) and the
 * export need of the store that holds the detail rows (events, request logs), whatever engine that is:
 * the relational store (PGlite, Postgres) or ClickHouse. The control plane (manifests, job runs,
 * snapshots) stays in the relational store either way; this is only the detail side.
 *
 * Archive files are the same on every engine: one JSON object a line, keys the relational table's
 * columns (ARCHIVE_COLUMNS), so a day archived from one engine restores into the other.
 */
import type { JsonValue } from './schema.js';

export type DetailTable = 'events' | 'request_logs';
export const DETAIL_TABLES: readonly DetailTable[] = ['events', 'request_logs'];

/**
 * The keys of an archived row, in order: the relational table's columns (`row_to_json` writes them so).
 * `id` comes first on every engine, which lets cleanup read a line's id without parsing it.
 */
export const ARCHIVE_COLUMNS: Readonly<Record<DetailTable, readonly string[]>> = {
  events: ['id', 'tenant_id', 'name', 'user_id', 'anonymous_id', 'properties', 'context', 'ts', 'received_at'],
  request_logs: [
    'id',
    'tenant_id',
    'request_id',
    'method',
    'route',
    'url',
    'status',
    'duration_ms',
    'request_bytes',
    'response_bytes',
    'user_id',
    'api_key_id',
    'ip',
    'user_agent',
    'headers',
    'request_body',
    'response_body',
    'body_truncated',
    'stream_body',
    'aborted',
    'error',
    'ts',
    'received_at',
  ],
};

/** An archived event as its line parses (JSON null where the relational column is NULL). */
export interface ArchivedEvent {
  id: string;
  tenant_id: string;
  name: string;
  user_id: string | null;
  anonymous_id: string | null;
  properties: Record<string, JsonValue>;
  context: Record<string, JsonValue>;
  /** ISO time with an offset, e.g. `2026-03-10T12:00:00.123+00:00`. */
  ts: string;
  received_at: string;
}

/** An archived request log as its line parses. */
export interface ArchivedRequestLog {
  id: string;
  tenant_id: string;
  request_id: string | null;
  method: string;
  route: string | null;
  url: string;
  status: number;
  duration_ms: number;
  request_bytes: number | null;
  response_bytes: number | null;
  user_id: string | null;
  api_key_id: string | null;
  ip: string | null;
  user_agent: string | null;
  headers: Record<string, string> | null;
  request_body: string | null;
  response_body: string | null;
  body_truncated: boolean;
  stream_body: string | null;
  aborted: boolean;
  error: string | null;
  ts: string;
  received_at: string;
}

/**
 * A time as the relational store's `row_to_json` writes a timestamptz in a UTC session: seconds, then
 * the fraction without trailing zeros (none when whole), then `+00:00`.
 */
export function archiveTime(ms: number): string {
  const iso = new Date(ms).toISOString();
  const fraction = iso.slice(19, 23).replace(/\.?0+$/, '');
  return `${iso.slice(0, 19)}${fraction}+00:00`;
}

/** Rows of one tenant's UTC day in a detail table. */
export interface DetailDay {
  tenantId: string;
  table: DetailTable;
  /** UTC day, `YYYY-MM-DD`. */
  day: string;
  rows: number;
}

/** One row of a day being archived: its line (ARCHIVE_COLUMNS), id and time (ISO, UTC). */
export interface ArchiveLine {
  id: string;
  line: string;
  ts: string;
}

/** A page of a day's rows; `next` (absent on the last page) continues after it. */
export interface DayPage {
  lines: ArchiveLine[];
  next?: string;
}

/** An archived day whose files verified: the ids they hold, every part's together. */
export interface VerifiedDay {
  tenantId: string;
  table: DetailTable;
  day: string;
  ids: readonly string[];
}

/** How a verified day's rows went: by id, by a delete of the tenant's day, or with its whole partition. */
export type DeleteMethod = 'ids' | 'tenant-day' | 'partition';

export interface DeleteOptions {
  /** Ids per DELETE statement where rows go by id. */
  batchRows: number;
  /** Called once a day's rows are gone (the caller marks its parts cleaned there). */
  onDeleted: (day: VerifiedDay, deleted: number, method: DeleteMethod) => Promise<void>;
}

/** Storage of one table (detail, rollup or control plane). */
export interface TableStats {
  table: string;
  rows: number;
  /** Bytes of the table's data on disk (compressed where the engine compresses). */
  tableBytes: number;
  indexBytes: number;
  totalBytes: number;
  oldest?: string | null;
  newest?: string | null;
  /** The engine holding the table, where it is not the relational store. */
  engine?: 'clickhouse';
  /** Bytes of the data before compression (ClickHouse). */
  uncompressedBytes?: number;
  /** Active data parts (ClickHouse: merges bring it down; thousands mean too many small inserts). */
  parts?: number;
  /** Per partition (ClickHouse: a UTC day, `YYYYMMDD`), oldest first. */
  partitions?: PartitionStats[];
}

export interface PartitionStats {
  partition: string;
  rows: number;
  bytes: number;
  uncompressedBytes: number;
  parts: number;
}

export interface HotPath {
  method: string;
  route: string;
  count: number;
  /** Share of 5xx answers. */
  errorRate: number;
  /** Share of 4xx answers. */
  clientErrorRate: number;
  /** Requests per latency bucket (LATENCY_BUCKETS_MS, then the rest), summed over the hours. */
  buckets: number[];
}

export type HotPaths = Record<string, { events: { name: string; count: number }[]; paths: HotPath[] }>;

export type ExportKind = 'events' | 'logs';

/**
 * The keys of an exported row, in order: the envelope's and the request log record's names. Both
 * engines write exactly these; the CSV header is this list.
 */
export const EXPORT_FIELDS: Readonly<Record<ExportKind, readonly string[]>> = {
  events: ['id', 'name', 'userId', 'anonymousId', 'timestamp', 'receivedAt', 'properties', 'context'],
  logs: [
    'id',
    'requestId',
    'method',
    'route',
    'url',
    'status',
    'durationMs',
    'requestBytes',
    'responseBytes',
    'userId',
    'apiKeyId',
    'ip',
    'userAgent',
    'aborted',
    'error',
    'timestamp',
    'receivedAt',
    'bodyTruncated',
    'headers',
    'requestBody',
    'responseBody',
    'streamBody',
  ],
};

/** Where an export page starts: after the row (ts, id), or at `ts` itself when id is null. */
export interface ExportCursor {
  /** ISO time (UTC). */
  ts: string;
  id: string | null;
}

/** One exported row: its line (EXPORT_FIELDS) and its place in (ts, id) order. */
export interface ExportRow {
  ts: string;
  id: string;
  line: string;
}

export interface DetailStore {
  /** Which store holds the rows: `relational` (PGlite, Postgres) or `clickhouse`. */
  readonly engine: 'relational' | 'clickhouse';
  /** Rows per (tenant, UTC day) of `table` older than `before` (a UTC midnight, ISO), oldest day first. */
  oldDays(table: DetailTable, before: string): Promise<DetailDay[]>;
  /** A page of one tenant's day as archive lines; `after` is the `next` of the page before. */
  readDayPage(
    table: DetailTable,
    tenantId: string,
    day: string,
    after: string | undefined,
    limit: number,
  ): Promise<DayPage>;
  /**
   * Deletes verified archived days. A row of the day that its files do not hold (one that arrived after
   * the archive was made) is kept. Returns the rows deleted.
   */
  deleteArchived(days: readonly VerifiedDay[], options: DeleteOptions): Promise<number>;
  /** Inserts archived lines of `table` whose ids are not stored; returns how many were. */
  restoreLines(table: DetailTable, lines: readonly string[]): Promise<number>;
  /** Storage of the tables this store holds for the detail (and its rollups, where it keeps any). */
  tableStats(): Promise<TableStats[]>;
  /** Per tenant, the `limit` busiest event names and paths of the last 24 hours. */
  hotPaths(limit: number): Promise<HotPaths>;
  /**
   * One tenant's rows of a kind from `from` up to `to` (ISO, exclusive), in (ts, id) order, at most
   * `limit`: a page of an export.
   */
  exportPage(tenantId: string, kind: ExportKind, from: ExportCursor, to: string, limit: number): Promise<ExportRow[]>;
  /**
   * Builds the rollups this store keeps after the fact, from the detail rows (ClickHouse: the hourly
   * counts of the days that are over). Absent where rollups are kept at insert (the relational store).
   */
  sealRollups?(options: { onProgress?: (line: string) => void }): Promise<SealedRollups>;
}

export interface SealedRollups {
  /** (tenant, UTC day)s built. */
  built: number;
  /** Events they count. */
  events: number;
  /** Rollup rows they hold. */
  rows: number;
  /** Days left for a later run (their detail rows are being rewritten by a delete). */
  deferred: number;
}
