/**
 * The wire format as protobuf (proto/tally/v1/batch.proto): a `tally.v1.Batch` read into the same
 * batch the JSON of docs/wire-format.md parses to, and written from events. Receivers decode here and
 * then treat the batch exactly as a JSON one (the same checks, quarantine and dedupe), so the same batch
 * in either format stores identical rows.
 *
 * A batch whose framing cannot be read is refused whole (`ProtobufError`). Where the framing reads but
 * one event does not (a string that is not UTF-8, a context key both a field and in `extra`), that
 * event alone becomes an `UnreadableItem` (its bytes as base64 for the quarantine) and the rest go on.
 *
 * A subpath of its own (`@tally/core/protobuf`): only the code that speaks protobuf loads its runtime.
 */
import { create, fromBinary, type JsonObject, toBinary } from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { type EventContext, type TallyEvent, UnreadableItem } from './envelope.js';
import { readBatch, REQUEST_LOG_ORDER } from './protobuf-read.js';
import { REQUEST_LOG_EVENT, type RequestLogRecord } from './request-log.js';
import {
  type Batch,
  BatchSchema,
  type Context,
  ContextSchema,
  type Event,
  EventSchema,
  type RequestLog,
  RequestLogSchema,
} from './proto/tally/v1/batch_pb.js';
import type { JsonValue } from './schema.js';

/** The media type of a protobuf batch, over HTTP and in a NATS message's `Content-Type` header. */
export const PROTOBUF_CONTENT_TYPE = 'application/x-protobuf';

/** Media types read as a protobuf batch (the first is what Tally sends). */
export const PROTOBUF_CONTENT_TYPES: readonly string[] = [
  PROTOBUF_CONTENT_TYPE,
  'application/protobuf',
  'application/vnd.google.protobuf',
];

/** Whether a Content-Type header names a protobuf batch (parameters such as `; proto=…` allowed). */
export function isProtobufContentType(header: string | undefined): boolean {
  if (!header) return false;
  const type = header.split(';', 1)[0]?.trim().toLowerCase() ?? '';
  return PROTOBUF_CONTENT_TYPES.includes(type);
}

/** The bytes are not a `tally.v1.Batch`: nothing of it can be read. */
export class ProtobufError extends Error {
  override readonly name = 'ProtobufError';
}

/** A decoded batch, shaped as the JSON one parses to (each item an event object or an UnreadableItem). */
export interface DecodedBatch {
  batch: unknown[];
  context?: EventContext;
  sentAt?: string;
}

/**
 * Reads a `tally.v1.Batch`; throws ProtobufError when its framing cannot be read. Read directly into
 * plain objects (protobuf-read.ts) when the input is as encoders write it, else by reflection.
 */
export function decodeBatch(bytes: Uint8Array): DecodedBatch {
  try {
    return readBatch(bytes);
  } catch {
    return decodeBatchByReflection(bytes);
  }
}

/**
 * decodeBatch by the generated code's own (reflective) decoding: what decodeBatch falls back on for
 * input its direct reader leaves alone (protobuf-read.ts). Exported for the tests that hold the two to
 * the same results.
 */
export function decodeBatchByReflection(bytes: Uint8Array): DecodedBatch {
  let batch: Batch;
  try {
    batch = fromBinary(BatchSchema, bytes);
  } catch {
    // Some part is unreadable: find out which, event by event (rare, so not done for every batch).
    return decodeEventByEvent(bytes);
  }
  const out: DecodedBatch = { batch: batch.events.map((e) => eventItem(e, () => toBinary(EventSchema, e))) };
  if (batch.context) {
    const context = contextJson(batch.context);
    if (typeof context === 'string') throw new ProtobufError(`batch context: ${context}`);
    out.context = context;
  }
  if (batch.sentAt !== '') out.sentAt = batch.sentAt;
  return out;
}

