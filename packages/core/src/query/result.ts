/**
 * What a query answers, on every engine: columns, rows and how it was answered. Rows are plain JSON
 * values (they cross a worker thread by structured clone and go out as JSON or CSV unchanged): times are
 * ISO strings in UTC, numbers are numbers, a missing value is null.
 */

export type ColumnType = 'time' | 'string' | 'number' | 'boolean' | 'json';

export interface Column {
  name: string;
  type: ColumnType;
}

export type Cell = string | number | boolean | null;

/** Where an answer came from: the hourly rollups, or the detail rows. */
export type QuerySource = 'rollup' | 'detail';

export interface QueryMeta {
  source: QuerySource;
  /** Wall time of the query in the engine, ms. */
  ms: number;
  /** Rows were cut at a limit (the result-size limit, a breakdown's top N, a page). */
  truncated: boolean;
  /** The range the query covered, resolved in its time zone: ISO instants, half-open [from, to). */
  range: { from: string; to: string };
  /** With `explain: true`: which source and why. */
  explain?: { source: QuerySource; reason: string };
  /** Logs: the cursor of the next page, absent on the last. */
  next?: string;
}

export interface QueryResult {
  columns: Column[];
  rows: Cell[][];
  meta: QueryMeta;
}

export interface QueryOptions {
  /** "Now" for relative ranges (epoch ms); default Date.now(). */
  now?: number;
  /** Statement timeout per query, ms (Postgres; PGlite cannot interrupt a statement). Default 30 000. */
  timeoutMs?: number;
  /** Most rows an answer holds; more are cut and `meta.truncated` set. Default 10 000. */
  maxRows?: number;
  /**
   * The event names the caller's catalog lists: an `explore` of events then says of each whether it is
   * listed (a column `listed`), so events nobody declared stand out. Names, not the catalog: options
   * cross to the store's worker thread by structured clone.
   */
  listedEvents?: readonly string[];
}

export const DEFAULT_QUERY_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_ROWS = 10_000;
