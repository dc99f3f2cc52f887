/**
 * The Store's shape, below everything that implements or uses it: the engines open what `Engine`
 * describes, store.ts builds a `Store` on one, and the writer, the worker proxy and the lifecycle jobs
 * take a `Store` without depending on how it was made.
 */
import type { AnalyticsStore, DetailStore } from '@tally/core';
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

/** The relational store: an analytics store that also holds the control plane, reachable by SQL. */
export interface Store extends AnalyticsStore {
  readonly kind: StoreKind;
  readonly schema: string;
  readonly capabilities: StoreCapabilities;
  /** Direct SQL for queries and tests (the service role's view: every tenant). */
  readonly sql: SqlClient;
  migrate(): Promise<{ applied: string[] }>;
  /** Runs `fn` as the tenant role with `tally.tenant_id` set: row-level security shows only that tenant. */
  asTenant<T>(tenantId: string, fn: (sql: SqlClient) => Promise<T>): Promise<T>;
  /**
   * Where the lifecycle jobs and the export find the detail rows when another engine holds them
   * (ClickHouse); absent, they are this store's own tables (`detailOf`).
   */
  readonly detail?: DetailStore;
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
