/**
 * Stored rows as ClickHouse takes them: each table's columns, and its rows encoded in an insert format
 * (row-writer.ts).
 *
 * Properties and context are kept twice: as their JSON text (what detail and export give back, byte for
 * byte what was received) and flattened into three parallel arrays, one entry per value at any depth —
 * its path, its JSON type and its text — which is what filters, breakdowns and measures read. Debian's
 * server (18.16) has no JSON functions beyond `visitParam*`, which cannot tell `a.b` from a `b` elsewhere;
 * arrays work on every version and read only the columns a query needs (Plausible keeps its custom
 * properties the same way).
 */
import type { EventRow, JsonValue, RequestLogRow } from '@tally/core';
import { ClickHouseQueryError, type InsertData } from './client.js';
import { type InsertFormat, type RowWriter, rowWriter } from './row-writer.js';

/** JSON types of a flattened value, as stored in `attr_types`. JSON null is not stored: it reads as missing. */
export const T = { string: 1, number: 2, boolean: 3, object: 4, array: 5 } as const;

/**
 * A path's key in `attr_keys`: the root (`p` properties, `c` context) and the keys, joined by NUL. Keys
 * never hold NUL (Postgres refuses it in JSON; a key with one is skipped here), so `a.b` as one key and
 * `b` inside `a` stay apart.
 */
export const attrKey = (root: 'properties' | 'context', keys: readonly string[]): string =>
  [root === 'properties' ? 'p' : 'c', ...keys].join('\0');

/**
 * The flattened values of the row being encoded, in three parallel lists reused from row to row (no
 * arrays allocated per row): `count` entries, properties' first, then context's.
 */
const keys: string[] = [];
const types: number[] = [];
const values: string[] = [];
let count = 0;

function put(path: string, type: number, text: string): void {
  keys[count] = path;
  types[count] = type;
  values[count] = text;
  count++;
}

function flatten(value: JsonValue | undefined, path: string): void {
  if (value === null || value === undefined) return;
  if (typeof value === 'string') return put(path, T.string, value);
  // A number's JSON text is its ToString (JSON has no NaN or infinities: those are null, as JSON makes them).
  if (typeof value === 'number') return put(path, T.number, Number.isFinite(value) ? String(value) : 'null');
  if (typeof value === 'boolean') return put(path, T.boolean, value ? 'true' : 'false');
  if (Array.isArray(value)) return put(path, T.array, JSON.stringify(value));
  put(path, T.object, JSON.stringify(value));
  for (const k in value) if (!k.includes('\0')) flatten(value[k], `${path}\0${k}`);
}

/** Flattens `object`'s values under `root` (`p` or `c`) into the lists. */
function flattenRoot(object: Record<string, JsonValue | undefined>, root: string): void {
  for (const k in object) if (!k.includes('\0')) flatten(object[k], `${root}\0${k}`);
}

export const EVENT_COLUMNS = [
  'id',
  'tenant_id',
  'name',
  'user_id',
  'anonymous_id',
  'ts_ms',
  'received_ms',
  'sample_rate',
  'properties',
  'context',
  'attr_keys',
  'attr_types',
  'attr_values',
] as const;

/** Epoch ms of an ISO time the envelope checks let through. */
const ms = (iso: string): number => {
  const t = Date.parse(iso);
  // CANNOT_PARSE_DATETIME: a data error, as the server would report a time it cannot read.
  if (Number.isNaN(t)) throw new ClickHouseQueryError(`not a time: ${JSON.stringify(iso)}`, 41);
  return t;
};

/** Rows encoded for one insert, and where each row ends in the body (so a subset can be sent). */
export interface EncodedRows {
  readonly format: InsertFormat;
  readonly body: Buffer;
  readonly ends: Uint32Array;
  /** Each row's time (ts_ms), for the presence check. */
  readonly times: Float64Array;
}

/**
 * Rows encoded a slice at a time (`step`), so a large batch need not hold the event loop for its whole
 * encoding: an insert waiting on the server meanwhile gets its answer in time (see store.ts).
 */
export interface RowEncoder {
  readonly length: number;
  /** Rows encoded so far. */
  readonly encoded: number;
  /** Encodes rows up to position `to` (exclusive). */
  step(to: number): void;
  finish(): EncodedRows;
}

/** Bytes a row is expected to take: the buffer starts at that times the rows and grows if needed. */
const EVENT_BYTES = 512;
const REQUEST_LOG_BYTES = 384;

/**
 * An encoder of `rows` in `format`: `write` writes one row's columns and returns its time (ts_ms); the
 * shell keeps where each row ends, the rows' times and how far encoding has got.
 */
function encoderOf<R>(
  rows: readonly R[],
  format: InsertFormat,
  columns: readonly string[],
  rowBytes: number,
  write: (row: R, w: RowWriter) => number,
): RowEncoder {
  const w = rowWriter(format, columns, rows.length * rowBytes);
  const ends = new Uint32Array(rows.length);
  const times = new Float64Array(rows.length);
  let encoded = 0;
  return {
    length: rows.length,
    get encoded() {
      return encoded;
    },
    step(to: number): void {
      const end = Math.min(to, rows.length);
      for (let r = encoded; r < end; r++) {
        times[r] = write(rows[r] as R, w);
        ends[r] = w.endRow();
      }
      encoded = Math.max(encoded, end);
    },
    finish: () => ({ format, body: w.finish(), ends, times }),
  };
}

/** Every row of an encoder, at once. */
function allAtOnce(encoder: RowEncoder): EncodedRows {
  encoder.step(encoder.length);
  return encoder.finish();
}

