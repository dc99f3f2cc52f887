import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  type Catalog,
  createValidator,
  defineCatalog,
  type EventName,
  type EventProps,
  mergeCatalogs,
  productCatalog,
  supportBotCatalog,
  TallyConfigError,
  t,
} from '../src/index.js';

const catalog = defineCatalog({
  order_placed: {
    properties: {
      orderId: t.string(),
      amount: t.number({ minimum: 0 }),
      items: t.integer(),
      express: t.boolean(),
      channel: t.enum(['web', 'app']),
      tags: t.array(t.string(), { maxItems: 3 }),
      shipping: t.object({ city: t.string(), zip: t.string() }, ['city']),
      at: t.datetime(),
      note: t.nullable(t.string({ maxLength: 10 })),
      meta: t.json(),
    },
    required: ['orderId', 'amount'],
  },
  page_viewed: { properties: { path: t.string() }, allowExtra: true },
  ping: { properties: {} },
});

function code(name: string, props: unknown) {
  const r = catalog.validate(name, props);
  return r.ok ? 'ok' : r.error.code;
}

describe('defineCatalog: types', () => {
  type C = typeof catalog;
  it('infers names and payloads from the definition', () => {
    expectTypeOf<EventName<C>>().toEqualTypeOf<'order_placed' | 'page_viewed' | 'ping'>();
    type P = EventProps<C, 'order_placed'>;
    expectTypeOf<P['orderId']>().toEqualTypeOf<string>();
    expectTypeOf<P['channel']>().toEqualTypeOf<'web' | 'app' | undefined>();
    expectTypeOf<P['note']>().toEqualTypeOf<string | null | undefined>();
    expectTypeOf<P['shipping']>().toEqualTypeOf<{ city: string; zip?: string } | undefined>();
    expectTypeOf<P['tags']>().toEqualTypeOf<string[] | undefined>();
    expectTypeOf<{ orderId: 'a'; amount: 1 }>().toExtend<P>();
    // Wrong payloads do not compile (checked by `npm run typecheck`, which fails on an unused expect-error).
    // @ts-expect-error amount is required
    const missing: P = { orderId: 'a' };
    // @ts-expect-error amount must be a number
    const wrongType: P = { orderId: 'a', amount: '3' };
    // @ts-expect-error channel is an enum
    const wrongEnum: P = { orderId: 'a', amount: 1, channel: 'fax' };
    // @ts-expect-error undeclared keys are refused on strict events
    const extra: P = { orderId: 'a', amount: 1, coupon: 'x' };
    const open: EventProps<C, 'page_viewed'> = { path: '/', anything: 1 };
    expect([missing, wrongType, wrongEnum, extra, open]).toHaveLength(5);
  });

  it('the shipped catalogs type their required keys', () => {
    type Q = EventProps<typeof supportBotCatalog, 'quota_exceeded'>;
    expectTypeOf<Q>().toMatchObjectType<{ quota: string; limit: number; usage: number }>();
    // @ts-expect-error usage is required
    const q: Q = { quota: 'messages', limit: 10 };
    expect(q).toBeDefined();
    expectTypeOf<EventName<typeof productCatalog>>().toExtend<string>();
  });
});

