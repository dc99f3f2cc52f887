/**
 * The SDK's NATS sink against the real JetStream at 127.0.0.1:4222: the Sink conformance suite, with
 * what the stream holds read back in order; plus the publish dedupe of a resent batch.
 */
import { randomBytes } from 'node:crypto';
import { applyBatchContext, type EventBatch, type TallyEvent } from '@tally/core';
import { expect, it } from 'vitest';
import { needs, probeNats } from '../../node/test/support/service-gate.js';
import { type Harness, sinkConformance } from '../../node/test/support/sink-suite.js';
import { connect, createNatsSink, ensureStream, jetstream, jetstreamManager } from '../src/index.js';

const NATS_URL = 'nats://127.0.0.1:4222';
const nats = await probeNats();

/** A fresh stream; `read` returns every event in it, in stream order. */
async function freshStream() {
  const tag = randomBytes(5).toString('hex');
  const stream = `SINK_${tag.toUpperCase()}`;
  const prefix = `s${tag}`;
  const nc = await connect({ servers: NATS_URL });
  const jsm = await jetstreamManager(nc);
  await ensureStream(jsm, { stream, prefix, maxAgeMs: 3600_000, duplicateWindowMs: 120_000 });
  return {
    prefix,
    async read(): Promise<{ events: TallyEvent[]; messages: number }> {
      const total = (await jsm.streams.info(stream)).state.messages;
      const events: TallyEvent[] = [];
      if (total > 0) {
        const consumer = await jetstream(nc).consumers.get(stream);
        const msgs = await consumer.fetch({ max_messages: total, expires: 2000 });
        let seen = 0;
        for await (const m of msgs) {
          const body = m.json<EventBatch>();
          applyBatchContext(body.batch ?? [], body.context);
          events.push(...((body.batch ?? []) as TallyEvent[]));
          if (++seen === total) break;
        }
      }
      return { events, messages: total };
    },
    async dispose() {
      await jsm.streams.delete(stream).catch(() => undefined);
      await nc.close();
    },
  };
}

const harness: Harness = {
  name: 'nats',
  async make() {
    const s = await freshStream();
    const sink = createNatsSink({ servers: NATS_URL, prefix: s.prefix });
    return { sink, received: async () => (await s.read()).events, dispose: s.dispose };
  },
};

needs(nats).describe('NATS sink against JetStream', () => sinkConformance(harness));

needs(nats).describe('NATS sink', () => {
  it('the same batch published twice is one set of messages (Nats-Msg-Id dedupe)', async () => {
    const s = await freshStream();
    const sink = createNatsSink({ servers: NATS_URL, prefix: s.prefix });
    try {
      const batch: TallyEvent[] = Array.from({ length: 10 }, (_, i) => ({
        id: `01a2089e-f00e-7f7d-aa05-0237de2afb${String(i).padStart(2, '0')}`,
        name: 'x',
        tenantId: 't',
        properties: {},
        context: {},
        timestamp: new Date().toISOString(),
      }));
      const signal = new AbortController().signal;
      expect(await sink.send(batch, { signal })).toEqual({ ok: true });
      expect(await sink.send(batch, { signal })).toEqual({ ok: true });
      expect(await s.read()).toMatchObject({ messages: 1 });
    } finally {
      await sink.close();
      await s.dispose();
    }
  });

  it('an unreachable server is a retry, never a throw', async () => {
    const sink = createNatsSink({ servers: 'nats://127.0.0.1:1', timeoutMs: 500 });
    const r = await sink.send([], { signal: new AbortController().signal });
    expect(r).toMatchObject({ ok: false, disposition: 'retry', error: { code: 'TALLY_SINK_RETRYABLE' } });
    await sink.close();
  });
});