/** Events as `format` (EVENT_COLUMNS). A context equal to the previous event's is flattened once. */
export function eventEncoder(rows: readonly EventRow[], format: InsertFormat): RowEncoder {
  let context: EventRow['context'] | undefined;
  let contextJson = '';
  // The flattened context, kept while consecutive events' contexts are equal (per encoder: encoders of
  // two batches may take turns).
  const contextKeys: string[] = [];
  const contextTypes: number[] = [];
  const contextValues: string[] = [];
  let contextCount = 0;
  return encoderOf(rows, format, EVENT_COLUMNS, EVENT_BYTES, (row, w) => {
    if (row.context !== context) {
      context = row.context;
      // TYPE_MISMATCH: a data error, as for any value of the wrong type.
      if (typeof context !== 'object' || context === null)
        throw new ClickHouseQueryError('context is not an object', 53);
      const json = JSON.stringify(context);
      // Equal JSON text, equal flattened values: a context sent with every event is flattened once.
      if (json !== contextJson) {
        contextJson = json;
        count = 0;
        flattenRoot(context as Record<string, JsonValue | undefined>, 'c');
        contextCount = count;
        for (let i = 0; i < count; i++) {
          contextKeys[i] = keys[i] as string;
          contextTypes[i] = types[i] as number;
          contextValues[i] = values[i] as string;
        }
      }
    }
    count = 0;
    flattenRoot(row.properties, 'p');
    for (let i = 0; i < contextCount; i++)
      put(contextKeys[i] as string, contextTypes[i] as number, contextValues[i] as string);
    const rate = (context as EventRow['context']).sampleRate;
    const ts = ms(row.timestamp);
    w.uuid(row.id);
    w.string(row.tenantId);
    w.string(row.name);
    w.string(row.userId ?? '');
    w.string(row.anonymousId ?? '');
    w.int64(ts);
    w.int64(ms(row.receivedAt));
    // What one stored event stands for: a sampled event kept at rate r counts 1/r in weighted counts.
    w.float64(typeof rate === 'number' && rate > 0 && rate <= 1 ? rate : 1);
    w.string(JSON.stringify(row.properties));
    w.string(contextJson);
    w.strings(keys, count);
    w.uint8s(types, count);
    w.strings(values, count);
    return ts;
  });
}

/** Events as `format`, all at once. */
export function encodeEvents(rows: readonly EventRow[], format: InsertFormat): EncodedRows {
  return allAtOnce(eventEncoder(rows, format));
}

/** One event as a JSONEachRow line (EVENT_COLUMNS), without its line feed. */
export function eventLine(row: EventRow): string {
  const { body } = encodeEvents([row], 'JSONEachRow');
  return body.toString('utf8', 0, body.length - 1);
}

export const REQUEST_LOG_COLUMNS = [
  'id',
  'tenant_id',
  'request_id',
  'method',
  'route',
  'url',
  'status',
  'duration_ms',
  'request_bytes',
  'response_bytes',
  'user_id',
  'api_key_id',
  'ip',
  'user_agent',
  'headers',
  'request_body',
  'response_body',
  'body_truncated',
  'stream_body',
  'aborted',
  'error',
  'ts_ms',
  'received_ms',
] as const;

/** Request logs as `format` (REQUEST_LOG_COLUMNS); absent optional fields are NULL. */
export function requestLogEncoder(rows: readonly RequestLogRow[], format: InsertFormat): RowEncoder {
  return encoderOf(rows, format, REQUEST_LOG_COLUMNS, REQUEST_LOG_BYTES, (row, w) => {
    const ts = ms(row.timestamp);
    w.uuid(row.id);
    w.string(row.tenantId);
    w.nullableString(row.requestId);
    w.string(row.method);
    w.string(row.route ?? '');
    w.string(row.url);
    w.uint16(row.status);
    w.float64(row.durationMs);
    w.nullableInt64(row.requestBytes);
    w.nullableInt64(row.responseBytes);
    w.string(row.userId ?? '');
    w.nullableString(row.apiKeyId);
    w.nullableString(row.ip);
    w.nullableString(row.userAgent);
    w.nullableString(row.headers ? JSON.stringify(row.headers) : undefined);
    w.nullableString(row.requestBody);
    w.nullableString(row.responseBody);
    w.uint8(row.bodyTruncated ? 1 : 0);
    w.nullableString(row.streamBody);
    w.uint8(row.aborted ? 1 : 0);
    w.nullableString(row.error);
    w.int64(ts);
    w.int64(ms(row.receivedAt));
    return ts;
  });
}

/** Request logs as `format`, all at once. */
export function encodeRequestLogs(rows: readonly RequestLogRow[], format: InsertFormat): EncodedRows {
  return allAtOnce(requestLogEncoder(rows, format));
}

/** The rows at `positions` (ascending) of `encoded`: the whole body when that is every row. */
export function pickRows(encoded: EncodedRows, positions: readonly number[]): InsertData {
  const { format, body, ends } = encoded;
  if (positions.length === ends.length) return { format, body, rows: positions.length };
  const parts: Buffer[] = [];
  let from = -1;
  let to = -1;
  for (const i of positions) {
    const start = i === 0 ? 0 : (ends[i - 1] as number);
    // Consecutive rows go in one slice.
    if (start === to) to = ends[i] as number;
    else {
      if (from !== -1) parts.push(body.subarray(from, to));
      from = start;
      to = ends[i] as number;
    }
  }
  if (from !== -1) parts.push(body.subarray(from, to));
  return { format, body: parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts), rows: positions.length };
}