/** The batch's fields one by one: each event decoded alone, so one bad event does not take the rest. */
function decodeEventByEvent(bytes: Uint8Array): DecodedBatch {
  const out: DecodedBatch = { batch: [] };
  const reader = new BinaryReader(bytes);
  try {
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field === 1 && wireType === WireType.LengthDelimited) {
        const event = reader.bytes();
        let decoded: Event;
        try {
          decoded = fromBinary(EventSchema, event);
        } catch (e) {
          out.batch.push(new UnreadableItem(`event: ${(e as Error).message}`, { protobuf: base64(event) }));
          continue;
        }
        out.batch.push(eventItem(decoded, () => event));
      } else if (field === 2 && wireType === WireType.LengthDelimited) {
        const context = contextJson(fromBinary(ContextSchema, reader.bytes()));
        if (typeof context === 'string') throw new ProtobufError(`batch context: ${context}`);
        out.context = context;
      } else if (field === 3 && wireType === WireType.LengthDelimited) {
        out.sentAt = reader.string();
      } else {
        reader.skip(wireType, field);
      }
    }
  } catch (e) {
    if (e instanceof ProtobufError) throw e;
    throw new ProtobufError(`not a tally.v1.Batch: ${(e as Error).message}`);
  }
  return out;
}

/** An event as the JSON item it stands for (keys in the order the JSON envelope has them). */
function eventItem(e: Event, bytes: () => Uint8Array): Record<string, unknown> | UnreadableItem {
  const item: Record<string, unknown> = { id: e.id, name: e.name, tenantId: e.tenantId };
  if (e.userId !== undefined) item.userId = e.userId;
  if (e.anonymousId !== undefined) item.anonymousId = e.anonymousId;
  const payload = e.payload;
  item.properties =
    payload.case === 'properties' ? payload.value : payload.case === 'request' ? requestLogJson(payload.value) : {};
  if (e.context) {
    const context = contextJson(e.context);
    if (typeof context === 'string') return new UnreadableItem(`context: ${context}`, { protobuf: base64(bytes()) });
    item.context = context;
  }
  item.timestamp = e.timestamp;
  return item;
}

/** Context's own fields, by their JSON names. */
const CONTEXT_FIELDS = ['service', 'requestId', 'taskId', 'sessionId', 'library', 'sampleRate'] as const;

/** A Context as its JSON object, or why it cannot be one. */
function contextJson(c: Context): EventContext | string {
  const out: EventContext = {};
  if (c.service !== undefined) out.service = c.service;
  if (c.requestId !== undefined) out.requestId = c.requestId;
  if (c.taskId !== undefined) out.taskId = c.taskId;
  if (c.sessionId !== undefined) out.sessionId = c.sessionId;
  if (c.library) out.library = { name: c.library.name, version: c.library.version };
  if (c.sampleRate !== undefined) out.sampleRate = c.sampleRate;
  if (c.extra) {
    for (const key of Object.keys(c.extra)) {
      if ((CONTEXT_FIELDS as readonly string[]).includes(key))
        return `"${key}" is a field of Context: set it there, not in extra`;
      // Defined, not assigned: `__proto__` is a key like any other in JSON (JSON.parse makes it an own
      // property), and an assignment would set the object's prototype instead.
      Object.defineProperty(out, key, { value: c.extra[key], enumerable: true, writable: true, configurable: true });
    }
  }
  return out;
}

/** A RequestLog as the `$request` event's properties (RequestLogRecord), keys in its order. */
function requestLogJson(r: RequestLog): Record<string, JsonValue> {
  const fields = r as unknown as Record<string, unknown>;
  const out: Record<string, JsonValue> = {};
  for (const [, name] of REQUEST_LOG_ORDER) {
    const v = fields[name];
    if (name === 'headers') {
      if (Object.keys(r.headers).length > 0) out.headers = { ...r.headers };
    } else if (v !== undefined) out[name] = typeof v === 'bigint' ? Number(v) : (v as JsonValue);
  }
  return out;
}

