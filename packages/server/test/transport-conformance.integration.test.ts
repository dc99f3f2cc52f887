/**
 * One suite for every Transport: in-process and NATS JetStream (real server at 127.0.0.1:4222, a fresh
 * stream per test). At least once, acknowledged only after the handler, nothing lost when a handler
 * fails or a consumer dies, and close() drains.
 */
import { connect, createNatsTransport, jetstream } from '@tally/nats';
import { type BatchHandler, ErrorCodes, isoTime, type TallyEvent, type Transport, uuidv7 } from '@tally/core';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../node/test/support/helpers.js';
import { createMemoryTransport } from '../src/transport-memory.js';
import { needs } from '../../node/test/support/service-gate.js';
import { NATS_URL, nats, natsNamespace } from './support/services.js';

interface Kind {
  name: 'memory' | 'nats';
  /** publish() resolves once queued in a stream, before the handler runs. */
  queues: boolean;
  open(ns: Namespace, opts?: OpenOptions): Promise<Transport>;
}
type Namespace = ReturnType<typeof natsNamespace>;
type DeadLetterFn = (m: { subject: string; data: Uint8Array; reason: string }) => Promise<void>;
type OpenOptions = {
  ackWaitMs?: number;
  maxDeliveries?: number;
  onDeadLetter?: DeadLetterFn;
  maxPendingMessages?: number;
};

const kinds: Kind[] = [
  { name: 'memory', queues: false, open: async () => createMemoryTransport() },
  ...(needs(nats).runs
    ? [
        {
          name: 'nats' as const,
          queues: true,
          open: (ns: Namespace, o: OpenOptions = {}) => {
            nats.assertMet();
            return createNatsTransport({
              servers: [NATS_URL],
              stream: ns.stream,
              prefix: ns.prefix,
              durable: 'test',
              ...o,
            });
          },
        },
      ]
    : []),
];

/** `mixed`: every fifth is a request log (NATS carries those on their own subject: two messages). */
function batch(n: number, mixed = false): TallyEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    id: uuidv7(),
    name: mixed && i % 5 === 4 ? '$request' : 'task_created',
    tenantId: 't',
    properties: { i },
    context: {},
    timestamp: isoTime(Date.now()),
  }));
}

/** A handler that records every id it completed (and can be told to fail or hang). */
function recorder() {
  const done = new Map<string, number>();
  let failNext = 0;
  let hang = false;
  const handler: BatchHandler = async (events) => {
    if (hang) return new Promise(() => {});
    if (failNext > 0) {
      failNext--;
      throw new Error('handler failed (test)');
    }
    for (const e of events) done.set(e.id, (done.get(e.id) ?? 0) + 1);
    return { stored: events.length, duplicates: 0, rejected: [] };
  };
  return {
    handler,
    done,
    failTimes: (n: number) => (failNext = n),
    hangForever: () => (hang = true),
  };
}

