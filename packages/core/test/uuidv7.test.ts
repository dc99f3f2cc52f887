import { describe, expect, it } from 'vitest';
import { formatId, isUuid, isUuidv7, reserveId, uuidv7, uuidv7Time } from '../src/index.js';

describe('uuidv7', () => {
  it('formats RFC 9562 version 7 ids with the birth time', () => {
    const now = Date.UTC(2026, 10, 23, 12, 0, 0, 123);
    const id = uuidv7(now);
    expect(isUuidv7(id)).toBe(true);
    expect(isUuid(id)).toBe(true);
    expect(id[14]).toBe('7');
    expect(['8', '9', 'a', 'b']).toContain(id[19]);
    expect(uuidv7Time(id)).toBe(now);
  });

  it('a reserved id formats to the same string whenever it is formatted', () => {
    const seed = reserveId();
    expect(formatId(seed)).toBe(formatId({ ...seed }));
    expect(uuidv7Time(formatId(seed))).toBe(seed.ms);
  });

  it('ids born in one process sort in birth order, even within one millisecond', () => {
    const ids: string[] = [];
    const t = Date.now() + 10_000; // a millisecond no earlier id used
    for (let i = 0; i < 10_000; i++) ids.push(uuidv7(t));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    // 10 000 ids in one millisecond overflow the 12-bit counter: time borrows forward, never backward.
    expect(uuidv7Time(ids.at(-1) as string)).toBeGreaterThanOrEqual(t);
  });

  it('keeps order when the clock steps back', () => {
    const a = uuidv7(Date.now() + 20_000);
    const b = uuidv7(Date.now());
    expect(b > a).toBe(true);
  });

  it('formats every seed like the plain 8-4-4-4-12 layout, across millisecond changes (prefix cache)', () => {
    // The reference: the layout spelled out digit group by digit group, without any caching.
    const hex = (v: number, digits: number) => v.toString(16).padStart(digits, '0');
    const reference = (s: { ms: number; a: number; b: number }) => {
      const count = Math.floor(s.a / 2 ** 30);
      const rand30 = s.a % 2 ** 30;
      return (
        `${hex(Math.floor(s.ms / 0x10000), 8)}-${hex(s.ms % 0x10000, 4)}-${hex(0x7000 | count, 4)}-` +
        `${hex(0x8000 | (rand30 >>> 16), 4)}-${hex(rand30 & 0xffff, 4)}${hex(s.b, 8)}`
      );
    };
    const seeds = [
      { ms: 0, a: 0, b: 0 },
      { ms: 2 ** 48 - 1, a: 2 ** 42 - 1, b: 2 ** 32 - 1 },
      { ms: 2 ** 48 - 1, a: 0xabc * 2 ** 30 + 0x1234567, b: 0x89abcdef },
    ];
    const t = Date.now();
    for (let i = 0; i < 2000; i++) seeds.push(reserveId(t + (i >> 4)));
    for (const seed of seeds) expect(formatId(seed)).toBe(reference(seed));
  });

  it('200 000 ids have no collision', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200_000; i++) seen.add(uuidv7());
    expect(seen.size).toBe(200_000);
  });
});
