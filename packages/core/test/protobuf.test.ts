/**
 * The protobuf envelope (proto/tally/v1/batch.proto): batches encoded by Debian's protoc decode to the
 * JSON batch they were written from; Tally's encoder writes what protoc reads back; random properties
 * survive a round trip; an unreadable event is kept apart from the rest; the generated code is what
 * protoc-gen-es makes of the .proto today.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  applyBatchContext,
  type EventContext,
  isoTime,
  type JsonValue,
  type TallyEvent,
  UnreadableItem,
  uuidv7,
} from '@tally/core';
import {
  decodeBatch,
  decodeBatchByReflection,
  encodeBatch,
  isProtobufContentType,
  PROTOBUF_CONTENT_TYPE,
  ProtobufError,
} from '@tally/core/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { needs, probeProtoc } from '../../node/test/support/service-gate.js';
import { type JsonBatch, PROTO_DIR, protocDecode, protocEncode, sampleBatch, textFormat } from './support/protoc.js';

const protoc = needs(probeProtoc());
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const T0 = Date.parse('2026-11-23T10:00:00.000Z');

/** The JSON batch as decodeBatch gives it: every item has its properties and tenant. */
function expectedDecoded(b: JsonBatch) {
  return {
    sentAt: b.sentAt,
    ...(b.context ? { context: b.context } : {}),
    batch: b.batch.map((e) => ({ ...e, tenantId: e.tenantId ?? '' })),
  };
}

