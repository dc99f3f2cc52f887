import type { TallyEvent } from '@tally/core';

/** An event as stored: the envelope plus the server's arrival time. */
export type EventRow = TallyEvent & { receivedAt: string };

/** One HTTP request log (written by the Fastify plugin). Bodies are already redacted and truncated. */
export interface RequestLogRow {
  id: string;
  tenantId: string;
  requestId?: string;
  method: string;
  /** The route template (`/users/:id`), not the raw URL: keeps rollup cardinality low. */
  route?: string;
  url: string;
  status: number;
  durationMs: number;
  requestBytes?: number;
  responseBytes?: number;
  userId?: string;
  apiKeyId?: string;
  ip?: string;
  userAgent?: string;
  headers?: Record<string, string>;
  requestBody?: string;
  responseBody?: string;
  bodyTruncated?: boolean;
  streamBody?: string;
  aborted?: boolean;
  error?: string;
  timestamp: string;
  receivedAt: string;
}

/** Upper bounds (ms) of the latency histogram buckets in path_stats_hourly; a last bucket takes the rest. */
export const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000] as const;
