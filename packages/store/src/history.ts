/**
 * A user's own request history, read as the tenant role: row-level security, not only the WHERE clause,
 * keeps one tenant from another's rows.
 */
import type { HistoryItem, HistoryQuery, RequestLogDetail } from '@tally/core';
import type { SqlClient } from './sql-client.js';
import { asTenantRole } from './tenant-role.js';

const HISTORY_COLUMNS = `id::text AS id, request_id, method, route, url, status, duration_ms, request_bytes,
  response_bytes, aborted, error, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ts_iso`;

/** The user's request logs, newest first, keyset-paged on (ts, id). */
export function requestHistory(sql: SqlClient, q: HistoryQuery): Promise<HistoryItem[]> {
  return sql.transaction(async (tx) => {
    await asTenantRole(tx, q.tenantId);
    const params: unknown[] = [q.tenantId, q.userId];
    let where = 'tenant_id = $1 AND user_id = $2';
    const add = (clause: string, value: unknown) => {
      params.push(value);
      where += ` AND ${clause.replace('?', `$${params.length}`)}`;
    };
    if (q.before) {
      params.push(q.before.ts, q.before.id);
      where += ` AND (ts, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`;
    }
    if (q.from) add('ts >= ?::timestamptz', q.from);
    if (q.to) add('ts < ?::timestamptz', q.to);
    if (q.statusClass) add('status / 100 = ?::int', q.statusClass);
    if (q.route) add('route = ?', q.route);
    params.push(q.limit);
    const rows = await tx.query<Record<string, unknown>>(
      `SELECT ${HISTORY_COLUMNS} FROM request_logs WHERE ${where} ORDER BY ts DESC, id DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map(historyItem);
  });
}

/**
 * One request log with its bodies and who sent it: of this user (userId), or any of the tenant's (null);
 * undefined when absent or someone else's.
 */
export function requestLog(
  sql: SqlClient,
  tenantId: string,
  userId: string | null,
  id: string,
): Promise<RequestLogDetail | undefined> {
  return sql.transaction(async (tx) => {
    await asTenantRole(tx, tenantId);
    const [row] = await tx.query<Record<string, unknown>>(
      `SELECT ${HISTORY_COLUMNS}, headers, request_body, response_body, body_truncated, user_agent,
              user_id, api_key_id, ip, stream_body
           FROM request_logs WHERE tenant_id = $1 AND ($2::text IS NULL OR user_id = $2) AND id = $3::uuid`,
      [tenantId, userId, id],
    );
    if (!row) return undefined;
    return {
      ...historyItem(row),
      headers: (row.headers as Record<string, string> | null) ?? null,
      requestBody: (row.request_body as string | null) ?? null,
      responseBody: (row.response_body as string | null) ?? null,
      bodyTruncated: Boolean(row.body_truncated),
      userAgent: (row.user_agent as string | null) ?? null,
      userId: (row.user_id as string | null) ?? null,
      apiKeyId: (row.api_key_id as string | null) ?? null,
      ip: (row.ip as string | null) ?? null,
      streamBody: (row.stream_body as string | null) ?? null,
    };
  });
}

function historyItem(row: Record<string, unknown>): HistoryItem {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    id: String(row.id),
    requestId: (row.request_id as string | null) ?? null,
    method: String(row.method),
    route: (row.route as string | null) ?? null,
    url: String(row.url),
    status: Number(row.status),
    durationMs: Number(row.duration_ms),
    requestBytes: num(row.request_bytes),
    responseBytes: num(row.response_bytes),
    aborted: Boolean(row.aborted),
    error: (row.error as string | null) ?? null,
    timestamp: String(row.ts_iso),
  };
}
