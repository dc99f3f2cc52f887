/**
 * The request-history contract between the store (which answers it under row-level security) and the
 * history routes (which serve it): a user's own request logs, newest first, keyset-paged on (ts, id).
 */

export interface HistoryQuery {
  tenantId: string;
  userId: string;
  /** Rows strictly older than this (ts, id) position: the decoded cursor. */
  before?: { ts: string; id: string };
  from?: string;
  to?: string;
  /** 2, 3, 4 or 5: the status class. */
  statusClass?: number;
  route?: string;
  limit: number;
}

/** A history row: what a user may see in a list (never bodies or headers). */
export interface HistoryItem {
  id: string;
  requestId: string | null;
  method: string;
  route: string | null;
  url: string;
  status: number;
  durationMs: number;
  requestBytes: number | null;
  responseBytes: number | null;
  aborted: boolean;
  error: string | null;
  timestamp: string;
}

export interface HistoryDetail extends HistoryItem {
  headers: Record<string, string> | null;
  requestBody: string | null;
  responseBody: string | null;
  bodyTruncated: boolean;
  userAgent: string | null;
}

/**
 * One request log as the tenant's readers see it (`GET /v1/query/logs/:id`): the history detail, who sent
 * the request (user, API key id, address) and a streamed response's capture. End users' own history shows
 * the HistoryDetail part only (historyDetailOf).
 */
export interface RequestLogDetail extends HistoryDetail {
  userId: string | null;
  apiKeyId: string | null;
  ip: string | null;
  streamBody: string | null;
}

/** The fields of HistoryDetail only: what a user's own history may show of a stored log. */
export function historyDetailOf(d: HistoryDetail): HistoryDetail {
  return {
    id: d.id,
    requestId: d.requestId,
    method: d.method,
    route: d.route,
    url: d.url,
    status: d.status,
    durationMs: d.durationMs,
    requestBytes: d.requestBytes,
    responseBytes: d.responseBytes,
    aborted: d.aborted,
    error: d.error,
    timestamp: d.timestamp,
    headers: d.headers,
    requestBody: d.requestBody,
    responseBody: d.responseBody,
    bodyTruncated: d.bodyTruncated,
    userAgent: d.userAgent,
  };
}
