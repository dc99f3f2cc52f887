/**
 * A `tally.v1.Batch` read straight into the plain objects of the JSON batch, without making the
 * generated message objects first (the generated code's reflective decoding, then a conversion, costs
 * three times as much: bench/protobuf.bench.ts). It reads what Tally's and other encoders write; for
 * anything else (an unknown field, a message field given twice, which protobuf merges, a Struct value of
 * no kind, a context key both a field and in `extra`, bytes that do not read) it throws `Unusual`, and
 * the caller decodes by reflection instead, which answers every case as the protobuf spec says. The two
 * are held to the same results by test/protobuf.test.ts.
 */
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import type { EventContext } from './envelope.js';
import type { JsonValue } from './schema.js';

/** The input is not what this reader expects: decode it by reflection. */
export class Unusual extends Error {}
const unusual = new Unusual('unusual batch');

/** Nesting deeper than this (Structs in Structs) is left to the reflective decoder and its limits. */
const MAX_DEPTH = 64;

const LD = WireType.LengthDelimited;

export interface ReadBatch {
  batch: Record<string, unknown>[];
  context?: EventContext;
  sentAt?: string;
}

export function readBatch(bytes: Uint8Array): ReadBatch {
  try {
    return batch(new BinaryReader(bytes));
  } catch (e) {
    if (e instanceof Unusual) throw e;
    // Bytes that do not read (bad varint, past the end, not UTF-8): the reflective decoder says why.
    throw unusual;
  }
}

function batch(r: BinaryReader): ReadBatch {
  const out: ReadBatch = { batch: [] };
  let context = false;
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (wt !== LD) throw unusual;
    if (no === 1) out.batch.push(event(r, end(r)));
    else if (no === 2 && !context) {
      context = true;
      out.context = contextOf(r, end(r));
    } else if (no === 3) out.sentAt = r.string(true);
    else throw unusual;
  }
  // An empty sent_at is no sent_at (proto3: the default is not on the wire).
  if (out.sentAt === '') delete out.sentAt;
  return out;
}

/** The end of the length-delimited field that starts here. */
function end(r: BinaryReader): number {
  const e = r.uint32() + r.pos;
  if (e > r.len) throw unusual;
  return e;
}

function done(r: BinaryReader, e: number): void {
  if (r.pos !== e) throw unusual;
}

function event(r: BinaryReader, e: number): Record<string, unknown> {
  let id = '';
  let name = '';
  let tenantId = '';
  let userId: string | undefined;
  let anonymousId: string | undefined;
  let timestamp = '';
  let context: EventContext | undefined;
  let properties: Record<string, JsonValue> | undefined;
  while (r.pos < e) {
    const [no, wt] = r.tag();
    if (wt !== LD) throw unusual;
    switch (no) {
      case 1:
        id = r.string(true);
        break;
      case 2:
        name = r.string(true);
        break;
      case 3:
        tenantId = r.string(true);
        break;
      case 4:
        userId = r.string(true);
        break;
      case 5:
        anonymousId = r.string(true);
        break;
      case 6:
        timestamp = r.string(true);
        break;
      case 7:
        if (context) throw unusual;
        context = contextOf(r, end(r));
        break;
      case 8:
        if (properties) throw unusual;
        properties = struct(r, end(r), 0);
        break;
      case 9:
        if (properties) throw unusual;
        properties = requestLog(r, end(r));
        break;
      default:
        throw unusual;
    }
  }
  done(r, e);
  const item: Record<string, unknown> = { id, name, tenantId };
  if (userId !== undefined) item.userId = userId;
  if (anonymousId !== undefined) item.anonymousId = anonymousId;
  item.properties = properties ?? {};
  if (context) item.context = context;
  item.timestamp = timestamp;
  return item;
}

