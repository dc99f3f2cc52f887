/**
 * Logs on ClickHouse: a tenant's request logs that match the filters, newest first, a page at a time,
 * keyset-paged on (ts, id) with core's cursor (the Postgres engine's format: a cursor is a position, not
 * an offset, so rows stored meanwhile do not shift the pages).
 *
 * Order: time descending, then the id's text descending. Not the UUID column itself: ClickHouse compares
 * UUIDs by their two 64-bit halves, low half first, which is not the byte order Postgres and the cursor
 * use. Times are whole milliseconds here (ts_ms); a cursor's time has microseconds, compared as
 * ts_ms × 1000, so a position from either engine reads the same.
 */
import {
  type Cell,
  type Column,
  decodeLogCursor,
  encodeLogCursor,
  type LogFilters,
  type LogsQuery,
  logPositionMicros,
  logPositionTs,
  STATUS_CLASS_RANGE,
} from '@tally/core';
import { int, str } from '../sql.js';
import { routeFilterSql } from './routes.js';
import { rangeSql } from './sql.js';
import type { KindRunner } from './types.js';

function filterClauses(f: LogFilters): string[] {
  const where: string[] = [];
  if (f.status !== undefined) where.push(`status = ${int(f.status)}`);
  if (f.statusClass !== undefined) {
    const [low, high] = STATUS_CLASS_RANGE[f.statusClass];
    where.push(`status BETWEEN ${int(low)} AND ${int(high)}`);
  }
  if (f.method !== undefined) where.push(`method = ${str(f.method)}`);
  // '(unmatched)' also finds the requests no route matched, as the routes kind lists them.
  if (f.route !== undefined) where.push(routeFilterSql(f.route));
  // Filters are never empty (validated), so '' (a log without a user) is never asked for.
  if (f.userId !== undefined) where.push(`user_id = ${str(f.userId)}`);
  if (f.apiKeyId !== undefined) where.push(`api_key_id = ${str(f.apiKeyId)}`);
  // position, not LIKE: % and _ in the text are characters to find, not wildcards.
  if (f.url !== undefined) where.push(`position(url, ${str(f.url)}) > 0`);
  return where;
}

/**
 * Rows strictly after the position (time in epoch µs, id) in (ts DESC, id DESC) order. A position
 * between two milliseconds (a cursor with sub-ms digits, which only another engine could give) has no
 * row at its own time.
 */
export function beforeSql(micros: number, id: string): string {
  const ms = Math.floor(micros / 1000);
  // The plain bound lets the primary key (tenant_id, ts_ms, …) skip the newer granules.
  if (micros % 1000 !== 0) return `ts_ms <= ${int(ms)}`;
  return `ts_ms <= ${int(ms)} AND (ts_ms < ${int(ms)} OR toString(id) < ${str(id.toLowerCase())})`;
}

/**
 * `SELECT columns … WHERE where`, newest first in (ts_ms, id text) order, the first `limit` rows. The
 * id's text is what orders ties, and computing it for every row read costs more than the read itself
 * (chDB reads the newest granules first, in the sorting key's order, and would stop early): so a
 * subquery finds the oldest time among the newest `limit` rows from ts_ms alone, and the page is sorted
 * among the rows from that time on — those `limit` rows and any that share the boundary's millisecond.
 * On 18.16, which reads the range whole, it also keeps the other columns to those few rows.
 */
export function newestFirstSql(table: string, columns: string, where: string, limit: number): string {
  const boundary = `(SELECT min(t) FROM (SELECT ts_ms AS t FROM ${table} WHERE ${where} ORDER BY ts_ms DESC LIMIT ${int(limit)}))`;
  return `SELECT ${columns}, toString(id) AS log_id FROM ${table}
    WHERE ${where} AND ts_ms >= ${boundary}
    ORDER BY ts_ms DESC, log_id DESC LIMIT ${int(limit)}`;
}

const COLUMNS: Column[] = [
  { name: 'id', type: 'string' },
  { name: 'time', type: 'time' },
  { name: 'method', type: 'string' },
  { name: 'route', type: 'string' },
  { name: 'url', type: 'string' },
  { name: 'status', type: 'number' },
  { name: 'duration_ms', type: 'number' },
  { name: 'user_id', type: 'string' },
  { name: 'api_key_id', type: 'string' },
  { name: 'request_bytes', type: 'number' },
  { name: 'response_bytes', type: 'number' },
  { name: 'error', type: 'string' },
];

const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const textOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
/** Columns that store an absent value as '' (rows.ts): '' reads as null. */
const absentAsEmpty = (v: unknown): string | null => (v === null || v === undefined || v === '' ? null : String(v));

interface LogRow {
  log_id: string;
  ts_ms: number;
  method: string;
  route: string;
  url: string;
  status: number;
  duration_ms: number;
  user_id: string;
  api_key_id: string | null;
  request_bytes: number | null;
  response_bytes: number | null;
  error: string | null;
}

export const logs: KindRunner<LogsQuery> = async (q, ctx) => {
  const after = q.cursor === undefined ? undefined : decodeLogCursor(q.cursor);
  const where = [`tenant_id = ${str(ctx.tenantId)}`, rangeSql(ctx.from, ctx.to), ...filterClauses(q.filters)];
  if (after) where.push(beforeSql(logPositionMicros(after), after.id));
  const limit = Math.min(q.limit, ctx.maxRows);
  // One row more than the page: whether it exists says whether there is a next page.
  const found = await ctx.client.query<LogRow>(
    newestFirstSql(
      `${ctx.db}.request_logs`,
      'ts_ms, method, route, url, status, duration_ms, user_id, api_key_id, request_bytes, response_bytes, error',
      where.join(' AND '),
      limit + 1,
    ),
    ctx.settings,
  );
  const page = found.slice(0, limit);
  const rows = page.map((r): Cell[] => [
    r.log_id,
    new Date(Number(r.ts_ms)).toISOString(),
    r.method,
    absentAsEmpty(r.route),
    r.url,
    Number(r.status),
    Number(r.duration_ms),
    absentAsEmpty(r.user_id),
    textOrNull(r.api_key_id),
    numOrNull(r.request_bytes),
    numOrNull(r.response_bytes),
    textOrNull(r.error),
  ]);
  const last = page.at(-1);
  const more = found.length > limit && last !== undefined;
  return {
    columns: COLUMNS,
    rows,
    source: 'detail',
    reason: 'request logs are read from the detail rows, newest first, a page at a time',
    truncated: more,
    ...(more ? { next: encodeLogCursor({ ts: logPositionTs(Number(last.ts_ms)), id: last.log_id }) } : {}),
  };
};