describe('validation', () => {
  it('accepts a valid payload and returns clean JSON', () => {
    const r = catalog.validate('order_placed', {
      orderId: 'o1',
      amount: 12.5,
      items: 2,
      express: false,
      channel: 'web',
      tags: ['a'],
      shipping: { city: 'Oslo' },
      at: new Date('2026-01-02T03:04:05Z'),
      note: null,
      meta: { any: [1, 'two', { three: true }] },
      skipped: undefined,
    });
    expect(r).toMatchObject({
      ok: true,
      properties: {
        orderId: 'o1',
        at: '2026-01-02T03:04:05.000Z',
        note: null,
        meta: { any: [1, 'two', { three: true }] },
      },
    });
    expect(r.ok && 'skipped' in r.properties).toBe(false);
  });

  it('TALLY_UNKNOWN_EVENT', () => expect(code('order_cancelled', {})).toBe('TALLY_UNKNOWN_EVENT'));
  it('TALLY_UNKNOWN_EVENT for inherited names', () => expect(code('toString', {})).toBe('TALLY_UNKNOWN_EVENT'));

  it('TALLY_MISSING_PROPERTY, also when the key is undefined', () => {
    expect(code('order_placed', { orderId: 'o' })).toBe('TALLY_MISSING_PROPERTY');
    expect(code('order_placed', { orderId: 'o', amount: undefined })).toBe('TALLY_MISSING_PROPERTY');
    expect(code('order_placed', { orderId: 'o', amount: 1, shipping: { zip: '1' } })).toBe('TALLY_MISSING_PROPERTY');
  });

  it('TALLY_INVALID_TYPE for each kind of field', () => {
    const base = { orderId: 'o', amount: 1 };
    for (const bad of [
      { amount: '1' },
      { amount: -1 },
      { items: 1.5 },
      { express: 'yes' },
      { channel: 'fax' },
      { tags: 'a' },
      { tags: ['a', 2] },
      { tags: ['a', 'b', 'c', 'd'] },
      { shipping: [] },
      { shipping: { city: 3 } },
      { at: 'not a date' },
      { note: 'longer than ten' },
      { orderId: null },
    ]) {
      expect(code('order_placed', { ...base, ...bad }), JSON.stringify(bad)).toBe('TALLY_INVALID_TYPE');
    }
    expect(code('order_placed', 'a string')).toBe('TALLY_INVALID_TYPE');
    expect(code('order_placed', [1])).toBe('TALLY_INVALID_TYPE');
  });

  it('reports the path of the wrong value', () => {
    const r = catalog.validate('order_placed', { orderId: 'o', amount: 1, tags: ['a', 2] });
    expect(r.ok ? undefined : r.error.details.path).toBe('properties.tags[1]');
  });

  it('TALLY_UNKNOWN_PROPERTY unless the event allows extra keys', () => {
    expect(code('order_placed', { orderId: 'o', amount: 1, coupon: 'x' })).toBe('TALLY_UNKNOWN_PROPERTY');
    expect(code('order_placed', { orderId: 'o', amount: 1, shipping: { city: 'a', floor: 2 } })).toBe(
      'TALLY_UNKNOWN_PROPERTY',
    );
    expect(code('page_viewed', { path: '/', ref: 'x' })).toBe('ok');
  });

  it('unplanned properties: reject, allow or strip top-level keys; per call, per validator, per event', () => {
    const props = { orderId: 'o', amount: 1, coupon: 'x', shipping: { city: 'a' } };
    const strict = createValidator(catalog);
    expect(strict('order_placed', props).ok).toBe(false);
    const allowed = strict('order_placed', props, 'allow');
    expect(allowed).toMatchObject({ ok: true, properties: props, unplanned: { policy: 'allow', keys: ['coupon'] } });
    const stripped = createValidator(catalog, { unplanned: 'strip', reuseInput: true })('order_placed', props);
    expect(stripped).toMatchObject({ ok: true, unplanned: { policy: 'strip', keys: ['coupon'] } });
    expect(stripped.ok && stripped.properties).toEqual({ orderId: 'o', amount: 1, shipping: { city: 'a' } });
    expect(props.coupon).toBe('x'); // the caller's object is never changed
    // Declared keys are still checked, and nested objects keep their exact shape.
    expect(strict('order_placed', { ...props, amount: 'one' }, 'allow').ok).toBe(false);
    const nested = strict('order_placed', { orderId: 'o', amount: 1, shipping: { city: 'a', floor: 2 } }, 'allow');
    expect(nested.ok ? 'ok' : nested.error.code).toBe('TALLY_UNKNOWN_PROPERTY');
    // Nothing unplanned: no marker. An event's own policy wins over the call's.
    expect(strict('order_placed', { orderId: 'o', amount: 1 }, 'allow')).not.toHaveProperty('unplanned');
    const own = defineCatalog({ e: { properties: { a: t.string() }, unplanned: 'reject' } });
    expect(createValidator(own)('e', { a: 'x', b: 1 }, 'allow').ok).toBe(false);
  });

  it('TALLY_PAYLOAD_TOO_LARGE past 2 KB, measured in UTF-8 bytes; the limit is configurable', () => {
    expect(code('page_viewed', { path: 'x'.repeat(2000) })).toBe('ok');
    expect(code('page_viewed', { path: 'x'.repeat(2100) })).toBe('TALLY_PAYLOAD_TOO_LARGE');
    // 700 three-byte characters: 700 chars but 2100 bytes.
    expect(code('page_viewed', { path: '€'.repeat(700) })).toBe('TALLY_PAYLOAD_TOO_LARGE');
    const small = createValidator(catalog, { maxPropertiesBytes: 20 });
    expect(small('page_viewed', { path: 'x'.repeat(30) }).ok).toBe(false);
    const r = catalog.validate('page_viewed', { path: 'x'.repeat(2100) });
    expect(r.ok ? undefined : r.error.details).toMatchObject({ limit: 2048 });
  });

  it('TALLY_NOT_JSON_SAFE: cycles, functions, symbols, NaN, Infinity, invalid dates, Maps, deep nesting', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const deep: Record<string, unknown> = {};
    let cur = deep;
    for (let i = 0; i < 20; i++) cur = cur.next = {} as Record<string, unknown>;
    for (const meta of [
      cyclic,
      () => 1,
      Symbol('s'),
      Number.NaN,
      Number.POSITIVE_INFINITY,
      new Date('nope'),
      new Map(),
      new Set([1]),
      new Uint8Array(2),
      deep,
      [1, [2, Number.NaN]],
    ]) {
      expect(code('order_placed', { orderId: 'o', amount: 1, meta }), String(meta)).toBe('TALLY_NOT_JSON_SAFE');
    }
  });

  it('handles BigInt, Date, toJSON, Error and undefined in arrays', () => {
    const r = catalog.validate('order_placed', {
      orderId: 'o',
      amount: 1,
      meta: {
        small: 42n,
        big: 2n ** 70n,
        when: new Date(0),
        custom: { toJSON: () => ({ x: 1 }) },
        err: new TypeError('boom'),
        list: [1, undefined, 3],
      },
    });
    expect(r.ok && r.properties.meta).toEqual({
      small: 42,
      big: '1180591620717411303424',
      when: '1970-01-01T00:00:00.000Z',
      custom: { x: 1 },
      err: { name: 'TypeError', message: 'boom' },
      list: [1, null, 3],
    });
  });

  it('the same object twice is not a cycle', () => {
    const shared = { a: 1 };
    expect(code('order_placed', { orderId: 'o', amount: 1, meta: { x: shared, y: shared } })).toBe('ok');
  });

  it('TALLY_PII_REJECTED under the reject policy; redacts by default; off leaves values', () => {
    const payload = { path: '/', email: 'a@b.c', nested: { authToken: 'secret' }, tokenCount: 3 };
    const redacted = catalog.validate('page_viewed', payload);
    expect(redacted).toMatchObject({
      ok: true,
      redacted: 2,
      properties: { email: '[REDACTED]', nested: { authToken: '[REDACTED]' }, tokenCount: 3 },
    });
    const reject = createValidator(catalog, { pii: { mode: 'reject', keys: ['email'] } });
    const r = reject('page_viewed', payload);
    expect(r.ok ? 'ok' : r.error.code).toBe('TALLY_PII_REJECTED');
    expect(r.ok ? undefined : r.error.details.path).toBe('properties.email');
    const off = createValidator(catalog, { pii: { mode: 'off', keys: [] } });
    expect(off('page_viewed', payload)).toMatchObject({ ok: true, properties: { email: 'a@b.c' } });
  });

  it('reuseInput: a clean payload comes back as it is; anything else takes the full path, same outcome', () => {
    const full = createValidator(catalog, { maxPropertiesBytes: 400 });
    const reuse = createValidator(catalog, { maxPropertiesBytes: 400, reuseInput: true });
    const clean: [string, Record<string, unknown>][] = [
      ['order_placed', { orderId: 'o1', amount: 12.5 }],
      ['order_placed', { amount: 0, orderId: 'o2', items: 3, express: true, channel: 'app', note: 'short' }],
      ['page_viewed', { path: '/' }],
    ];
    const other: [string, unknown][] = [
      ['order_placed', { orderId: 'o1' }], // missing required
      ['order_placed', { orderId: 'o1', amount: -1 }], // below minimum
      ['order_placed', { orderId: 'o1', amount: 1, items: 1.5 }], // not an integer
      ['order_placed', { orderId: 'o1', amount: 1, channel: 'fax' }], // not in the enum
      ['order_placed', { orderId: 'o1', amount: 1, note: 'far too long a note' }], // maxLength
      ['order_placed', { orderId: 'o1', amount: Number.NaN }], // not JSON-safe
      ['order_placed', { orderId: 'o1', amount: 1, skipped: undefined }], // undefined is stripped: a copy
      ['order_placed', { orderId: 'o1', amount: 1, note: null }], // null: the full path decides
      ['order_placed', { orderId: 'o1', amount: 1, shipping: { city: 'Oslo' } }], // nested: walked and copied
      ['order_placed', { orderId: 'o1', amount: 1, extra: 'x' }], // undeclared
      ['order_placed', { orderId: 'x'.repeat(70), amount: 1 }], // near the size limit: measured exactly
      ['page_viewed', { path: '/', email: 'a@b.c' }], // PII: redacted in a copy
      ['page_viewed', { path: '/', tokenCount: 3 }], // extra key (allowed): the full path
      ['page_viewed', Object.assign(Object.create({ inherited: 1 }) as object, { path: '/' })], // not plain
      ['order_placed', 'not an object'],
      ['nope', { a: 1 }],
    ];
    for (const [name, props] of clean) {
      const r = reuse(name, props);
      expect(r).toEqual(full(name, props));
      expect(r.ok && r.properties).toBe(props);
      const copied = full(name, props);
      expect(copied.ok && copied.properties).not.toBe(props);
    }
    for (const [name, props] of other) {
      const r = reuse(name, props);
      expect(r).toEqual(full(name, props));
      if (r.ok) expect(r.properties).not.toBe(props);
    }
  });

  it('does not change the caller’s object', () => {
    const payload = { path: '/', password: 'hunter2' };
    catalog.validate('page_viewed', payload);
    expect(payload.password).toBe('hunter2');
  });
});