function contextOf(r: BinaryReader, e: number): EventContext {
  let service: string | undefined;
  let requestId: string | undefined;
  let taskId: string | undefined;
  let sessionId: string | undefined;
  let library: { name: string; version: string } | undefined;
  let sampleRate: number | undefined;
  let extra: Record<string, JsonValue> | undefined;
  while (r.pos < e) {
    const [no, wt] = r.tag();
    if (no === 6) {
      if (wt !== WireType.Bit64) throw unusual;
      sampleRate = r.double();
      continue;
    }
    if (wt !== LD) throw unusual;
    switch (no) {
      case 1:
        service = r.string(true);
        break;
      case 2:
        requestId = r.string(true);
        break;
      case 3:
        taskId = r.string(true);
        break;
      case 4:
        sessionId = r.string(true);
        break;
      case 5:
        if (library) throw unusual;
        library = libraryOf(r, end(r));
        break;
      case 7:
        if (extra) throw unusual;
        extra = struct(r, end(r), 0);
        break;
      default:
        throw unusual;
    }
  }
  done(r, e);
  const out: EventContext = {};
  if (service !== undefined) out.service = service;
  if (requestId !== undefined) out.requestId = requestId;
  if (taskId !== undefined) out.taskId = taskId;
  if (sessionId !== undefined) out.sessionId = sessionId;
  if (library) out.library = library;
  if (sampleRate !== undefined) out.sampleRate = sampleRate;
  if (extra) {
    for (const key in extra) {
      // A key that is also a field: refused by the reflective path, which says so.
      if (CONTEXT_FIELDS.has(key)) throw unusual;
      out[key] = extra[key];
    }
  }
  return out;
}

const CONTEXT_FIELDS = new Set(['service', 'requestId', 'taskId', 'sessionId', 'library', 'sampleRate']);

function libraryOf(r: BinaryReader, e: number): { name: string; version: string } {
  let name = '';
  let version = '';
  while (r.pos < e) {
    const [no, wt] = r.tag();
    if (wt !== LD) throw unusual;
    if (no === 1) name = r.string(true);
    else if (no === 2) version = r.string(true);
    else throw unusual;
  }
  done(r, e);
  return { name, version };
}

/** google.protobuf.Struct: `fields` (1), map entries of key (1) and Value (2). */
function struct(r: BinaryReader, e: number, depth: number): Record<string, JsonValue> {
  if (depth > MAX_DEPTH) throw unusual;
  const out: Record<string, JsonValue> = {};
  while (r.pos < e) {
    const [no, wt] = r.tag();
    if (no !== 1 || wt !== LD) throw unusual;
    const entryEnd = end(r);
    let key = '';
    let v: JsonValue | undefined;
    while (r.pos < entryEnd) {
      const [f, w] = r.tag();
      if (w !== LD) throw unusual;
      if (f === 1) key = r.string(true);
      else if (f === 2) {
        if (v !== undefined) throw unusual;
        v = value(r, end(r), depth);
      } else throw unusual;
    }
    done(r, entryEnd);
    // No value: the reflective decoder's case. `__proto__` as a key: never assigned on a plain object.
    if (v === undefined || key === '__proto__') throw unusual;
    out[key] = v;
  }
  done(r, e);
  return out;
}

/** google.protobuf.Value: exactly one kind (a second one, or none, is left to the reflective decoder). */
function value(r: BinaryReader, e: number, depth: number): JsonValue {
  let v: JsonValue | undefined;
  while (r.pos < e) {
    if (v !== undefined) throw unusual;
    const [no, wt] = r.tag();
    switch (no) {
      case 1:
        if (wt !== WireType.Varint) throw unusual;
        r.int32();
        v = null;
        break;
      case 2:
        if (wt !== WireType.Bit64) throw unusual;
        v = r.double();
        break;
      case 3:
        if (wt !== LD) throw unusual;
        v = r.string(true);
        break;
      case 4:
        if (wt !== WireType.Varint) throw unusual;
        v = r.bool();
        break;
      case 5:
        if (wt !== LD) throw unusual;
        v = struct(r, end(r), depth + 1);
        break;
      case 6:
        if (wt !== LD) throw unusual;
        v = list(r, end(r), depth + 1);
        break;
      default:
        throw unusual;
    }
  }
  done(r, e);
  if (v === undefined) throw unusual;
  return v;
}

