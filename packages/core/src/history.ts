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
