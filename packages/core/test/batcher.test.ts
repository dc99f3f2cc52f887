import { afterEach, describe, expect, it, vi } from 'vitest';
import { Batcher, type BatcherOptions, type BatchQueue } from '../src/index.js';

/** An array queue whose items weigh what they say. */
class Queue implements BatchQueue<number> {
  items: number[] = [];
  get size() {
    return this.items.length;
  }
  get bytes() {
    return this.items.reduce((a, b) => a + b, 0);
  }
  take(maxItems: number, maxBytes: number): number[] {
    let n = 0;
    let bytes = 0;
    while (n < this.items.length && n < maxItems && (n === 0 || bytes + (this.items[n] as number) <= maxBytes)) {
      bytes += this.items[n] as number;
      n++;
    }
    return this.items.splice(0, n);
  }
}

/** Batches run until the test lets each go; every batch's items and source are recorded. */
function harness(options: Partial<BatcherOptions<number>> = {}, sources = 1) {
  const queues = Array.from({ length: sources }, () => new Queue());
  const runs: { batch: number[]; source: number; done: () => void }[] = [];
  const batcher = new Batcher<number>(queues, {
    maxItems: 3,
    maxBytes: 100,
    intervalMs: 50,
    concurrency: 2,
    run: (batch, source) => new Promise<void>((done) => runs.push({ batch, source, done })),
    ...options,
  });
  const add = (source: number, ...items: number[]) => {
    (queues[source] as Queue).items.push(...items);
    batcher.added();
  };
  const finish = async (i: number) => {
    (runs[i] as { done: () => void }).done();
    // The batch's settling and the batcher's follow-up take a few microtask turns.
    for (let turn = 0; turn < 10; turn++) await Promise.resolve();
  };
  return { batcher, queues, runs, add, finish };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('Batcher', () => {
  it('starts a full batch at once, by items or by bytes, and a partial one after the interval', async () => {
    vi.useFakeTimers();
    const h = harness();
    h.add(0, 1, 1);
    expect(h.runs).toHaveLength(0);
    h.add(0, 1);
    expect(h.runs.map((r) => r.batch)).toEqual([[1, 1, 1]]);
    // 60 + 50 bytes pass maxBytes (100): a batch starts, cut at the byte limit.
    h.add(0, 60, 50);
    expect(h.runs.map((r) => r.batch)).toEqual([[1, 1, 1], [60]]);
    expect(h.batcher.queued).toBe(1);
    expect(h.batcher.inFlight).toBe(4);
    // Both slots are taken: the partial batch waits for the interval and a free slot.
    await vi.advanceTimersByTimeAsync(50);
    expect(h.runs).toHaveLength(2);
    await h.finish(0);
    expect(h.runs.map((r) => r.batch)).toEqual([[1, 1, 1], [60], [50]]);
    expect(h.batcher.inFlight).toBe(2);
  });

  it('a single item larger than maxBytes still goes, alone', () => {
    const h = harness();
    h.add(0, 500, 1);
    expect(h.runs.map((r) => r.batch)).toEqual([[500]]);
  });

  it('waits the interval, then sends what has come so far', async () => {
    vi.useFakeTimers();
    const h = harness();
    h.add(0, 1);
    await vi.advanceTimersByTimeAsync(30);
    h.add(0, 2);
    expect(h.runs).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(20);
    expect(h.runs.map((r) => r.batch)).toEqual([[1, 2]]);
  });

  it('shares its slots between sources and says which source a batch is from', () => {
    const h = harness({ concurrency: 2 }, 2);
    h.add(1, 1, 1, 1);
    h.add(0, 1, 1, 1, 1, 1, 1);
    expect(h.runs.map((r) => [r.source, r.batch.length])).toEqual([
      [1, 3],
      [0, 3],
    ]);
    expect(h.batcher.queued).toBe(3);
  });

  it('defers full batches when told to', async () => {
    const deferred: (() => void)[] = [];
    const h = harness({ defer: (start) => deferred.push(start) });
    h.add(0, 1, 1, 1);
    h.add(0, 1, 1, 1);
    expect(h.runs).toHaveLength(0);
    expect(deferred).toHaveLength(1);
    deferred[0]?.();
    expect(h.runs.map((r) => r.batch.length)).toEqual([3, 3]);
  });

  it('flush() sends what was queued at the call and waits for it, not for what comes later', async () => {
    const h = harness({ concurrency: 1 });
    h.add(0, 1, 1);
    let flushed = false;
    const flush = h.batcher.flush().then(() => (flushed = true));
    expect(h.runs.map((r) => r.batch)).toEqual([[1, 1]]);
    // Arrivals after the call: a full batch of them starts only when the slot frees.
    h.add(0, 2, 2, 2);
    await h.finish(0);
    expect(h.runs.map((r) => r.batch)).toEqual([
      [1, 1],
      [2, 2, 2],
    ]);
    await flush;
    expect(flushed).toBe(true);
    // Nothing queued: resolves once what runs now is done.
    let second = false;
    const again = h.batcher.flush().then(() => (second = true));
    await Promise.resolve();
    expect(second).toBe(false);
    await h.finish(1);
    await again;
  });

  it('drain() empties the sources until the signal aborts, then leaves the rest to the owner', async () => {
    vi.useFakeTimers();
    const h = harness({ concurrency: 1 });
    h.add(0, 1, 1, 1, 1, 1, 1, 1, 1);
    const signal = { aborted: false };
    const drained = h.batcher.drain(signal);
    expect(h.runs).toHaveLength(1);
    await h.finish(0);
    expect(h.runs).toHaveLength(2);
    signal.aborted = true;
    await h.finish(1);
    await drained;
    expect(h.batcher.queued).toBe(2);
    // Stopped: no interval starts another batch.
    h.batcher.added();
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.runs).toHaveLength(2);
  });

  it('occupy() runs outside work in the shared budget, after a slot frees', async () => {
    const h = harness({ concurrency: 1 });
    h.add(0, 1, 1, 1);
    let started = false;
    const occupied = h.batcher.occupy(5, async () => {
      started = true;
    });
    await Promise.resolve();
    expect(started).toBe(false);
    await h.finish(0);
    await occupied;
    expect(started).toBe(true);
  });
});
