/**
 * Protobuf batches made by an encoder that is not Tally's: a JSON batch written out in protobuf's text
 * format, then encoded by Debian's `protoc --encode` from proto/tally/v1/batch.proto. What the tests feed
 * to the collector and to NATS is what a Rust or Go publisher would send.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type EventContext, isoTime, type JsonValue, type RequestLogRecord, uuidv7 } from '@tally/core';

export const PROTO_DIR = fileURLToPath(new URL('../../../../proto', import.meta.url));
const INCLUDE = '/usr/include'; // google/protobuf/struct.proto, from Debian's libprotobuf-dev

/** A JSON batch item as the tests write them (the envelope's fields). */
export interface JsonItem {
  id: string;
  name: string;
  tenantId?: string;
  userId?: string;
  anonymousId?: string;
  properties: Record<string, JsonValue>;
  context?: EventContext;
  timestamp: string;
}

export interface JsonBatch {
  batch: JsonItem[];
  context?: EventContext;
  sentAt: string;
}

/** `protoc --encode=tally.v1.Batch` of a text-format batch. */
export function protocEncode(text: string): Buffer {
  return execFileSync('protoc', ['--encode=tally.v1.Batch', '-I', PROTO_DIR, '-I', INCLUDE, 'tally/v1/batch.proto'], {
    input: text,
    maxBuffer: 64 << 20,
  });
}

/** `protoc --decode=tally.v1.Batch`: what protoc reads in bytes Tally wrote, as text. */
export function protocDecode(bytes: Uint8Array): string {
  return execFileSync('protoc', ['--decode=tally.v1.Batch', '-I', PROTO_DIR, '-I', INCLUDE, 'tally/v1/batch.proto'], {
    input: bytes,
    maxBuffer: 64 << 20,
  }).toString('utf8');
}

/** The batch in protobuf's text format. */
export function textFormat(b: JsonBatch): string {
  const out: string[] = [`sent_at: ${str(b.sentAt)}`];
  if (b.context) out.push(`context { ${context(b.context)} }`);
  for (const e of b.batch) out.push(`events { ${event(e)} }`);
  return out.join('\n');
}

function event(e: JsonItem): string {
  const out = [`id: ${str(e.id)}`, `name: ${str(e.name)}`];
  if (e.tenantId !== undefined) out.push(`tenant_id: ${str(e.tenantId)}`);
  if (e.userId !== undefined) out.push(`user_id: ${str(e.userId)}`);
  if (e.anonymousId !== undefined) out.push(`anonymous_id: ${str(e.anonymousId)}`);
  out.push(`timestamp: ${str(e.timestamp)}`);
  if (e.context) out.push(`context { ${context(e.context)} }`);
  if (e.name === '$request') out.push(`request { ${requestLog(e.properties as unknown as RequestLogRecord)} }`);
  else out.push(`properties { ${struct(e.properties)} }`);
  return out.join(' ');
}

const CONTEXT_FIELDS: Record<string, string> = {
  service: 'service',
  requestId: 'request_id',
  taskId: 'task_id',
  sessionId: 'session_id',
};

function context(c: EventContext): string {
  const out: string[] = [];
  const extra: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(c)) {
    if (v === undefined) continue;
    if (k in CONTEXT_FIELDS) out.push(`${CONTEXT_FIELDS[k]}: ${str(v as string)}`);
    else if (k === 'library') {
      const lib = v as { name: string; version: string };
      out.push(`library { name: ${str(lib.name)} version: ${str(lib.version)} }`);
    } else if (k === 'sampleRate') out.push(`sample_rate: ${num(v as number)}`);
    else extra[k] = v;
  }
  if (Object.keys(extra).length > 0) out.push(`extra { ${struct(extra)} }`);
  return out.join(' ');
}

