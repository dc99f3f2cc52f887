/** What a kind's runner gets on ClickHouse, and what it answers (runQuery adds timing and range). */
import type { Cell, Column, Query, QuerySource, RollupDimensions } from '@tally/core';
import type { ClickHouseClient, Settings } from '../client.js';

export interface QueryContext {
  client: ClickHouseClient;
  /** The database the tables live in (a plain identifier: `${db}.events`). */
  db: string;
  /** Every statement of the answer carries these (the time limit). */
  settings: Settings;
  tenantId: string;
  tz: string;
  /** The resolved range, epoch ms, half-open. */
  from: number;
  to: number;
  now: number;
  maxRows: number;
  /** The dimensions the hourly rollup is built for (rollup.ts): its sealed days count only if built for these. */
  dimensions: RollupDimensions;
  listedEvents?: ReadonlySet<string>;
}

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
