import { describe, expect, it } from 'vitest';
import { defineCatalog, EventFinisher, type TallyEvent, type TrackedCall, t } from '../src/index.js';

const catalog = defineCatalog({ hit: { properties: { i: t.integer() } } });
const finisher = new EventFinisher({ catalog, maxPropertiesBytes: 2048, library: { name: 'test', version: '0' } });

function call(over: Partial<TrackedCall>): TrackedCall {
  return {
    name: 'hit',
    props: { i: 1 },
    build: undefined,
    ts: Date.now(),
    frame: undefined,
    tenantId: 't',
    userId: undefined,
    anonymousId: undefined,
    extra: undefined,
    rate: 1,
    ms: Date.now(),
    a: 1,
    b: 2,
    ...over,
  };
}

describe('EventFinisher context', () => {
  it('keeps a scope key named __proto__ as an own key, as JSON.parse made it, and never as the prototype', () => {
    const frame = JSON.parse('{"requestId":"r1","__proto__":{"polluted":true}}');
    const extra = JSON.parse('{"__proto__":"x","taskId":"k"}');
    for (const c of [call({ frame }), call({ frame, extra, rate: 0.5 })]) {
      const event = finisher.finish(c) as TallyEvent;
      const context = event.context as Record<string, unknown>;
      expect(Object.getPrototypeOf(context)).toBe(Object.prototype);
      expect('polluted' in context).toBe(false);
      expect(Object.hasOwn(context, '__proto__')).toBe(true);
      expect(JSON.parse(JSON.stringify(event)).context).toMatchObject({ requestId: 'r1' });
      expect(Object.keys(JSON.parse(JSON.stringify(context)))).toContain('__proto__');
    }
    const scoped = finisher.finish(call({ frame, extra, rate: 0.5 })) as TallyEvent;
    expect(Object.getOwnPropertyDescriptor(scoped.context, '__proto__')?.value).toBe('x');
    expect(scoped.context).toMatchObject({ taskId: 'k', sampleRate: 0.5 });
  });
});
