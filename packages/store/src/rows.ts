import type { RequestLogRecord, TallyEvent } from '@tally/core';

/** An event as stored: the envelope plus the server's arrival time. */
export type EventRow = TallyEvent & { receivedAt: string };

/** A request log as stored: the record the Fastify plugin builds, plus the server's arrival time. */
export type RequestLogRow = RequestLogRecord & { receivedAt: string };

/** Upper bounds (ms) of the latency histogram buckets in path_stats_hourly; a last bucket takes the rest. */
export const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000] as const;
