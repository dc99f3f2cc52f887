/**
 * Batches of rows in COPY's binary format (copy-binary.ts), column for column as store.ts COPYs them, for
 * the direct COPY (direct-copy.ts), which goes in binary whenever every value of a batch encodes so.
 */
import { BinaryCopyBuffer } from './copy-binary.js';
import type { EventRow, RequestLogRow } from './rows.js';

/** First guesses of a COPY line's size (CopyBuffer and BinaryCopyBuffer grow past them). */
export const EVENT_ROW_BYTES = 400;
export const REQUEST_LOG_ROW_BYTES = 1024;

/**
 * A batch of events in COPY's binary format, in store.ts's EVENT_COLUMNS order, or undefined when a
 * value does not encode so (a malformed id, a time not in canonical form, a value of the wrong type):
 * the text format then leaves accepting or refusing it to Postgres, as before.
 */
export function eventsBinary(rows: readonly EventRow[], contextJson: (value: unknown) => string): Buffer | undefined {
  const data = new BinaryCopyBuffer(rows.length * EVENT_ROW_BYTES);
  for (const r of rows) {
    data.row(9);
    const encoded =
      data.uuid(r.id) &&
      data.text(r.tenantId) &&
      data.text(r.name) &&
      data.text(r.userId) &&
      data.text(r.anonymousId) &&
      data.jsonb(JSON.stringify(r.properties)) &&
      data.jsonb(contextJson(r.context)) &&
      data.timestamptz(r.timestamp) &&
      data.timestamptz(r.receivedAt);
    if (!encoded) return undefined;
  }
  return data.bytes();
}

/** A batch of request logs in COPY's binary format, in REQUEST_LOG_COLUMNS order, or undefined (as eventsBinary). */
export function requestLogsBinary(rows: readonly RequestLogRow[]): Buffer | undefined {
  const data = new BinaryCopyBuffer(rows.length * REQUEST_LOG_ROW_BYTES);
  for (const r of rows) {
    data.row(23);
    const encoded =
      data.uuid(r.id) &&
      data.text(r.tenantId) &&
      data.text(r.requestId) &&
      data.text(r.method) &&
      data.text(r.route) &&
      data.text(r.url) &&
      data.int4(r.status) &&
      data.float8(r.durationMs) &&
      data.int4(r.requestBytes) &&
      data.int4(r.responseBytes) &&
      data.text(r.userId) &&
      data.text(r.apiKeyId) &&
      data.text(r.ip) &&
      data.text(r.userAgent) &&
      (r.headers === undefined ? data.text(null) : data.jsonb(JSON.stringify(r.headers))) &&
      data.text(r.requestBody) &&
      data.text(r.responseBody) &&
      data.bool(r.bodyTruncated) &&
      data.text(r.streamBody) &&
      data.bool(r.aborted) &&
      data.text(r.error) &&
      data.timestamptz(r.timestamp) &&
      data.timestamptz(r.receivedAt);
    if (!encoded) return undefined;
  }
  return data.bytes();
}
