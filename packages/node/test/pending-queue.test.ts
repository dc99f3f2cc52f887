import { describe, expect, it } from 'vitest';
import { PendingQueue } from '../src/pending-queue.js';

/** Pushes event number `i`, every field derived from it so a mix-up between slots shows. */
function pushNumbered(q: PendingQueue, i: number): boolean {
  return q.push(
    `e${i}`,
    { i },
    i % 7 === 0 ? () => ({}) as never : undefined,
    // Beyond Smi range and fractional, as real seeds and rates are.
    { ms: 1_700_000_000_000 + i, a: 4_398_046_511_103 - i, b: 0xffff_ffff - i },
    1_700_000_000_000.5 + i,
    i % 3 === 0 ? { requestId: `r${i}` } : undefined,
    `t${i}`,
    i % 2 === 0 ? `u${i}` : undefined,
    undefined,
    i % 5 === 0 ? { extra: i } : undefined,
    i % 4 === 0 ? 0.05 : 1,
    160 + i,
  );
}

function expectNumbered(q: PendingQueue, i: number): void {
  expect(q.peekBytes()).toBe(160 + i);
  const p = q.shift();
  expect(p).toEqual({
    name: `e${i}`,
    props: { i },
    build: i % 7 === 0 ? expect.any(Function) : undefined,
    ms: 1_700_000_000_000 + i,
    a: 4_398_046_511_103 - i,
    b: 0xffff_ffff - i,
    ts: 1_700_000_000_000.5 + i,
    frame: i % 3 === 0 ? { requestId: `r${i}` } : undefined,
    tenantId: `t${i}`,
    userId: i % 2 === 0 ? `u${i}` : undefined,
    anonymousId: undefined,
    extra: i % 5 === 0 ? { extra: i } : undefined,
    rate: i % 4 === 0 ? 0.05 : 1,
    bytes: 160 + i,
  });
}

describe('PendingQueue', () => {
  it('is first in, first out with every field intact, across many blocks', () => {
    const q = new PendingQueue(100_000);
    for (let i = 0; i < 5000; i++) expect(pushNumbered(q, i)).toBe(true);
    expect(q.size).toBe(5000);
    for (let i = 0; i < 5000; i++) expectNumbered(q, i);
    expect(q.size).toBe(0);
    expect(q.shift()).toBeUndefined();
    expect(q.peekBytes()).toBe(0);
  });

  it('stays in order when pushes and shifts interleave around block boundaries', () => {
    const q = new PendingQueue(100_000);
    let pushed = 0;
    let shifted = 0;
    // Uneven steps so the head and the tail cross block edges at different moments, and the queue
    // empties now and then (which resets it to the start of one block).
    const steps: [add: number, take: number][] = [
      [1500, 1000],
      [700, 1200],
      [3000, 2999],
      [1, 2],
      [2048, 1024],
      [1024, 2048],
    ];
    for (const [add, take] of steps) {
      for (let i = 0; i < add; i++) pushNumbered(q, pushed++);
      for (let i = 0; i < take; i++) expectNumbered(q, shifted++);
      expect(q.size).toBe(pushed - shifted);
    }
    expect(q.size).toBe(0);
  });

  it('refuses a push at capacity and takes one again after a shift', () => {
    const q = new PendingQueue(1500);
    for (let i = 0; i < 1500; i++) expect(pushNumbered(q, i)).toBe(true);
    expect(pushNumbered(q, 1500)).toBe(false);
    expect(q.size).toBe(1500);
    expectNumbered(q, 0);
    expect(pushNumbered(q, 1500)).toBe(true);
    for (let i = 1; i <= 1500; i++) expectNumbered(q, i);
  });
});
