import { isoTime, type TallyEvent, uuidv7 } from '@tally/core';
import { describe, expect, it } from 'vitest';
import { jsonValue, serializeBatch } from '../src/serialize.js';

const tricky = [
  '',
  'plain',
  'quote " and \\ backslash',
  'line\nbreak\ttab\u0000nul\u001f',
  'é € 😀',
  '\ud800 lone',
  '</script>',
];

describe('hand-written batch JSON', () => {
  it('equals JSON.stringify for every kind of JSON value', () => {
    const values: unknown[] = [
      ...tricky,
      0,
      -0,
      1.5e-7,
      123456789012345,
      -42,
      true,
      false,
      null,
      [],
      {},
      [1, 'a', null, [2, { b: 'c' }]],
      Object.fromEntries(tricky.map((k, i) => [k, i])),
      { nested: { deeper: { list: [tricky] } } },
    ];
    for (const v of values) expect(jsonValue(v), JSON.stringify(v)).toBe(JSON.stringify(v));
  });

  it('serializes a batch exactly as JSON.stringify would', () => {
    const shared = Object.freeze({ service: 'api', library: { name: '@tally/node', version: '0.1.0' } });
    const events: TallyEvent[] = tricky.map((s, i) => ({
      id: uuidv7(),
      name: `name ${s}`,
      tenantId: s || 'default',
      ...(i % 2 ? { userId: s } : { anonymousId: `anon-${s}` }),
      properties: { s, i, list: [s, i, null], nested: { s } },
      context: i % 3 ? shared : { requestId: s, sampleRate: 0.5 },
      timestamp: isoTime(Date.now()),
    }));
    const sentAt = isoTime(Date.now());
    expect(serializeBatch(events, sentAt)).toBe(JSON.stringify({ batch: events, sentAt }));
  });
});
