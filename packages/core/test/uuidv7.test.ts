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

  it('200 000 ids have no collision', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200_000; i++) seen.add(uuidv7());
    expect(seen.size).toBe(200_000);
  });
});
