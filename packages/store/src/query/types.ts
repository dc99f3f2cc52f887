/**
 * The query side's own types. What a query answers (QueryResult and its parts) and its options are
 * core's, shared with every analytics store; here is what the Postgres engine's kind runners take.
 */
import type { Cell, Column, Query, QuerySource, RollupDimensions } from '@tally/core';
import type { SqlClient } from '../sql-client.js';

export type {
  Cell,
  Column,
  ColumnType,
  QueryMeta,
  QueryOptions,
  QueryResult,
  QuerySource,
  RollupDimensions,
} from '@tally/core';

/** What a kind's runner gets: a connection that sees only the tenant's rows, and the resolved range. */
export interface QueryContext {
  /** Inside a transaction as the tenant role (row-level security) with the statement timeout set. */
  sql: SqlClient;
  tenantId: string;
  tz: string;
  /** The resolved range, epoch ms, half-open. */
  from: number;
  to: number;
  now: number;
  maxRows: number;
  dimensions: RollupDimensions;
  listedEvents?: ReadonlySet<string>;
}

/** A kind runner's answer; runQuery adds the timing, the range and the explanation. */
export interface KindAnswer {
  columns: Column[];
  rows: Cell[][];
  source: QuerySource;
  /** Why this source (for `explain`), in a sentence a user understands. */
  reason: string;
  truncated?: boolean;
  next?: string;
}

export type KindRunner<Q extends Query> = (query: Q, ctx: QueryContext) => Promise<KindAnswer>;
