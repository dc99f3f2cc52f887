/**
 * The Store's shape, below everything that implements or uses it: the engines open what `Engine`
 * describes, store.ts builds a `Store` on one, and the writer, the worker proxy and the lifecycle jobs
 * take a `Store` without depending on how it was made.
 */
import type { HistoryItem, HistoryQuery, Query, RequestLogDetail } from '@tally/core';
import type { QueryOptions, QueryResult } from './query/types.js';
import type { EventRow, RequestLogRow } from './rows.js';
import type { SqlClient } from './sql-client.js';

/** The engines a relational Store runs on (one folder each under engines/). */
export type StoreKind = 'pglite' | 'postgres';

export interface StoreCapabilities {
  /** Several writers may insert at once (a pool); PGlite runs one statement at a time. */
  concurrentWrites: boolean;
  /** Row-level security is enforced for the tenant role. */
  rowLevelSecurity: boolean;
  /** Advisory locks coordinate processes (jobs, migrations). */
  crossProcessLocks: boolean;
}

export interface Store {
  readonly kind: StoreKind;
  readonly schema: string;
  readonly capabilities: StoreCapabilities;
  /** Direct SQL for queries and tests (the service role's view: every tenant). */
  readonly sql: SqlClient;
  migrate(): Promise<{ applied: string[] }>;
  /** Inserts new events, updates their rollups; returns the ids actually inserted (not duplicates). */
  insertEvents(rows: readonly EventRow[]): Promise<string[]>;
  insertRequestLogs(rows: readonly RequestLogRow[]): Promise<string[]>;
  /** Runs `fn` as the tenant role with `tally.tenant_id` set: row-level security shows only that tenant. */
  asTenant<T>(tenantId: string, fn: (sql: SqlClient) => Promise<T>): Promise<T>;
  /** A user's own request logs, newest first, keyset-paged on (ts, id); read as the tenant role (RLS). */
  requestHistory(query: HistoryQuery): Promise<HistoryItem[]>;
  /**
   * One request log with its (redacted, truncated) bodies; undefined when absent or someone else's. With
   * `userId` only that user's; with null any of the tenant's (read and admin keys).
   */
  requestLog(tenantId: string, userId: string | null, id: string): Promise<RequestLogDetail | undefined>;
  /**
   * Answers an analytics query (already validated by parseQuery) for one tenant, on the engine's query
   * connections (Postgres: a pool of its own, so a slow query never holds a writer's connection).
   */
  query(tenantId: string, query: Query, options?: QueryOptions): Promise<QueryResult>;
  /** Detail and rollup totals: the exactly-once invariant is events = eventRollup, requestLogs = pathRollup. */
  totals(): Promise<{ events: number; eventRollup: number; requestLogs: number; pathRollup: number }>;
  close(): Promise<void>;
}

/** An opened engine: the connection the Store's SQL runs on, and what that engine can do. */
export interface Engine {
  readonly kind: StoreKind;
  readonly schema: string;
  readonly sql: SqlClient;
  /** Connections for analytics queries, apart from the writers' (Postgres); `sql` where there is one. */
  readonly querySql?: SqlClient;
  readonly capabilities: StoreCapabilities;
  close(): Promise<void>;
}