/** google.protobuf.ListValue: `values` (1). */
function list(r: BinaryReader, e: number, depth: number): JsonValue[] {
  if (depth > MAX_DEPTH) throw unusual;
  const out: JsonValue[] = [];
  while (r.pos < e) {
    const [no, wt] = r.tag();
    if (no !== 1 || wt !== LD) throw unusual;
    out.push(value(r, end(r), depth));
  }
  done(r, e);
  return out;
}

/** tally.v1.RequestLog as the `$request` event's properties, keys in RequestLogRecord's order. */
function requestLog(r: BinaryReader, e: number): Record<string, JsonValue> {
  const f: Record<number, JsonValue> = {};
  let headers: Record<string, string> | undefined;
  while (r.pos < e) {
    const [no, wt] = r.tag();
    const spec = REQUEST_LOG_FIELDS[no];
    if (spec === undefined || wt !== spec.wire) throw unusual;
    if (no === 15) {
      const entryEnd = end(r);
      let key = '';
      let v = '';
      while (r.pos < entryEnd) {
        const [k, w] = r.tag();
        if (w !== LD) throw unusual;
        if (k === 1) key = r.string(true);
        else if (k === 2) v = r.string(true);
        else throw unusual;
      }
      done(r, entryEnd);
      if (key === '__proto__') throw unusual;
      (headers ??= {})[key] = v;
      continue;
    }
    f[no] = spec.read(r);
  }
  done(r, e);
  const out: Record<string, JsonValue> = {};
  for (const [no, name, always] of REQUEST_LOG_ORDER) {
    if (no === 15) {
      if (headers) out.headers = headers;
      continue;
    }
    const v = f[no];
    if (v !== undefined) out[name] = v;
    else if (always) out[name] = REQUEST_LOG_FIELDS[no]?.zero as JsonValue;
  }
  return out;
}

interface FieldSpec {
  wire: WireType;
  read: (r: BinaryReader) => JsonValue;
  zero?: JsonValue;
}
const str: FieldSpec = { wire: LD, read: (r) => r.string(true), zero: '' };
const REQUEST_LOG_FIELDS: Record<number, FieldSpec> = {
  1: str,
  2: str,
  3: str,
  4: str,
  5: str,
  6: str,
  7: { wire: WireType.Varint, read: (r) => r.uint32(), zero: 0 },
  8: { wire: WireType.Bit64, read: (r) => r.double(), zero: 0 },
  9: { wire: WireType.Varint, read: (r) => Number(r.uint64()) },
  10: { wire: WireType.Varint, read: (r) => Number(r.uint64()) },
  11: str,
  12: str,
  13: str,
  14: str,
  15: { wire: LD, read: () => null },
  16: str,
  17: str,
  18: { wire: WireType.Varint, read: (r) => r.bool() },
  19: str,
  20: { wire: WireType.Varint, read: (r) => r.bool() },
  21: str,
  22: str,
};
/**
 * RequestLog's fields in RequestLogRecord's key order: field number, JSON name (also the generated
 * message's property), and whether the JSON has it even when unset (proto3 plain fields). protobuf.ts
 * converts in both directions by it too.
 */
export const REQUEST_LOG_ORDER: [number, string, boolean][] = [
  [1, 'id', true],
  [2, 'tenantId', true],
  [3, 'requestId', false],
  [4, 'method', true],
  [5, 'route', false],
  [6, 'url', true],
  [7, 'status', true],
  [8, 'durationMs', true],
  [9, 'requestBytes', false],
  [10, 'responseBytes', false],
  [11, 'userId', false],
  [12, 'apiKeyId', false],
  [13, 'ip', false],
  [14, 'userAgent', false],
  [15, 'headers', false],
  [16, 'requestBody', false],
  [17, 'responseBody', false],
  [18, 'bodyTruncated', false],
  [19, 'streamBody', false],
  [20, 'aborted', false],
  [21, 'error', false],
  [22, 'timestamp', true],
];
