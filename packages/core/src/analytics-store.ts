/**
 * What an analytics store is, whatever engine holds the rows: where the writer puts events and request
 * logs, and where the query API, the history API and the dashboard read them. The relational store
 * (PGlite, Postgres) is one and also keeps the control plane; ClickHouse is the other.
 */
import type { TallyEvent } from './envelope.js';
import type { HistoryItem, HistoryQuery, RequestLogDetail } from './history.js';
import type { QueryOptions, QueryResult } from './query/result.js';
import type { Query } from './query/model.js';
import type { RequestLogRecord } from './request-log.js';

/** An event as stored: the envelope plus the server's arrival time. */
export type EventRow = TallyEvent & { receivedAt: string };

/** A request log as stored: the record the Fastify plugin builds, plus the server's arrival time. */
export type RequestLogRow = RequestLogRecord & { receivedAt: string };

/** Upper bounds (ms) of the latency histogram buckets of route stats; a last bucket takes the rest. */
export const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000] as const;

/** Detail and rollup totals: the exactly-once invariant is events = eventRollup, requestLogs = pathRollup. */
export interface StoreTotals {
  events: number;
  eventRollup: number;
  requestLogs: number;
  pathRollup: number;
}

export interface AnalyticsStore {
  /** Inserts new events (and their rollups); returns the ids actually inserted (not duplicates). */
  insertEvents(rows: readonly EventRow[]): Promise<string[]>;
  insertRequestLogs(rows: readonly RequestLogRow[]): Promise<string[]>;
  /** A user's own request logs, newest first, keyset-paged on (ts, id). */
  requestHistory(query: HistoryQuery): Promise<HistoryItem[]>;
  /**
   * One request log with its (redacted, truncated) bodies; undefined when absent or someone else's. With
   * `userId` only that user's; with null any of the tenant's (read and admin keys).
   */
  requestLog(tenantId: string, userId: string | null, id: string): Promise<RequestLogDetail | undefined>;
  /** Answers an analytics query (already validated by parseQuery) for one tenant. */
  query(tenantId: string, query: Query, options?: QueryOptions): Promise<QueryResult>;
  totals(): Promise<StoreTotals>;
  close(): Promise<void>;
}