describe('catalog definition', () => {
  it('refuses required keys that are not declared, bad rates and empty names', () => {
    expect(() => defineCatalog({ a: { properties: { x: t.string() }, required: ['y' as 'x'] } })).toThrow(
      TallyConfigError,
    );
    expect(() => defineCatalog({ a: { properties: {}, sampleRate: 0 } })).toThrow(/sampleRate/);
    expect(() => defineCatalog({ '': { properties: {} } })).toThrow(/event name/);
  });

  it('merges catalogs, refusing a name defined twice', () => {
    const merged: Catalog = mergeCatalogs(productCatalog, supportBotCatalog);
    expect(merged.names.length).toBe(productCatalog.names.length + supportBotCatalog.names.length);
    expect(() => mergeCatalogs(productCatalog, productCatalog)).toThrow(/defined in both/);
  });

  it('exports JSON Schema for other languages', () => {
    const schema = catalog.toJsonSchema() as { events: Record<string, Record<string, unknown>> };
    expect(schema.events.order_placed).toMatchObject({
      type: 'object',
      required: ['orderId', 'amount'],
      additionalProperties: false,
      properties: { items: { type: 'integer' }, channel: { enum: ['web', 'app'] }, note: { type: ['string', 'null'] } },
    });
    expect(schema.events.page_viewed?.additionalProperties).toBe(true);
  });
});