describe('the protobuf envelope', () => {
  protoc.it('protoc-encoded batches decode to the JSON batch they were written from', () => {
    const b = sampleBatch();
    expect(decodeBatch(protocEncode(textFormat(b)))).toEqual(expectedDecoded(b));
  });

  protoc.it("Tally's encoder writes what protoc reads back", () => {
    const b = sampleBatch();
    const events = b.batch.map(
      (e) => ({ ...e, tenantId: 'default', context: e.context ?? (b.context as EventContext) }) as TallyEvent,
    );
    const bytes = encodeBatch(events, b.sentAt);
    const decoded = decodeBatch(bytes);
    // The context the events share is sent once, on the batch (as the JSON encoder does).
    expect(decoded.context).toEqual(b.context);
    expect(decoded.batch.filter((e) => (e as { context?: unknown }).context === undefined)).toHaveLength(3);
    applyBatchContext(decoded.batch, decoded.context);
    expect(decoded.batch).toEqual(events);
    // protoc reads every field of them: its text of the bytes, encoded again by protoc, is the same batch
    // (not the same bytes: protoc writes map entries in an order of its own).
    const text = protocDecode(bytes);
    expect(text).toContain('name: "$request"');
    const again = decodeBatch(protocEncode(text));
    applyBatchContext(again.batch, again.context);
    expect(again.batch).toEqual(events);
  });

  it('keeps `__proto__` as an ordinary key, in properties and in context, as JSON.parse does', () => {
    const event: TallyEvent = {
      id: uuidv7(T0),
      name: 'e',
      tenantId: 't',
      properties: JSON.parse('{"__proto__":{"polluted":1},"a":{"__proto__":"x"}}'),
      context: JSON.parse('{"service":"svc","__proto__":""}'),
      timestamp: isoTime(T0),
    };
    const back = decodeBatch(encodeBatch([event], isoTime(T0))).batch[0] as TallyEvent;
    expect(back).toEqual(event);
    expect(Object.keys(back.context)).toContain('__proto__');
    expect(Object.getPrototypeOf(back.context)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('random properties and contexts survive a round trip', () => {
    const json = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.parse(JSON.stringify(v)) as JsonValue);
    const object = fc.dictionary(fc.string({ unit: 'grapheme', maxLength: 12 }), json, { maxKeys: 6 });
    fc.assert(
      fc.property(fc.array(fc.tuple(object, object), { minLength: 1, maxLength: 5 }), (pairs) => {
        const events: TallyEvent[] = pairs.map(([properties, extra], i) => {
          const context: EventContext = { ...extra, service: 'svc' };
          delete context.library;
          delete context.requestId;
          delete context.taskId;
          delete context.sessionId;
          delete context.sampleRate;
          return {
            id: uuidv7(T0 + i),
            name: `e${i}`,
            tenantId: 't',
            properties: properties as Record<string, JsonValue>,
            context,
            timestamp: isoTime(T0 + i),
          };
        });
        expect(decodeBatch(encodeBatch(events, isoTime(T0))).batch).toEqual(events);
      }),
      { numRuns: 200 },
    );
  });

  it('the direct reader and the reflective decoder give the same batches, keys in the same order', () => {
    const json = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.parse(JSON.stringify(v)) as JsonValue);
    const object = fc.dictionary(fc.string({ unit: 'grapheme', maxLength: 12 }), json, { maxKeys: 6 });
    const text = fc.string({ unit: 'grapheme', maxLength: 20 });
    const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
    const log = fc.record({
      requestId: maybe(text),
      route: maybe(text),
      status: fc.integer({ min: 0, max: 999 }),
      durationMs: fc.double({ noNaN: true, noDefaultInfinity: true }),
      requestBytes: maybe(fc.nat()),
      responseBytes: maybe(fc.nat()),
      headers: maybe(fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), text, { maxKeys: 3 })),
      bodyTruncated: maybe(fc.boolean()),
      aborted: maybe(fc.boolean()),
      error: maybe(text),
    });
    const event = fc.record({
      request: fc.option(log, { nil: undefined }),
      properties: object,
      userId: maybe(text),
      anonymousId: maybe(text),
      own: fc.boolean(),
      extra: object,
      sampleRate: maybe(fc.double({ noNaN: true, noDefaultInfinity: true })),
    });
    fc.assert(
      fc.property(fc.array(event, { maxLength: 6 }), (made) => {
        const shared: EventContext = { service: 'svc', library: { name: 'l', version: '1' } };
        const events: TallyEvent[] = made.map((m, i) => {
          const id = uuidv7(T0 + i);
          const timestamp = isoTime(T0 + i);
          const context: EventContext = m.own ? { sessionId: 's' } : shared;
          if (m.own) {
            for (const [k, v] of Object.entries(m.extra))
              if (!['service', 'requestId', 'taskId', 'sessionId', 'library', 'sampleRate'].includes(k)) context[k] = v;
            if (m.sampleRate !== undefined) context.sampleRate = m.sampleRate;
          }
          const e: TallyEvent = {
            id,
            name: m.request ? '$request' : `e${i}`,
            tenantId: 't',
            properties: {},
            context,
            timestamp,
          };
          if (m.userId !== undefined) e.userId = m.userId;
          if (m.anonymousId !== undefined) e.anonymousId = m.anonymousId;
          if (m.request) {
            const r: Record<string, unknown> = { id, tenantId: 't', method: 'GET', url: '/x', timestamp };
            for (const [k, v] of Object.entries(m.request)) if (v !== undefined) r[k] = v;
            e.properties = r as Record<string, JsonValue>;
          } else e.properties = m.properties as Record<string, JsonValue>;
          return e;
        });
        const bytes = encodeBatch(events, isoTime(T0));
        expect(JSON.stringify(decodeBatch(bytes))).toBe(JSON.stringify(decodeBatchByReflection(bytes)));
      }),
      { numRuns: 300 },
    );
  });

  it('input the direct reader leaves alone is decoded by reflection, as protobuf says', () => {
    const w = () => new BinaryWriter();
    const value = (v: BinaryWriter) => v.finish();
    const struct = (key: string, v: Uint8Array) =>
      w()
        .tag(1, WireType.LengthDelimited)
        .bytes(w().tag(1, WireType.LengthDelimited).string(key).tag(2, WireType.LengthDelimited).bytes(v).finish())
        .finish();
    const event = (...fields: ((x: BinaryWriter) => BinaryWriter)[]) => {
      let x = w().tag(1, WireType.LengthDelimited).string(uuidv7(T0)).tag(2, WireType.LengthDelimited).string('e');
      for (const f of fields) x = f(x);
      return w().tag(1, WireType.LengthDelimited).bytes(x.finish()).finish();
    };
    const props = (s: Uint8Array) => (x: BinaryWriter) => x.tag(8, WireType.LengthDelimited).bytes(s);
    const ctx = (c: Uint8Array) => (x: BinaryWriter) => x.tag(7, WireType.LengthDelimited).bytes(c);
    const cases: Record<string, Uint8Array> = {
      'an unknown field': event((x) => x.tag(99, WireType.Varint).uint32(7)),
      'context given twice (merged)': event(
        ctx(w().tag(1, WireType.LengthDelimited).string('a').finish()),
        ctx(w().tag(2, WireType.LengthDelimited).string('r').finish()),
      ),
      'a Value of two kinds (the last wins)': event(
        props(struct('k', value(w().tag(3, WireType.LengthDelimited).string('s').tag(2, WireType.Bit64).double(2)))),
      ),
      'a Value of no kind': event(props(struct('k', new Uint8Array()))),
      'a __proto__ key': event(props(struct('__proto__', value(w().tag(4, WireType.Varint).bool(true))))),
      'a context key both a field and in extra': event(
        ctx(
          w()
            .tag(1, WireType.LengthDelimited)
            .string('a')
            .tag(7, WireType.LengthDelimited)
            .bytes(struct('service', value(w().tag(3, WireType.LengthDelimited).string('b'))))
            .finish(),
        ),
      ),
      'a name that is not UTF-8': w()
        .tag(1, WireType.LengthDelimited)
        .bytes(Uint8Array.from([0x12, 2, 0xff, 0xfe]))
        .finish(),
      'Structs nested 80 deep': event(
        props(
          Array.from({ length: 80 }).reduce<Uint8Array>(
            (inner) => struct('k', value(w().tag(5, WireType.LengthDelimited).bytes(inner))),
            struct('leaf', value(w().tag(4, WireType.Varint).bool(true))),
          ),
        ),
      ),
    };
    for (const [what, bytes] of Object.entries(cases)) {
      const by = (decode: (b: Uint8Array) => unknown) => {
        try {
          return JSON.stringify(decode(bytes));
        } catch (e) {
          return `threw ${(e as Error).name}`;
        }
      };
      expect(by(decodeBatch), what).toBe(by(decodeBatchByReflection));
    }
  });

  it('an event that does not decode is unreadable alone; the others are read', () => {
    const events: TallyEvent[] = [0, 1].map((i) => ({
      id: uuidv7(T0 + i),
      name: 'task_created',
      tenantId: 't',
      properties: { taskId: `t-${i}` },
      context: {},
      timestamp: isoTime(T0 + i),
    }));
    const good = encodeBatch(events, isoTime(T0));
    // One more `events` field: an Event whose name (field 2) is not UTF-8.
    const bad = Uint8Array.from([0x0a, 4, 0x12, 2, 0xff, 0xfe]);
    const decoded = decodeBatch(Buffer.concat([good, bad]));
    expect(decoded.batch.slice(0, 2)).toEqual(events);
    const unreadable = decoded.batch[2] as UnreadableItem;
    expect(unreadable).toBeInstanceOf(UnreadableItem);
    expect(unreadable.reason).toMatch(/utf-8/i);
    expect(unreadable.raw).toEqual({ protobuf: Buffer.from([0x12, 2, 0xff, 0xfe]).toString('base64') });
  });

  protoc.it('a context key given both as a field and in extra is refused with the event alone', () => {
    const b = sampleBatch();
    const text = textFormat(b).replace(
      'extra { fields { key: "flags"',
      'extra { fields { key: "service" value { string_value: "x" } } fields { key: "flags"',
    );
    expect(text).toContain('key: "service"');
    const decoded = decodeBatch(protocEncode(text));
    expect((decoded.batch[1] as UnreadableItem).reason).toBe(
      'context: "service" is a field of Context: set it there, not in extra',
    );
    expect(decoded.batch.filter((e) => e instanceof UnreadableItem)).toHaveLength(1);
  });

  it('bytes that are not a batch are refused whole', () => {
    for (const bytes of [
      Buffer.from('{"batch":[]}'),
      Uint8Array.from([0x0a, 0xff, 0xff]),
      Uint8Array.from([0xff]),
      Uint8Array.from([0x1a, 5, 0x41]),
    ]) {
      expect(() => decodeBatch(bytes), Buffer.from(bytes).toString('hex')).toThrow(ProtobufError);
    }
    expect(decodeBatch(new Uint8Array())).toEqual({ batch: [] });
  });

  it('names protobuf by Content-Type', () => {
    expect(PROTOBUF_CONTENT_TYPE).toBe('application/x-protobuf');
    for (const t of ['application/x-protobuf', 'Application/X-Protobuf; proto=tally.v1.Batch', 'application/protobuf'])
      expect(isProtobufContentType(t), t).toBe(true);
    for (const t of [undefined, '', 'application/json', 'application/x-protobuffer', 'text/plain'])
      expect(isProtobufContentType(t), String(t)).toBe(false);
  });

  protoc.it('the generated TypeScript is what protoc-gen-es makes of the .proto (npm run proto)', () => {
    const out = mkdtempSync(join(tmpdir(), 'tally-proto-'));
    try {
      execFileSync('protoc', [
        `--plugin=protoc-gen-es=${join(ROOT, 'node_modules/.bin/protoc-gen-es')}`,
        `--es_out=${out}`,
        '--es_opt=target=ts,import_extension=js',
        '-I',
        PROTO_DIR,
        'tally/v1/batch.proto',
      ]);
      const committed = readFileSync(join(ROOT, 'packages/core/src/proto/tally/v1/batch_pb.ts'), 'utf8');
      expect(readFileSync(join(out, 'tally/v1/batch_pb.ts'), 'utf8')).toBe(committed);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
