export { DEFAULT_MAX_ROWS, DEFAULT_QUERY_TIMEOUT_MS } from '@tally/core';
export { runQuery } from './run.js';
export type {
  Cell,
  Column,
  ColumnType,
  QueryMeta,
  QueryOptions,
  QueryResult,
  QuerySource,
  RollupDimensions,
} from './types.js';
