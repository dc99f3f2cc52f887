import { describe, expect, it } from 'vitest';
import { createPiiMatcher, DEFAULT_PII_KEYS, sanitizeProperties, type SanitizeOptions } from '../src/index.js';

const copying: SanitizeOptions = { maxBytes: 2048, pii: 'redact', isPii: createPiiMatcher(DEFAULT_PII_KEYS) };
const reusing: SanitizeOptions = { ...copying, reuseInput: true };

function nested(depth: number): Record<string, unknown> {
  const top: Record<string, unknown> = {};
  let cur = top;
  for (let i = 0; i < depth; i++) cur = cur.next = {} as Record<string, unknown>;
  return top;
}

describe('sanitizeProperties with reuseInput', () => {
  it('returns clean JSON as it is, equal to the copy the walk makes', () => {
    const clean: Record<string, unknown>[] = [
      {},
      { service: 'api', requestId: 'req-1', library: { name: '@tally/node', version: '0.1.0' } },
      { a: 1.5, b: true, c: null, list: [1, 'two', null, { three: [false] }] },
      JSON.parse('{"page":{"path":"/","title":"Home"},"locale":"nb-NO","screen":{"width":1280}}') as Record<
        string,
        unknown
      >,
      nested(16),
    ];
    for (const input of clean) {
      const r = sanitizeProperties(input, reusing, 'e');
      expect(r).toEqual(sanitizeProperties(input, copying, 'e'));
      expect(r.ok && r.value).toBe(input);
    }
  });

  it('anything the walk would change, refuse or measure takes the walk: same outcome, never the same object', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const inheriting = Object.create({ inherited: 1 }) as Record<string, unknown>;
    inheriting.own = 'x';
    const other: unknown[] = [
      { skipped: undefined, kept: 1 }, // undefined is stripped
      { list: [1, undefined, 3] }, // undefined in an array becomes null
      // eslint-disable-next-line no-sparse-arrays -- a hole reads as undefined
      { list: [1, , 3] },
      { nested: { email: 'a@b.c' } }, // PII deep down: redacted in a copy
      { authToken: 'secret' },
      { n: Number.NaN },
      { n: Number.POSITIVE_INFINITY },
      { big: 42n },
      { when: new Date(0) },
      { err: new Error('boom') },
      { custom: { toJSON: () => ({ x: 1 }) } },
      { fn: () => 1 },
      { map: new Map() },
      { bytes: new Uint8Array(2) },
      cyclic,
      nested(17), // deeper than the limit
      inheriting, // not a plain object
      { inner: inheriting },
      JSON.parse('{"__proto__":{"polluted":true},"a":1}'), // an own "__proto__" key, as JSON.parse makes it
      { inner: JSON.parse('{"__proto__":{"polluted":true}}') },
      { long: 'x'.repeat(400) }, // over the bound's estimate (6 bytes a char), within the limit: measured exactly
      { long: 'x'.repeat(2100) }, // over the limit
      [1, 2], // not an object at all
      'text',
    ];
    for (const [i, input] of other.entries()) {
      const r = sanitizeProperties(input, reusing, 'e');
      expect(r, `case ${i}`).toEqual(sanitizeProperties(input, copying, 'e'));
      if (r.ok) expect(r.value).not.toBe(input);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('with PII off, deny-listed keys do not force a copy', () => {
    const input = { email: 'a@b.c' };
    const r = sanitizeProperties(input, { ...reusing, pii: 'off' });
    expect(r.ok && r.value).toBe(input);
  });
});
