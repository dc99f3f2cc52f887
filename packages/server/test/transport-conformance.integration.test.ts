/**
 * One suite for every Transport: in-process and NATS JetStream (real server at 127.0.0.1:4222, a fresh
 * stream per test). At least once, acknowledged only after the handler, nothing lost when a handler
 * fails or a consumer dies, and close() drains.
 */
import { connect, createNatsTransport, jetstream, jetstreamManager } from '@tally/nats';
import {
  type BatchHandler,
  type BatchSource,
  ErrorCodes,
  isoTime,
  type TallyEvent,
  type Transport,
  uuidv7,
} from '@tally/core';
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
  maxLagMs?: number;
  lagWaitMs?: number;
  maxInFlightEvents?: number;
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

/** A handler that records every id it completed (and can be told to fail, hang, or wait until released). */
function recorder() {
  const done = new Map<string, number>();
  const batches: TallyEvent[][] = [];
  let failNext = 0;
  let hang = false;
  let held: Promise<void> | undefined;
  const handler: BatchHandler = async (events) => {
    if (hang) return new Promise(() => {});
    if (held) await held;
    if (failNext > 0) {
      failNext--;
      throw new Error('handler failed (test)');
    }
    for (const e of events) done.set(e.id, (done.get(e.id) ?? 0) + 1);
    batches.push(events);
    return { stored: events.length, duplicates: 0, rejected: [] };
  };
  return {
    handler,
    done,
    batches,
    failTimes: (n: number) => (failNext = n),
    hangForever: () => (hang = true),
    /** Every batch waits from now until the returned function is called. */
    hold(): () => void {
      let release!: () => void;
      held = new Promise<void>((r) => (release = r));
      return () => {
        held = undefined;
        release();
      };
    },
  };
}