function requestLog(r: RequestLogRecord): string {
  const out: string[] = [];
  const field = (name: string, v: unknown) => {
    if (v === undefined) return;
    if (typeof v === 'string') out.push(`${name}: ${str(v)}`);
    else out.push(`${name}: ${String(v)}`);
  };
  field('id', r.id);
  field('tenant_id', r.tenantId);
  field('request_id', r.requestId);
  field('method', r.method);
  field('route', r.route);
  field('url', r.url);
  field('status', r.status);
  field('duration_ms', r.durationMs);
  field('request_bytes', r.requestBytes);
  field('response_bytes', r.responseBytes);
  field('user_id', r.userId);
  field('api_key_id', r.apiKeyId);
  field('ip', r.ip);
  field('user_agent', r.userAgent);
  for (const [k, v] of Object.entries(r.headers ?? {})) out.push(`headers { key: ${str(k)} value: ${str(v)} }`);
  field('request_body', r.requestBody);
  field('response_body', r.responseBody);
  field('body_truncated', r.bodyTruncated);
  field('stream_body', r.streamBody);
  field('aborted', r.aborted);
  field('error', r.error);
  field('timestamp', r.timestamp);
  return out.join(' ');
}

function struct(o: Record<string, JsonValue>): string {
  return Object.entries(o)
    .map(([k, v]) => `fields { key: ${str(k)} value { ${value(v)} } }`)
    .join(' ');
}

function value(v: JsonValue): string {
  if (v === null) return 'null_value: NULL_VALUE';
  if (typeof v === 'number') return `number_value: ${num(v)}`;
  if (typeof v === 'string') return `string_value: ${str(v)}`;
  if (typeof v === 'boolean') return `bool_value: ${v}`;
  if (Array.isArray(v)) return `list_value { ${v.map((x) => `values { ${value(x)} }`).join(' ')} }`;
  return `struct_value { ${struct(v as Record<string, JsonValue>)} }`;
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  return String(v);
}

/** A text-format string literal: printable ASCII as it is, every other byte of the UTF-8 as octal. */
function str(s: string): string {
  let out = '"';
  for (const byte of Buffer.from(s, 'utf8')) {
    if (byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c) out += String.fromCharCode(byte);
    else out += `\\${byte.toString(8).padStart(3, '0')}`;
  }
  return `${out}"`;
}

const T0 = Date.parse('2026-11-23T10:00:00.000Z');

/** A batch with every field the envelope has: contexts shared and own, a request log, odd strings. */
export function sampleBatch(tenantId = 'default'): JsonBatch {
  const log: RequestLogRecord = {
    id: uuidv7(T0 + 5),
    tenantId,
    requestId: 'req-1',
    method: 'POST',
    route: '/orders/:id',
    url: '/orders/42?x=1',
    status: 201,
    durationMs: 12.75,
    requestBytes: 512,
    responseBytes: 2048,
    userId: 'user-1',
    apiKeyId: 'key-1',
    ip: '203.0.113.9',
    userAgent: 'curl/8',
    headers: { 'content-type': 'application/json', authorization: '[REDACTED]' },
    requestBody: '{"qty":2}',
    responseBody: '{"ok":true}',
    bodyTruncated: false,
    aborted: false,
    timestamp: isoTime(T0 + 5),
  };
  return {
    sentAt: isoTime(T0 + 100),
    context: { service: 'api', library: { name: 'tally-rs', version: '0.3.1' }, region: 'eu' },
    batch: [
      {
        id: uuidv7(T0 + 1),
        name: 'task_completed',
        tenantId,
        userId: 'user-1',
        properties: { taskId: 't-1', durationMs: 25.4, attempts: 2, provider: 'openai' },
        timestamp: isoTime(T0 + 1),
      },
      {
        id: uuidv7(T0 + 2),
        name: 'user_signed_up',
        tenantId,
        anonymousId: 'anon-7',
        properties: { method: 'email', plan: 'pro — ünïcödé ✓ "quoted" \\ back' },
        context: {
          service: 'web',
          requestId: 'r-9',
          taskId: 'task-3',
          sessionId: 's-4',
          sampleRate: 0.25,
          flags: { beta: true, tags: ['a', 'b'], none: null },
        },
        timestamp: isoTime(T0 + 2),
      },
      {
        id: uuidv7(T0 + 3),
        name: 'task_created',
        tenantId,
        userId: 'user-2',
        properties: { taskId: 't-2', taskType: 'render', priority: -3 },
        timestamp: isoTime(T0 + 3),
      },
      {
        id: log.id,
        name: '$request',
        tenantId,
        properties: log as unknown as Record<string, JsonValue>,
        timestamp: log.timestamp,
      },
    ],
  };
}
