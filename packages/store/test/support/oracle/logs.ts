/**
 * Logs, plainly (docs/query.md "Logs"): the tenant's request logs in the range that match every filter,
 * newest first, equal times by id descending. Paging is the engine's business; the suite walks the
 * pages and compares the walk with this list.
 */
import type { LogsQuery } from '@tally/core';
import type { RequestLogRow } from '../../../src/index.js';
import { tsOf } from './common.js';
import { UNMATCHED } from './routes.js';

/** Rows as the answer's columns: id, time, method, route, url, status, duration_ms, user_id, api_key_id,
 * request_bytes, response_bytes, error. */
export function logsOracle(
  rows: readonly RequestLogRow[],
  q: LogsQuery,
  frame: { tenant: string; from: number; to: number },
): unknown[][] {
  const f = q.filters;
  const out = rows.filter((r) => {
    const t = tsOf(r);
    if (r.tenantId !== frame.tenant || t < frame.from || t >= frame.to) return false;
    if (f.status !== undefined && r.status !== f.status) return false;
    if (f.statusClass !== undefined && `${Math.floor(r.status / 100)}xx` !== f.statusClass) return false;
    if (f.method !== undefined && r.method !== f.method) return false;
    if (f.route !== undefined && (r.route ?? UNMATCHED) !== f.route) return false;
    if (f.userId !== undefined && r.userId !== f.userId) return false;
    if (f.apiKeyId !== undefined && r.apiKeyId !== f.apiKeyId) return false;
    if (f.url !== undefined && !r.url.includes(f.url)) return false;
    return true;
  });
  out.sort((a, b) => tsOf(b) - tsOf(a) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  return out.map((r) => [
    r.id,
    new Date(tsOf(r)).toISOString(),
    r.method,
    r.route ?? null,
    r.url,
    r.status,
    r.durationMs,
    r.userId ?? null,
    r.apiKeyId ?? null,
    r.requestBytes ?? null,
    r.responseBytes ?? null,
    r.error ?? null,
  ]);
}
