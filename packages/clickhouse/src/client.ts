/**
 * The little the store needs of a ClickHouse connection, on both engines Tally runs on: a server over
 * HTTP (`@clickhouse/client`) and the engine in-process (chDB, tests and benchmarks; see chdb-client.ts).
 * Statements are whole SQL text: Debian's server (18.16) has no query parameters, so values reach it only
 * through sql.ts's literals, on both engines alike.
 */
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { ClickHouseLogLevel, createClient } from '@clickhouse/client';
import type { InsertFormat } from './row-writer.js';

export type ClickHouseEngine = 'server' | 'chdb';

/** Rows for an insert: their bytes in one input format (row-writer.ts), and how many. */
export interface InsertData {
  format: InsertFormat;
  body: Buffer | string;
  rows: number;
}

/** Settings sent with a statement (`max_execution_time`, …). */
export type Settings = Readonly<Record<string, string | number>>;

export interface ClickHouseClient {
  readonly engine: ClickHouseEngine;
  /** A statement that answers no rows: DDL, `INSERT … SELECT`, `ALTER`. */
  command(sql: string, settings?: Settings): Promise<void>;
  /** A SELECT's rows as objects (JSONEachRow; 64-bit integers as numbers). */
  query<T = Record<string, unknown>>(sql: string, settings?: Settings): Promise<T[]>;
  /** The insert format this engine reads fastest (what the store encodes its rows in). */
  readonly insertFormat: InsertFormat;
  /** Rows into `table (columns)`; columns not listed take their DEFAULT. */
  insert(table: string, columns: readonly string[], data: InsertData, settings?: Settings): Promise<void>;
  close(): Promise<void>;
}

/**
 * A ClickHouse error with the server's numeric code (`Code: 60` is UNKNOWN_TABLE). `code` is an SQLSTATE
 * class where one applies, so the writer classifies it as it does a Postgres error: `22000` for a row
 * the server cannot take (a value it cannot parse or store), else the server's code as text (retried).
 */
export class ClickHouseQueryError extends Error {
  readonly clickhouseCode: number;
  readonly code: string;

  constructor(message: string, clickhouseCode: number, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ClickHouseQueryError';
    this.clickhouseCode = clickhouseCode;
    this.code = DATA_CODES.has(clickhouseCode) ? '22000' : String(clickhouseCode);
  }
}

/**
 * Codes that mean "this data", not "this server": CANNOT_PARSE_TEXT (6), CANNOT_PARSE_DATE (38),
 * CANNOT_PARSE_DATETIME (41), CANNOT_PARSE_NUMBER (72), INCORRECT_DATA (117), TOO_LARGE_STRING_SIZE (131),
 * CANNOT_PARSE_UUID (376), CANNOT_PARSE_INPUT_ASSERTION_FAILED (27), TYPE_MISMATCH (53).
 */
const DATA_CODES = new Set([6, 27, 38, 41, 53, 72, 117, 131, 376]);

/** The numeric code of a ClickHouse error message (`Code: 60. DB::Exception: …`), or 0. */
export function codeOf(message: string): number {
  const m = /Code: (\d+)/.exec(message);
  return m ? Number(m[1]) : 0;
}

export function toQueryError(error: unknown): unknown {
  if (error instanceof ClickHouseQueryError || !(error instanceof Error)) return error;
  const code = Number((error as { code?: unknown }).code);
  const clickhouseCode = Number.isInteger(code) && code > 0 ? code : codeOf(error.message);
  // A failure to connect keeps its own code (ECONNREFUSED…): the writer retries those.
  if (clickhouseCode === 0) return error;
  return new ClickHouseQueryError(error.message, clickhouseCode, { cause: error });
}

/** Every statement: 64-bit integers as JSON numbers (counts and epoch ms stay below 2^53). */
export const BASE_SETTINGS = { output_format_json_quote_64bit_integers: 0 } as const;

export interface ServerClientOptions {
  /** `http://user:password@host:8123` (a path names nothing: the store qualifies every table). */
  url: string;
  /** Each statement's longest run, ms (the HTTP request's timeout). Default 300 000. */
  requestTimeoutMs?: number;
  /** An insert's longest run, ms. Default 60 000. */
  insertTimeoutMs?: number;
  /** Connections kept open to the server. Default 10. */
  maxConnections?: number;
}

/** A ClickHouse server over HTTP. */
export function createServerClient(options: ServerClientOptions): ClickHouseClient {
  const client = createClient({
    url: options.url,
    request_timeout: options.requestTimeoutMs ?? 300_000,
    max_open_connections: options.maxConnections ?? 10,
    // Progress headers keep a long statement's connection alive through proxies that drop idle ones.
    clickhouse_settings: {
      ...BASE_SETTINGS,
      send_progress_in_http_headers: 1,
      http_headers_progress_interval_ms: '10000',
    },
    // The client compresses nothing by default; inserts of JSON rows shrink ~8× with gzip, for a little CPU.
    compression: { request: false, response: false },
    // Failures reach the caller as errors (the writer logs and counts them): no second report from here.
    log: { level: ClickHouseLogLevel.OFF },
  });
  const run = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (error) {
      throw toQueryError(error);
    }
  };
  return {
    engine: 'server',
    // RowBinary: the server parses no text (~30% less of its CPU per row than JSONEachRow; every format
    // the server reads is accepted here).
    insertFormat: 'RowBinary',
    command: (sql, settings) =>
      run(async () => {
        await client.command({ query: sql, ...(settings ? { clickhouse_settings: settings } : {}) });
      }),
    query: <T>(sql: string, settings?: Settings) =>
      run(async () => {
        const result = await client.query({
          query: sql,
          format: 'JSONEachRow',
          ...(settings ? { clickhouse_settings: settings } : {}),
        });
        return result.json<T>();
      }),
    insert: (table, columns, data, settings) =>
      run(async () => {
        // exec sends the body as it is: the rows are encoded already, no second encoding.
        const result = await client.exec({
          query: `INSERT INTO ${table} (${columns.join(', ')}) FORMAT ${data.format}`,
          values: Readable.from([typeof data.body === 'string' ? Buffer.from(data.body) : data.body]),
          // An insert that hangs (a server gone without a reset) fails in time; the writer retries it.
          abort_signal: AbortSignal.timeout(options.insertTimeoutMs ?? 60_000),
          ...(settings ? { clickhouse_settings: settings } : {}),
        });
        // Drained to its end; a connection that closes first is an error, never a wait without end.
        await finished(result.stream.resume());
      }),
    close: () => client.close(),
  };
}
