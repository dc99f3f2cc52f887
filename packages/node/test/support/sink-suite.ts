/**
 * The Sink conformance suite: each implementation must deliver what it is given, intact and in order,
 * answer with a result rather than throw, take concurrent batches, and close idempotently. Sinks living
 * in other packages (nats, the store's direct sink) run it with their own harness.
 */
import { isoTime, type TallyEvent, uuidv7 } from '@tally/core';
import { afterEach, describe, expect, it } from 'vitest';
import type { Sink } from '../../src/index.js';

export interface Harness {
  name: string;
  /** A fresh sink and a way to read back what its destination received. */
  make(): Promise<{ sink: Sink; received: () => Promise<TallyEvent[]>; dispose: () => Promise<void> }>;
}

function events(n: number, from = 0): TallyEvent[] {
  return Array.from({ length: n }, (_, k) => ({
    id: uuidv7(),
    name: 'conformance',
    tenantId: 'tenant-a',
    userId: `user-${k}`,
    properties: { i: from + k, text: 'héllo ✓ 😀 "quoted" \\ \n', nested: { list: [1, null, true] } },
    context: { service: 'conformance', library: { name: '@tally/node', version: '0.1.0' } },
    timestamp: isoTime(Date.now()),
  }));
}

export function sinkConformance(h: Harness): void {
  describe(`Sink conformance: ${h.name}`, () => {
    const disposers: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const d of disposers.splice(0)) await d();
    });
    async function make() {
      const made = await h.make();
      disposers.push(async () => {
        await made.sink.close();
        await made.dispose();
      });
      return made;
    }
    const signal = new AbortController().signal;

    it('delivers a batch intact and in order, and answers ok', async () => {
      const { sink, received } = await make();
      const batch = events(50);
      expect(await sink.send(batch, { signal })).toEqual({ ok: true });
      expect(await received()).toEqual(batch);
    });

    it('accepts an empty batch', async () => {
      const { sink, received } = await make();
      const result = await sink.send([], { signal });
      expect(result.ok).toBe(true);
      expect(await received()).toEqual([]);
    });

    it('takes concurrent batches without losing or mixing events', async () => {
      const { sink, received } = await make();
      const batches = Array.from({ length: 8 }, (_, b) => events(100, b * 100));
      const results = await Promise.all(batches.map((b) => sink.send(b, { signal })));
      expect(results.every((r) => r.ok)).toBe(true);
      const got = await received();
      expect(got).toHaveLength(800);
      expect(new Set(got.map((e) => e.id))).toEqual(new Set(batches.flat().map((e) => e.id)));
    });

    it('delivers a large batch (5 000 events)', async () => {
      const { sink, received } = await make();
      const batch = events(5000);
      expect((await sink.send(batch, { signal })).ok).toBe(true);
      expect((await received()).length).toBe(5000);
    });

    it('has a name and closes idempotently', async () => {
      const { sink } = await make();
      expect(sink.name).toBe(h.name);
      await sink.close();
      await sink.close();
    });
  });
}
