/**
 * Stored rows as the lines the lifecycle and the export write, and archived lines back as rows.
 *
 * Archive lines have the relational store's shape whichever engine wrote them (core's ARCHIVE_COLUMNS:
 * the table's column names, JSON null for a NULL, times as `row_to_json` writes them), so a day archived
 * here restores into Postgres and the other way round. Where ClickHouse stores '' for an absent text
 * (user ids, routes: rows.ts), the line says null, as the relational row does.
 *
 * Properties, context and headers are stored as the JSON text of what was received (rows.ts) and go
 * into a line as that text, without a parse and a second serialization.
 */
import {
  type ArchivedEvent,
  type ArchivedRequestLog,
  type EventContext,
  type EventRow,
  isoTime,
  type RequestLogRow,
} from '@tally/core';

/**
 * The columns an archive or export line of an event is made from. The id as text is `uuid`: an alias
 * `id` would stand for it in the statement's WHERE and ORDER BY too (ClickHouse resolves aliases
 * there), where the keyset conditions need the UUID column.
 */
export const EVENT_LINE_COLUMNS = `toString(id) AS uuid, tenant_id, name, user_id, anonymous_id, properties, context,
  ts_ms, received_ms`;

export interface EventLineRow {
  uuid: string;
  tenant_id: string;
  name: string;
  user_id: string;
  anonymous_id: string;
  properties: string;
  context: string;
  ts_ms: number;
  received_ms: number;
}

export const REQUEST_LOG_LINE_COLUMNS = `toString(id) AS uuid, tenant_id, request_id, method, route, url, status,
  duration_ms, request_bytes, response_bytes, user_id, api_key_id, ip, user_agent, headers, request_body,
  response_body, body_truncated, stream_body, aborted, error, ts_ms, received_ms`;

export interface RequestLogLineRow {
  uuid: string;
  tenant_id: string;
  request_id: string | null;
  method: string;
  route: string;
  url: string;
  status: number;
  duration_ms: number;
  request_bytes: number | null;
  response_bytes: number | null;
  user_id: string;
  api_key_id: string | null;
  ip: string | null;
  user_agent: string | null;
  headers: string | null;
  request_body: string | null;
  response_body: string | null;
  body_truncated: number;
  stream_body: string | null;
  aborted: number;
  error: string | null;
  ts_ms: number;
  received_ms: number;
}

/** Text without a character JSON escapes: quoted as it is (twice as fast as JSON.stringify per value). */
const PLAIN = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;
const quote = (v: string): string => (PLAIN.test(v) ? `"${v}"` : JSON.stringify(v));
const text = (v: string | null): string => (v === null ? 'null' : quote(v));
/** '' is how ClickHouse stores an absent user id or route (rows.ts). */
const orNull = (v: string): string => (v === '' ? 'null' : quote(v));
const json = (v: string | null): string => (v === null || v === '' ? 'null' : v);

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));
let dayNumber = Number.NaN;
let dayPrefix = '';
/**
 * `new Date(ms).toISOString()` for the times a day's rows share the date of: the date part is made once
 * a day, the time by arithmetic (a Date per value was half of building a line).
 */
function utc(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0 || ms >= 253402300800000) return new Date(ms).toISOString();
  const day = Math.floor(ms / 86_400_000);
  if (day !== dayNumber) {
    dayNumber = day;
    dayPrefix = new Date(day * 86_400_000).toISOString().slice(0, 11);
  }
  let rest = ms - day * 86_400_000;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const sec = Math.floor(rest / 1000);
  const frac = rest - sec * 1000;
  return `${dayPrefix}${pad2(h)}:${pad2(m)}:${pad2(sec)}.${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}Z`;
}

/** core's isoTime (the envelope's and the export's times), from the cached day. */
export const isoUtc = (ms: number): string => utc(ms);

/** core's archiveTime (`row_to_json`'s timestamptz), from the cached day. */
export function archiveUtc(ms: number): string {
  const iso = utc(ms);
  const fraction = iso.slice(19, 23).replace(/\.?0+$/, '');
  return `${iso.slice(0, 19)}${fraction}+00:00`;
}

/** An event as an archive line (ARCHIVE_COLUMNS.events, in that order). */
export function eventArchiveLine(r: EventLineRow): string {
  return `{"id":${text(r.uuid)},"tenant_id":${text(r.tenant_id)},"name":${text(r.name)},"user_id":${orNull(r.user_id)},"anonymous_id":${orNull(r.anonymous_id)},"properties":${json(r.properties)},"context":${json(r.context)},"ts":"${archiveUtc(r.ts_ms)}","received_at":"${archiveUtc(r.received_ms)}"}`;
}

