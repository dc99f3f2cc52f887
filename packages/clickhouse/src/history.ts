/**
 * A user's own request history on ClickHouse, and one request log in full: the same items and details
 * as the relational store's history.ts, row for row. ClickHouse has no row-level security, so the
 * tenant (and the user, for history) is a condition of every statement, on the sorting key's first
 * column.
 *
 * Absent optional fields come back absent: rows.ts stores an absent route or user id as '' (plain
 * String columns, for speed) and the other optional fields as NULL; '' reads back as null here.
 */
import { type HistoryItem, type HistoryQuery, isUuid, isUuidv7, type RequestLogDetail, uuidv7Time } from '@tally/core';
import type { ClickHouseClient } from './client.js';
import { beforeSql, newestFirstSql } from './query/logs.js';
import { int, str } from './sql.js';

const ISO = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z$/;

/**
 * Epoch µs of a time as the history API passes it (ISO in UTC; a cursor's time may carry microseconds,
 * as Postgres keeps them). Anything else Date.parse reads, to the millisecond.
 */
function micros(time: string): number {
  const m = ISO.exec(time);
  if (m) return Date.parse(`${m[1]}Z`) * 1000 + Number((m[2] ?? '').padEnd(6, '0'));
  const ms = Date.parse(time);
  if (Number.isNaN(ms)) throw new RangeError(`not a time: ${time}`);
  return ms * 1000;
}

const HISTORY_COLUMNS = `request_id, method, route, url, status, duration_ms, request_bytes, response_bytes, aborted,
  error, ts_ms`;

/** A column that stores absent as '' (route, user_id): '' reads as null. */
const absentAsEmpty = (v: unknown): string | null => (v === null || v === undefined || v === '' ? null : String(v));
const textOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function historyItem(row: Record<string, unknown>): HistoryItem {
  return {
    id: String(row.log_id),
    requestId: textOrNull(row.request_id),
    method: String(row.method),
    route: absentAsEmpty(row.route),
    url: String(row.url),
    status: Number(row.status),
    durationMs: Number(row.duration_ms),
    requestBytes: numOrNull(row.request_bytes),
    responseBytes: numOrNull(row.response_bytes),
    aborted: Number(row.aborted) === 1,
    error: textOrNull(row.error),
    timestamp: new Date(Number(row.ts_ms)).toISOString(),
  };
}

/** The user's request logs, newest first, keyset-paged on (ts, id). */
export async function requestHistory(client: ClickHouseClient, db: string, q: HistoryQuery): Promise<HistoryItem[]> {
  // '' is how a log without a user is stored: no caller is that user (Postgres keeps NULL, never equal).
  if (q.userId === '') return [];
  const where = [`tenant_id = ${str(q.tenantId)}`, `user_id = ${str(q.userId)}`];
  if (q.before) where.push(beforeSql(micros(q.before.ts), q.before.id));
  // ts_ms × 1000 ≥ from µs, and < to µs: whole milliseconds from the first at or after each bound.
  if (q.from) where.push(`ts_ms >= ${int(Math.ceil(micros(q.from) / 1000))}`);
  if (q.to) where.push(`ts_ms < ${int(Math.ceil(micros(q.to) / 1000))}`);
  if (q.statusClass) where.push(`intDiv(status, 100) = ${int(q.statusClass)}`);
  // A route of '' names no stored template ('' is how an absent one is stored, and reads back as null).
  if (q.route !== undefined) where.push(q.route === '' ? '0' : `route = ${str(q.route)}`);
  const rows = await client.query<Record<string, unknown>>(
    newestFirstSql(`${db}.request_logs`, HISTORY_COLUMNS, where.join(' AND '), q.limit),
  );
  return rows.map(historyItem);
}

/**
 * How far from a UUIDv7's own time its log is looked for first. The request-logging plugin makes a log's
 * id and its timestamp from one clock reading, so they agree to the millisecond; a producer whose ids
 * and timestamps come apart is still served, by a second read of the whole tenant.
 */
const ID_TIME_SLACK_MS = 3_600_000;

/**
 * One request log with its bodies and who sent it: of this user (userId), or any of the tenant's (null);
 * undefined when absent, someone else's, or `id` is not a UUID (it then names no log).
 *
 * The id is not in the sorting key, so a read by id alone scans the tenant's ids. A UUIDv7 carries its
 * birth time: the first read looks within an hour of it, on the key's (tenant_id, ts_ms) prefix.
 */
export async function requestLog(
  client: ClickHouseClient,
  db: string,
  tenantId: string,
  userId: string | null,
  id: string,
): Promise<RequestLogDetail | undefined> {
  if (!isUuid(id) || userId === '') return undefined;
  const where = [`tenant_id = ${str(tenantId)}`, `id = toUUID(${str(id.toLowerCase())})`];
  if (userId !== null) where.push(`user_id = ${str(userId)}`);
  const read = async (extra: string[]) =>
    (
      await client.query<Record<string, unknown>>(
        `SELECT toString(id) AS log_id, ${HISTORY_COLUMNS}, headers, request_body, response_body, body_truncated,
                user_agent, user_id, api_key_id, ip, stream_body
         FROM ${db}.request_logs WHERE ${[...where, ...extra].join(' AND ')} LIMIT 1`,
      )
    )[0];
  let row: Record<string, unknown> | undefined;
  if (isUuidv7(id)) {
    const born = uuidv7Time(id);
    row = await read([`ts_ms BETWEEN ${int(born - ID_TIME_SLACK_MS)} AND ${int(born + ID_TIME_SLACK_MS)}`]);
  }
  row ??= await read([]);
  if (!row) return undefined;
  return {
    ...historyItem(row),
    headers:
      row.headers === null || row.headers === undefined
        ? null
        : (JSON.parse(String(row.headers)) as Record<string, string>),
    requestBody: textOrNull(row.request_body),
    responseBody: textOrNull(row.response_body),
    bodyTruncated: Number(row.body_truncated) === 1,
    userAgent: textOrNull(row.user_agent),
    userId: absentAsEmpty(row.user_id),
    apiKeyId: textOrNull(row.api_key_id),
    ip: textOrNull(row.ip),
    streamBody: textOrNull(row.stream_body),
  };
}
