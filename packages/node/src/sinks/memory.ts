import type { Sink, TallyEvent } from '@tally/core';

export interface MemorySink extends Sink {
  /** Every event delivered, in delivery order. */
  readonly events: TallyEvent[];
  /** Number of `send` calls (batches). */
  readonly batches: number;
  clear(): void;
}

/** Keeps delivered events in an array: for tests and development. */
export function createMemorySink(): MemorySink {
  const events: TallyEvent[] = [];
  let batches = 0;
  return {
    name: 'memory',
    events,
    get batches() {
      return batches;
    },
    async send(batch) {
      batches++;
      for (const e of batch) events.push(e);
      return { ok: true };
    },
    clear() {
      events.length = 0;
      batches = 0;
    },
    async close() {},
  };
}