describe.each(kinds)('Transport conformance: $name', (kind) => {
  const open: Transport[] = [];
  const namespaces: Namespace[] = [];
  const fresh = async (o?: Parameters<Kind['open']>[1], ns = natsNamespace()) => {
    namespaces.push(ns);
    const t = await kind.open(ns, o);
    open.push(t);
    return { t, ns };
  };
  afterEach(async () => {
    for (const t of open.splice(0)) await t.close();
    if (kind.name === 'nats') for (const ns of namespaces.splice(0)) await ns.cleanup();
  });

  it('every published event reaches the handler, and publish answers only when durable', async () => {
    const { t } = await fresh();
    const r = recorder();
    await t.consume(r.handler);
    const sent = [batch(50, true), batch(1), batch(300, true)];
    const results = await Promise.all(sent.map((b) => t.publish(b)));
    for (const res of results) expect(res.durability).toBe(kind.queues ? 'queued' : 'stored');
    if (!kind.queues) expect(r.done.size).toBe(351); // stored before publish resolved
    await waitFor(() => r.done.size === 351, 10_000, 'all events handled');
    expect(new Set(sent.flat().map((e) => e.id))).toEqual(new Set(r.done.keys()));
    expect(t.stats().published).toBe(3);
    await waitFor(() => t.stats().inFlight === 0, 5000, 'all acknowledged');
    expect(t.stats().handled).toBeGreaterThanOrEqual(3);
  });

  it('a failing handler loses nothing: the batch comes again (or its publisher is told)', async () => {
    const { t } = await fresh();
    const r = recorder();
    await t.consume(r.handler);
    r.failTimes(2);
    const b = batch(20);
    if (kind.queues) {
      await t.publish(b);
      await waitFor(() => r.done.size === 20, 15_000, 'redelivered after two failures');
      expect(t.stats().redelivered).toBeGreaterThanOrEqual(2);
    } else {
      // In process, the publisher is the one that resends: it gets a typed error, not an ack.
      await expect(t.publish(b)).rejects.toMatchObject({ code: ErrorCodes.UNAVAILABLE });
      await expect(t.publish(b)).rejects.toMatchObject({ code: ErrorCodes.UNAVAILABLE });
      await t.publish(b);
      expect(r.done.size).toBe(20);
    }
  });

  it('close() waits for in-flight batches; publish after close is refused with TALLY_SHUTDOWN', async () => {
    const { t } = await fresh();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let finished = 0;
    await t.consume(async (events) => {
      await gate;
      finished += events.length;
      return { stored: events.length, duplicates: 0, rejected: [] };
    });
    const published = t.publish(batch(10));
    if (kind.queues) await published;
    await waitFor(() => t.stats().inFlight === 1, 5000, 'batch in flight');
    const closed = t.close();
    setTimeout(release, 100);
    await closed;
    expect(finished).toBe(10);
    if (!kind.queues) await expect(published).resolves.toMatchObject({ stored: 10 });
    await expect(t.publish(batch(1))).rejects.toMatchObject({ code: ErrorCodes.SHUTDOWN });
  });

  it.runIf(kind.queues)('a consumer that dies before acking: its batch is delivered to the next one', async () => {
    const ns = natsNamespace();
    const first = await fresh({ ackWaitMs: 1000 }, ns);
    const dead = recorder();
    dead.hangForever();
    await first.t.consume(dead.handler);
    const b = batch(30);
    await first.t.publish(b);
    await waitFor(() => first.t.stats().inFlight === 1, 5000, 'first consumer holds the batch');
    // "Crash": the connection goes away without an ack (close() would wait for the hung handler).
    await (first.t as unknown as { connection: { close(): Promise<void> } }).connection.close();
    const second = await fresh({ ackWaitMs: 1000 }, ns);
    const alive = recorder();
    await second.t.consume(alive.handler);
    await waitFor(() => alive.done.size === 30, 15_000, 'redelivered to the second consumer');
    open.splice(open.indexOf(first.t), 1);
  });

  it.runIf(kind.queues)('poison: unreadable messages and ones failing N times go to the dead-letter path', async () => {
    const dead: { reason: string; data: string }[] = [];
    const { t, ns } = await fresh({
      maxDeliveries: 2,
      onDeadLetter: async (m) => {
        dead.push({ reason: m.reason, data: Buffer.from(m.data).toString() });
      },
    });
    const r = recorder();
    await t.consume(r.handler);
    const nc = await connect({ servers: NATS_URL });
    await jetstream(nc).publish(`${ns.prefix}.analytics.events`, new TextEncoder().encode('{not json'));
    await nc.close();
    await waitFor(() => dead.length === 1, 10_000, 'unreadable message dead-lettered');
    expect(dead[0]?.reason).toMatch(/unreadable/);
    r.failTimes(100);
    await t.publish(batch(3));
    await waitFor(() => dead.length === 2, 15_000, 'failing message dead-lettered after 2 deliveries');
    expect(dead[1]?.reason).toMatch(/failed 2 times/);
    expect(t.stats().deadLettered).toBe(2);
    // The consumer is not blocked by them.
    r.failTimes(0);
    await t.publish(batch(4));
    await waitFor(() => r.done.size === 4, 10_000, 'later batches still flow');
  });

  it.runIf(kind.queues)('back-pressure: a consumer far behind makes publish refuse with TALLY_OVERLOADED', async () => {
    const { t } = await fresh({ maxPendingMessages: 3 });
    const r = recorder();
    r.hangForever();
    await t.consume(r.handler);
    for (let i = 0; i < 6; i++) await t.publish(batch(2));
    await waitFor(() => (t as unknown as { backlog(): number }).backlog() > 3, 5000, 'backlog seen');
    await expect(t.publish(batch(1))).rejects.toMatchObject({ code: ErrorCodes.OVERLOADED });
    open.splice(open.indexOf(t), 1);
    await (t as unknown as { connection: { close(): Promise<void> } }).connection.close();
  });
});
