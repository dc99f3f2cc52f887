/**
 * Logs: a tenant's request logs that match the filters, newest first, a page at a time. Pages are
 * keyset-paged on (ts, id): the cursor is the position of the last row shown, and the next page starts
 * strictly after it in (ts DESC, id DESC) order, so rows with equal times are neither skipped nor repeated
 * and rows stored meanwhile do not shift the pages. The (tenant_id, ts DESC, id DESC) index of
 * 006_query_logs.sql serves a page without sorting the range; the (tenant_id, user_id, ts DESC, id DESC)
 * index serves it for one user.
 */
import {
  decodeLogCursor,
  encodeLogCursor,
  type LogFilters,
  type LogsQuery,
  STATUS_CLASS_RANGE,
  UNMATCHED_ROUTE,
} from '@tally/core';
import { isoSql, Params, timeParam } from './sql.js';
import type { Cell, Column, KindRunner } from './types.js';

function filterClauses(f: LogFilters, p: Params): string[] {
  const where: string[] = [];
  if (f.status !== undefined) where.push(`status = ${p.add(f.status)}::int`);
  if (f.statusClass !== undefined) {
    const [low, high] = STATUS_CLASS_RANGE[f.statusClass];
    where.push(`status BETWEEN ${p.add(low)}::int AND ${p.add(high)}::int`);
  }
  if (f.method !== undefined) where.push(`method = ${p.add(f.method)}`);
  // '(unmatched)' also finds the requests no route matched, as the routes kind lists them.
  if (f.route !== undefined) where.push(`coalesce(route, '${UNMATCHED_ROUTE}') = ${p.add(f.route)}`);
  if (f.userId !== undefined) where.push(`user_id = ${p.add(f.userId)}`);
  if (f.apiKeyId !== undefined) where.push(`api_key_id = ${p.add(f.apiKeyId)}`);
  // strpos, not LIKE: % and _ in the text are characters to find, not wildcards.
  if (f.url !== undefined) where.push(`strpos(url, ${p.add(f.url)}) > 0`);
  return where;
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

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const text = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

export const logs: KindRunner<LogsQuery> = async (q, ctx) => {
  const after = q.cursor === undefined ? undefined : decodeLogCursor(q.cursor);
  const p = new Params();
  const where = [
    `tenant_id = ${p.add(ctx.tenantId)}`,
    `ts >= ${timeParam(ctx.from, p)}`,
    `ts < ${timeParam(ctx.to, p)}`,
    ...filterClauses(q.filters, p),
  ];
  if (after) where.push(`(ts, id) < (${p.add(after.ts)}::timestamptz, ${p.add(after.id)}::uuid)`);
  const limit = Math.min(q.limit, ctx.maxRows);
  // One row more than the page: whether it exists says whether there is a next page.
  const found = await ctx.sql.query<Record<string, unknown>>(
    `SELECT id::text AS id, ${isoSql('ts')} AS time,
            to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS position, method, route, url, status,
            duration_ms, user_id, api_key_id, request_bytes, response_bytes, error
     FROM request_logs WHERE ${where.join(' AND ')}
     ORDER BY ts DESC, id DESC LIMIT ${p.add(limit + 1)}`,
    p.values,
  );
  const page = found.slice(0, limit);
  const rows = page.map((r): Cell[] => [
    String(r.id),
    String(r.time),
    String(r.method),
    text(r.route),
    String(r.url),
    Number(r.status),
    Number(r.duration_ms),
    text(r.user_id),
    text(r.api_key_id),
    num(r.request_bytes),
    num(r.response_bytes),
    text(r.error),
  ]);
  const last = page.at(-1);
  const more = found.length > limit && last !== undefined;
  return {
    columns: COLUMNS,
    rows,
    source: 'detail',
    reason: 'request logs are read from the detail rows, newest first, a page at a time',
    truncated: more,
    ...(more ? { next: encodeLogCursor({ ts: String(last.position), id: String(last.id) }) } : {}),
  };
};