describe('shipped catalogs', () => {
  const product = [
    'user_signed_up',
    'asset_uploaded',
    'task_created',
    'task_enqueued',
    'task_completed',
    'task_failed',
    'task_routed',
    'task_rate_limited',
    'task_replayed',
    'worker_guards_blocked',
    'worker_provider_not_configured',
    'rag_query_completed',
    'waitlist_joined',
  ];
  const support = [
    'conversation_started',
    'message_sent',
    'escalation_triggered',
    'plan_updated',
    'checkout_completed',
    'ingest_started',
    'ingest_completed',
    'ingest_failed',
    'integration_connected',
    'integration_failed',
    'quota_exceeded',
  ];
  it('declare every seed event, each with required keys that it enforces', () => {
    expect([...productCatalog.names].sort()).toEqual([...product].sort());
    expect([...supportBotCatalog.names].sort()).toEqual([...support].sort());
    for (const c of [productCatalog, supportBotCatalog] as Catalog[]) {
      for (const name of c.names) {
        const required = c.events[name]?.required ?? [];
        expect(required.length, name).toBeGreaterThan(0);
        expect(c.validate(name, {}).ok, name).toBe(false);
      }
    }
  });

  it('accept realistic payloads', () => {
    expect(
      supportBotCatalog.validate('quota_exceeded', { quota: 'messages', limit: 100, usage: 101, period: 'day' }).ok,
    ).toBe(true);
    expect(productCatalog.validate('task_failed', { taskId: 't1', errorCode: 'E_TIMEOUT', retryable: true }).ok).toBe(
      true,
    );
  });
});