/** A request log as an archive line (ARCHIVE_COLUMNS.request_logs, in that order). */
export function requestLogArchiveLine(r: RequestLogLineRow): string {
  return (
    `{"id":${text(r.uuid)},"tenant_id":${text(r.tenant_id)},"request_id":${text(r.request_id)},` +
    `"method":${text(r.method)},"route":${orNull(r.route)},"url":${text(r.url)},"status":${r.status},` +
    `"duration_ms":${JSON.stringify(r.duration_ms)},"request_bytes":${JSON.stringify(r.request_bytes)},` +
    `"response_bytes":${JSON.stringify(r.response_bytes)},"user_id":${orNull(r.user_id)},` +
    `"api_key_id":${text(r.api_key_id)},"ip":${text(r.ip)},"user_agent":${text(r.user_agent)},` +
    `"headers":${json(r.headers)},"request_body":${text(r.request_body)},"response_body":${text(r.response_body)},` +
    `"body_truncated":${r.body_truncated ? 'true' : 'false'},"stream_body":${text(r.stream_body)},` +
    `"aborted":${r.aborted ? 'true' : 'false'},"error":${text(r.error)},` +
    `"ts":"${archiveUtc(r.ts_ms)}","received_at":"${archiveUtc(r.received_ms)}"}`
  );
}

/** An event as an export line (core's EXPORT_FIELDS.events, in that order). */
export function eventExportLine(r: EventLineRow): string {
  return `{"id":${text(r.uuid)},"name":${text(r.name)},"userId":${orNull(r.user_id)},"anonymousId":${orNull(r.anonymous_id)},"timestamp":"${isoUtc(r.ts_ms)}","receivedAt":"${isoUtc(r.received_ms)}","properties":${json(r.properties)},"context":${json(r.context)}}`;
}

/** A request log as an export line (core's EXPORT_FIELDS.logs, in that order). */
export function requestLogExportLine(r: RequestLogLineRow): string {
  return (
    `{"id":${text(r.uuid)},"requestId":${text(r.request_id)},"method":${text(r.method)},"route":${orNull(r.route)},` +
    `"url":${text(r.url)},"status":${r.status},"durationMs":${JSON.stringify(r.duration_ms)},` +
    `"requestBytes":${JSON.stringify(r.request_bytes)},"responseBytes":${JSON.stringify(r.response_bytes)},` +
    `"userId":${orNull(r.user_id)},"apiKeyId":${text(r.api_key_id)},"ip":${text(r.ip)},` +
    `"userAgent":${text(r.user_agent)},"aborted":${r.aborted ? 'true' : 'false'},"error":${text(r.error)},` +
    `"timestamp":"${isoUtc(r.ts_ms)}","receivedAt":"${isoUtc(r.received_ms)}",` +
    `"bodyTruncated":${r.body_truncated ? 'true' : 'false'},"headers":${json(r.headers)},` +
    `"requestBody":${text(r.request_body)},"responseBody":${text(r.response_body)},"streamBody":${text(r.stream_body)}}`
  );
}

/** A time of an archive line (any offset, up to microseconds) as the envelope's ISO time. */
function time(value: string, what: string): string {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new RangeError(`archived row: ${what} "${value}" is not a time`);
  return isoTime(ms);
}

/** An archived event line, from either engine, as the row the store inserts. */
export function eventFromArchive(line: string): EventRow {
  const a = JSON.parse(line) as ArchivedEvent;
  return {
    id: a.id,
    tenantId: a.tenant_id,
    name: a.name,
    ...(a.user_id !== null && a.user_id !== undefined ? { userId: a.user_id } : {}),
    ...(a.anonymous_id !== null && a.anonymous_id !== undefined ? { anonymousId: a.anonymous_id } : {}),
    properties: a.properties ?? {},
    context: (a.context ?? {}) as EventContext,
    timestamp: time(a.ts, 'ts'),
    receivedAt: time(a.received_at, 'received_at'),
  };
}

/** An archived request log line, from either engine, as the row the store inserts. */
export function requestLogFromArchive(line: string): RequestLogRow {
  const a = JSON.parse(line) as ArchivedRequestLog;
  const row: RequestLogRow = {
    id: a.id,
    tenantId: a.tenant_id,
    method: a.method,
    url: a.url,
    status: a.status,
    durationMs: a.duration_ms,
    timestamp: time(a.ts, 'ts'),
    receivedAt: time(a.received_at, 'received_at'),
  };
  const optional = {
    requestId: a.request_id,
    route: a.route,
    requestBytes: a.request_bytes,
    responseBytes: a.response_bytes,
    userId: a.user_id,
    apiKeyId: a.api_key_id,
    ip: a.ip,
    userAgent: a.user_agent,
    headers: a.headers,
    requestBody: a.request_body,
    responseBody: a.response_body,
    streamBody: a.stream_body,
    error: a.error,
  };
  for (const [k, v] of Object.entries(optional)) if (v !== null && v !== undefined) Object.assign(row, { [k]: v });
  if (a.body_truncated) row.bodyTruncated = true;
  if (a.aborted) row.aborted = true;
  return row;
}