/** A batch as the collector accepts it from a request body, with that body (see BatchSource). */
function sourced(n: number): { events: TallyEvent[]; source: BatchSource } {
  const receivedAt = isoTime(Date.now());
  const sentAt = isoTime(Date.now() - 5);
  const items = batch(n).map(({ id, name, properties, timestamp }) => ({ id, name, properties, timestamp }));
  const context = { service: 'api' };
  const events = items.map((it) => ({ ...it, tenantId: 'acme', context, receivedAt, sentAt }));
  const body = Buffer.from(JSON.stringify({ batch: items, context, sentAt }));
  return { events, source: { body, tenantId: 'acme', receivedAt } };
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
  it.runIf(kind.queues)(
    'the events handled at once stay within maxInFlightEvents; a larger batch goes alone; nothing is redelivered',
    async () => {
      const { t } = await fresh({ maxInFlightEvents: 100 });
      let now = 0;
      let most = 0;
      const sizes: number[] = [];
      const done = new Set<string>();
      await t.consume(async (events) => {
        now += events.length;
        most = Math.max(most, now);
        sizes.push(events.length);
        await new Promise((r) => setTimeout(r, 30));
        for (const e of events) done.add(e.id);
        now -= events.length;
        return { stored: events.length, duplicates: 0, rejected: [] };
      });
      const sent = [...Array.from({ length: 8 }, () => batch(40)), batch(150), batch(40)];
      for (const b of sent) await t.publish(b);
      await waitFor(() => done.size === 470, 15_000, 'every batch handled');
      // 40 + 40 fit in 100, a third does not; the 150-event batch is handled with nothing beside it.
      expect(most).toBe(150);
      expect(sizes).toHaveLength(10);
      expect(t.stats().redelivered).toBe(0);
    },
  );

  it('a batch published with its source bytes reaches the handler as the same events', async () => {
    const { t } = await fresh();
    const r = recorder();
    await t.consume(r.handler);
    const { events, source } = sourced(20);
    await t.publish(events, source);
    await waitFor(() => r.done.size === 20, 10_000, 'batch handled');
    expect(r.batches.flat()).toEqual(events);
  });

  it.runIf(kind.queues)(
    'its own messages are stored from the events it published; another instance reads the bytes into the same events',
    async () => {
      const ns = natsNamespace();
      const publisher = await fresh({}, ns);
      const own = recorder();
      await publisher.t.consume(own.handler);
      const first = sourced(10);
      await publisher.t.publish(first.events, first.source);
      await waitFor(() => own.done.size === 10, 10_000, 'own message handled');
      // Not read back from the stream: the very objects that were published.
      expect(own.batches[0]?.[0]).toBe(first.events[0]);
      await publisher.t.close();
      open.splice(open.indexOf(publisher.t), 1);

      // Published by an instance that stops before its consumer gets to the message: another reads it.
      const gone = await fresh({}, ns);
      const second = sourced(10);
      const plain = batch(5, true);
      await gone.t.publish(second.events, second.source);
      await gone.t.publish(plain);
      await gone.t.close();
      open.splice(open.indexOf(gone.t), 1);
      const other = await fresh({}, ns);
      // Bodies are read by direct get. A stream without it (made by an earlier version, or changed by
      // hand after the start) is read through the stream API instead: nothing is lost either way.
      const nc = await connect({ servers: NATS_URL });
      const jsm = await jetstreamManager(nc);
      const allowDirect = async (on: boolean) => {
        const { config } = await jsm.streams.info(ns.stream);
        await jsm.streams.update(ns.stream, { ...config, allow_direct: on });
      };
      await allowDirect(false);
      const r = recorder();
      await other.t.consume(r.handler);
      await waitFor(() => r.done.size === 15, 10_000, 'messages of the stopped instance handled');
      expect(r.batches.flat()).toEqual([...second.events, ...plain]);
      expect(r.batches[0]?.[0]).not.toBe(second.events[0]);
      // The next start turns direct get back on.
      await fresh({}, ns);
      expect((await jsm.streams.info(ns.stream)).config.allow_direct).toBe(true);
      await nc.close();
    },
  );

  it.runIf(kind.queues)(
    'back-pressure by time: past maxLagMs a publish waits for the consumer, and goes on once it catches up',
    async () => {
      const { t } = await fresh({ maxLagMs: 300, lagWaitMs: 10_000 });
      const nt = t as unknown as { lag(): number };
      const r = recorder();
      const release = r.hold();
      await t.consume(r.handler);
      await t.publish(batch(5));
      await waitFor(() => nt.lag() > 300, 5000, 'lag past the bound');
      let answered = false;
      const waiting = t.publish(batch(5)).then((res) => {
        answered = true;
        return res;
      });
      await new Promise((res) => setTimeout(res, 300));
      expect(answered).toBe(false);
      release();
      await expect(waiting).resolves.toMatchObject({ durability: 'queued' });
      await waitFor(() => r.done.size === 10, 10_000, 'both batches handled');
      await waitFor(() => nt.lag() === 0, 5000, 'no lag once everything is stored');
    },
  );

  it.runIf(kind.queues)(
    'back-pressure by time: a consumer that does not catch up makes publish refuse with TALLY_OVERLOADED; nothing published is lost',
    async () => {
      const { t } = await fresh({ maxLagMs: 200, lagWaitMs: 300 });
      const nt = t as unknown as { lag(): number };
      const r = recorder();
      const release = r.hold();
      await t.consume(r.handler);
      const taken = [batch(3), batch(4)];
      for (const b of taken) await t.publish(b);
      await waitFor(() => nt.lag() > 200, 5000, 'lag past the bound');
      const started = Date.now();
      const refusal = await t.publish(batch(2)).catch((e: unknown) => e);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(refusal).toMatchObject({ code: ErrorCodes.OVERLOADED, details: { retryAfterS: expect.any(Number) } });
      release();
      await waitFor(() => r.done.size === 7, 10_000, 'every published batch handled');
      expect(new Set(r.done.keys())).toEqual(new Set(taken.flat().map((e) => e.id)));
      // Caught up: publishing is taken again at once.
      await t.publish(batch(1));
      await waitFor(() => r.done.size === 8, 10_000, 'the next batch handled');
    },
  );
  it.runIf(kind.queues)('back-pressure by time counts what another instance on the same consumer stored', async () => {
    const ns = natsNamespace();
    const publisher = await fresh({ maxLagMs: 300, lagWaitMs: 5000 }, ns);
    const other = await fresh({}, ns);
    const r = recorder();
    await other.t.consume(r.handler);
    const lag = () => (publisher.t as unknown as { lag(): number }).lag();
    // Each time, its own message is past the bound unless it learns of the other's ack: it must, quickly.
    for (let round = 0; round < 3; round++) {
      await publisher.t.publish(batch(5));
      await waitFor(() => r.done.size === 10 * round + 5, 10_000, 'stored by the other instance');
      await new Promise((res) => setTimeout(res, 500));
      const started = Date.now();
      await publisher.t.publish(batch(5));
      expect(Date.now() - started).toBeLessThan(600);
      await waitFor(() => r.done.size === 10 * round + 10, 10_000, 'the next batch stored');
      await waitFor(() => lag() === 0, 5000, 'no lag left');
    }
  });
});