/**
 * Events as a `tally.v1.Batch`. Throws (TypeError) for what protobuf cannot carry: a `library` other
 * than `{name, version}` strings, a `sampleRate` that is not a number, a request log of the wrong shape.
 */
export function encodeBatch(events: readonly TallyEvent[], sentAt: string): Uint8Array {
  // As the JSON encoder does: the first event's context goes on the batch once, and every event sharing
  // that object (by identity) is written without its own.
  const shared = events[0]?.context;
  let sharing = 0;
  for (const e of events) if (e.context === shared) sharing++;
  const batchContext = sharing >= 2 && shared ? shared : undefined;
  const batch = create(BatchSchema, {
    sentAt,
    context: batchContext && contextMessage(batchContext),
    events: events.map((e) => {
      const event = create(EventSchema, {
        id: e.id,
        name: e.name,
        tenantId: e.tenantId,
        timestamp: e.timestamp,
        context: e.context === batchContext ? undefined : contextMessage(e.context),
      });
      if (e.userId !== undefined) event.userId = e.userId;
      if (e.anonymousId !== undefined) event.anonymousId = e.anonymousId;
      event.payload =
        e.name === REQUEST_LOG_EVENT
          ? { case: 'request', value: requestLogMessage(e.properties as unknown as RequestLogRecord) }
          : { case: 'properties', value: e.properties as JsonObject };
      return event;
    }),
  });
  return toBinary(BatchSchema, batch);
}

function contextMessage(c: EventContext): Context {
  const { service, requestId, taskId, sessionId, library, sampleRate, ...rest } = c;
  const out = create(ContextSchema, {});
  if (service !== undefined) out.service = stringOf('context.service', service);
  if (requestId !== undefined) out.requestId = stringOf('context.requestId', requestId);
  if (taskId !== undefined) out.taskId = stringOf('context.taskId', taskId);
  if (sessionId !== undefined) out.sessionId = stringOf('context.sessionId', sessionId);
  if (library !== undefined) {
    out.library = {
      $typeName: 'tally.v1.Library',
      name: stringOf('context.library.name', library.name),
      version: stringOf('context.library.version', library.version),
    };
  }
  if (sampleRate !== undefined) {
    if (typeof sampleRate !== 'number') throw new TypeError('context.sampleRate must be a number');
    out.sampleRate = sampleRate;
  }
  const extra = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) as JsonObject;
  if (Object.keys(extra).length > 0) out.extra = extra;
  return out;
}

function requestLogMessage(r: RequestLogRecord): RequestLog {
  const given = r as unknown as Record<string, unknown>;
  const out = create(RequestLogSchema, { headers: r.headers ?? {} });
  const fields = out as unknown as Record<string, unknown>;
  for (const [, name] of REQUEST_LOG_ORDER) {
    const v = given[name];
    if (name === 'headers' || v === undefined) continue;
    // uint64 on the wire: the byte counts are bigints in the message.
    fields[name] = name === 'requestBytes' || name === 'responseBytes' ? BigInt(v as number) : v;
  }
  return out;
}

function stringOf(path: string, v: unknown): string {
  if (typeof v !== 'string') throw new TypeError(`${path} must be a string`);
  return v;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Base64 (RFC 4648, padded) in plain JS: core uses no platform API (no Buffer, no btoa). */
function base64(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8) | (bytes[i + 2] as number);
    out += B64.charAt(n >> 18) + B64.charAt((n >> 12) & 63) + B64.charAt((n >> 6) & 63) + B64.charAt(n & 63);
  }
  const rest = bytes.length - i;
  if (rest > 0) {
    const n = ((bytes[i] as number) << 16) | (rest === 2 ? (bytes[i + 1] as number) << 8 : 0);
    out += B64.charAt(n >> 18) + B64.charAt((n >> 12) & 63) + (rest === 2 ? B64.charAt((n >> 6) & 63) : '=') + '=';
  }
  return out;
}
