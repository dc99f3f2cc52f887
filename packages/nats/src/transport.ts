/**
 * The NATS JetStream transport. `publish` resolves once every message of the batch is stored in the
 * stream (file storage: it survives a restart of either side). `consume` runs a durable pull consumer:
 * each message is handed to the writer and acknowledged only after the writer has committed it; a
 * crash before the ack means JetStream delivers it again after `ackWaitMs`, and the writer's
 * idempotent insert turns that redelivery into nothing.
 *
 * A message that cannot be read, or whose handling failed `maxDeliveries` times, is poison: it goes to
 * the dead-letter path (`onDeadLetter`, the server writes it to a JSONL file) and is terminated, so it
 * never blocks the consumer. Writer refusals because of load or shutdown are naked with a delay.
 *
 * The collector that publishes a batch and the consumer that stores it are usually one process. So the
 * transport keeps the events of the messages it published until its own consumer is delivered them
 * (matched by the Tally-Origin header, which names this instance and the message): those are stored
 * without the message being read back, and only messages from elsewhere (another instance, the SDK's
 * NATS sink, a redelivery) are parsed. The stream stays the record: what is kept is only ever used for
 * the very message it was published as, and dropping it (memory bound, age) only costs a parse.
 *
 * Back-pressure (ledger.ts): a publish goes ahead while the messages not yet stored are younger than
 * `maxLagMs` and the consumer, at the rate it has been storing, would store them and the new batch
 * within it; else it waits for the consumer, in order of arrival, up to `lagWaitMs`, then refuses with
 * TALLY_OVERLOADED (the collector answers 503 + Retry-After). Producers so slow down to what the
 * consumer stores, and the time from send to queryable stays near the bound instead of growing with
 * the stream's backlog.
 */
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import {
  backoffDelay,
  type BatchHandler,
  type BatchSource,
  ErrorCodes,
  type PublishResult,
  sleep,
  TallyConfigError,
  TallyError,
  type TallyEvent,
  type Transport,
  type TransportStats,
} from '@tally/core';
import { HEADER_ORIGIN, readMessage } from './message.js';
import { createLedger } from './ledger.js';
import { batchMessages, headersOf } from './publisher.js';
import { DAY_MS, ensureConsumer, ensureStream } from './stream.js';

export interface NatsTransportOptions {
  servers: string[];
  /** Subjects `<prefix>.analytics.<type>`. Default `tally`. */
  prefix?: string;
  /** Default `ANALYTICS`. */
  stream?: string;
  /** Durable consumer name. Default `tally-writer`. */
  durable?: string;
  /** Stream max age. Default 30 days. */
  maxAgeMs?: number;
  /** How long a delivered message may stay unacknowledged before JetStream redelivers it. Default 30 s. */
  ackWaitMs?: number;
  /** Deliveries before a message whose handling keeps failing is dead-lettered. Default 10. */
  maxDeliveries?: number;
  /** Messages handled at once (each is a batch of events). Default 32. */
  maxInFlight?: number;
  /**
   * Bytes of messages handled at once (at least one message): a batch's size, not the count of
   * messages, is what the writer works through, so one-event messages do not hold the slots a
   * thousand-event batch needs. Default 8 MiB.
   */
  maxInFlightBytes?: number;
  /**
   * Events handled at once (at least one message's): a message's event count is known only once its body
   * is read, so a message waits here, read, until the events before it are stored. Keep it below the
   * writer's queue (maxQueueRows), which refuses what passes it: a refused message is redelivered only
   * after a backoff, so a window larger than the queue would stall the consumer. Default 50 000.
   */
  maxInFlightEvents?: number;
  /** Publish ack timeout. Default 10 s. */
  publishTimeoutMs?: number;
  /**
   * Back-pressure by count: when the durable consumer has more than this many messages (batches) not
   * yet stored (as of its last consumer info, ≤ 1 s old), `publish` refuses with TALLY_OVERLOADED at
   * once. Catches a backlog the lag does not see: messages from other publishers while the consumer is
   * stopped. Default 1000; 0 turns it off.
   */
  maxPendingMessages?: number;
  /**
   * Back-pressure by time: the bound on the age of the oldest message not yet stored and on the time
   * the consumer needs for those (see the header comment); a publish that would pass it waits. Default
   * 1000 ms; 0 turns it off.
   */
  maxLagMs?: number;
  /**
   * How long a publish waits for the lag to fall before it refuses with TALLY_OVERLOADED. Default 5000
   * ms: a consumer briefly slowed (a checkpoint, a busy machine) slows producers down instead of
   * refusing them, well within an SDK's request timeout (10 s).
   */
  lagWaitMs?: number;
  /**
   * Events of its own messages the transport keeps for its consumer (see the header comment); past
   * it, the oldest are dropped and their messages parsed when delivered. Default 100 000.
   */
  maxKeptEvents?: number;
  /** Where poison messages go before they are terminated. */
  onDeadLetter?: (message: { subject: string; data: Uint8Array; deliveries: number; reason: string }) => Promise<void>;
  /** Connection name shown by the server (`nats server report connections`). */
  name?: string;
  /**
   * Faults the transport works around by itself (the consumer stopped and is restarted, a deleted
   * consumer re-created, an ack lost with the connection), for the log. Default: none.
   */
  onError?: (error: Error, what: string) => void;
}

export interface NatsTransport extends Transport {
  readonly connection: NatsConnection;
  readonly jsm: JetStreamManager;
  /** Messages the durable consumer has not yet acknowledged (as of the last refresh, ≤ 1 s old). */
  backlog(): number;
  /** Age in ms of the oldest message not yet stored (0: none), as back-pressure measures it. */
  lag(): number;
}

/**
 * A count of slots (events) shared by the messages in flight, taken in order of asking. One that asks
 * for more than the whole gets it while nothing else is taken, so no message waits forever.
 */
function createSlots(size: number) {
  let used = 0;
  const waiting: { n: number; go: () => void }[] = [];
  const fits = (n: number) => used === 0 || used + n <= size;
  return {
    take(n: number): Promise<void> {
      if (waiting.length === 0 && fits(n)) {
        used += n;
        return Promise.resolve();
      }
      return new Promise((go) => waiting.push({ n, go }));
    },
    give(n: number): void {
      used -= n;
      while (waiting.length > 0 && fits((waiting[0] as { n: number }).n)) {
        const next = waiting.shift() as { n: number; go: () => void };
        used += next.n;
        next.go();
      }
    },
  };
}

/** The header a headers-only delivery gives the size of the body in. */
const MSG_SIZE = 'Nats-Msg-Size';

/** What became of a message the consumer handled. */
type Outcome = 'stored' | 'failed' | 'dead-lettered';

/** Published messages no acknowledgement was seen for are given up on after this long. */
const FORGET_AFTER_MS = 10 * 60_000;

export async function createNatsTransport(options: NatsTransportOptions): Promise<NatsTransport> {
  const prefix = options.prefix ?? 'tally';
  const streamName = options.stream ?? 'ANALYTICS';
  const durable = options.durable ?? 'tally-writer';
  const ackWaitMs = options.ackWaitMs ?? 30_000;
  const maxDeliveries = options.maxDeliveries ?? 10;
  const maxInFlight = options.maxInFlight ?? 32;
  const maxInFlightBytes = options.maxInFlightBytes ?? 8 * 1024 * 1024;
  const eventSlots = createSlots(options.maxInFlightEvents ?? 50_000);
  const publishTimeoutMs = options.publishTimeoutMs ?? 10_000;
  const maxPending = options.maxPendingMessages ?? 1000;
  const maxLagMs = options.maxLagMs ?? 500;
  const lagWaitMs = options.lagWaitMs ?? 5000;
  const maxKeptEvents = options.maxKeptEvents ?? 100_000;
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: options.servers,
      name: options.name ?? 'tally',
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
    });
  } catch (e) {
    throw new TallyConfigError(
      `cannot reach NATS at ${options.servers.join(', ')}: ${(e as Error).message} (is nats-server running with -js?)`,
    );
  }
  let jsm: JetStreamManager;
  let js: JetStreamClient;
  try {
    jsm = await jetstreamManager(nc);
    js = jetstream(nc);
    await ensureStream(jsm, {
      stream: streamName,
      prefix,
      maxAgeMs: options.maxAgeMs ?? 30 * DAY_MS,
      duplicateWindowMs: 120_000,
    });
  } catch (e) {
    await nc.close();
    if (e instanceof TallyError) throw e;
    throw new TallyConfigError(`NATS at ${options.servers.join(', ')}: JetStream unavailable: ${(e as Error).message}`);
  }

  const stats: TransportStats = { published: 0, handled: 0, redelivered: 0, deadLettered: 0, inFlight: 0 };
  let connected = true;
  let closing = false;
  let messages: ConsumerMessages | undefined;
  let loop: Promise<void> | undefined;
  // Wakes the consumer loop from its wait between restarts when the transport closes.
  const stopping = new AbortController();
  const report = (e: unknown, what: string) => {
    try {
      options.onError?.(e instanceof Error ? e : new Error(String(e)), what);
    } catch {
      // A failing log callback must not take the consumer down.
    }
  };
  const inFlight = new Set<Promise<void>>();
  let inFlightBytes = 0;

  // This instance's messages not yet stored, the consumer's, and the back-pressure (ledger.ts).
  const instance = randomBytes(9).toString('base64url');
  let published = 0;
  const ledger = createLedger({ maxLagMs, maxKeptEvents });
  let waitingRefresh: NodeJS.Timeout | undefined;

  // The consumer's backlog, refreshed once a second (a cheap consumer-info request), not per publish.
  // Its ack floor also settles this instance's messages that another consumer acknowledged (several
  // `tally serve` sharing the durable consumer); while publishes wait on the lag, ten times a second, so
  // such an acknowledgement lets them go in time.
  let pending = 0;
  const refresh = () =>
    jsm.consumers.info(streamName, durable).then(
      (i) => {
        pending = i.num_pending + i.num_ack_pending;
        ledger.settled(i.ack_floor.stream_seq, Date.now() - FORGET_AFTER_MS);
      },
      () => undefined, // not created yet, or NATS away: health says so elsewhere
    );
  const backlog = setInterval(refresh, 1000);
  backlog.unref();
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') connected = false;
      else if (s.type === 'reconnect') connected = true;
    }
  })().catch((e: unknown) => report(e, 'NATS status stream failed'));

  async function handle(msg: JsMsg, handler: BatchHandler): Promise<void> {
    const deliveries = msg.info.deliveryCount;
    if (deliveries > 1) stats.redelivered++;
    const origin = msg.headers?.get(HEADER_ORIGIN) || undefined;
    let events = ledger.take(origin);
    if (!events) {
      let data: Uint8Array | null;
      try {
        data = await body(msg);
      } catch (e) {
        // NATS away: delivered again later.
        report(e, 'could not read a NATS message body; it will be redelivered');
        nak(msg, deliveries);
        ledger.handled(msg, origin, 'failed');
        return;
      }
      if (data === null) {
        // Gone from the stream (its max age, a purge) since it was delivered: nothing left to store.
        report(new Error(`message ${msg.info.streamSequence} is no longer in the stream`), 'NATS message skipped');
        terminate(msg, 'no longer in the stream');
        ledger.handled(msg, origin, 'dead-lettered');
        return;
      }
      try {
        events = readMessage(data, msg.headers);
      } catch (e) {
        await deadLetter(msg, data, `unreadable message: ${(e as Error).message}`);
        ledger.handled(msg, origin, 'dead-lettered');
        return;
      }
    }
    ledger.handling(msg, msg.info.timestampNanos / 1e6, events.length, origin);
    let outcome: Outcome = 'failed';
    try {
      outcome = await store(msg, events, handler, deliveries);
    } finally {
      ledger.handled(msg, origin, outcome);
    }
  }

  /**
   * A message's body. Deliveries carry headers only (see ensureConsumer): a body is read from the stream
   * by its sequence, null when it is no longer there. Direct get answers with the raw bytes (the stream
   * API wraps them in base64 inside JSON: a third of the consumer's CPU on other publishers' messages);
   * any replica may answer it, and one behind the leader may not have the message yet, so a miss is
   * asked of the leader before the message counts as gone.
   */
  async function body(msg: JsMsg): Promise<Uint8Array | null> {
    if (msg.data.length > 0 || !msg.headers?.has(MSG_SIZE)) return msg.data;
    const seq = msg.info.streamSequence;
    const direct = await jsm.direct.getMessage(streamName, { seq }).catch(() => null);
    if (direct !== null) return direct.data;
    const stored = await jsm.streams.getMessage(streamName, { seq });
    return stored === null ? null : stored.data;
  }

  function nak(msg: JsMsg, deliveries: number): void {
    try {
      msg.nak(backoffDelay(deliveries, { initialMs: 500, maxMs: 30_000 }));
    } catch {
      // Connection gone: redelivered after the ack wait all the same.
    }
  }

  function terminate(msg: JsMsg, reason: string): void {
    try {
      msg.term(reason);
    } catch {
      // Connection gone: delivered again, and found gone again.
    }
  }

  /** Hands a message's events to the handler; acknowledges them once stored, else naks or dead-letters. */
  async function store(msg: JsMsg, events: TallyEvent[], handler: BatchHandler, deliveries: number): Promise<Outcome> {
    // A writer waiting out a database restart must not let the ack deadline pass: keep the message ours.
    // (Each of ack, nak, working and term throws once the connection is closed: never out of a timer.)
    const keepAlive = setInterval(
      () => {
        try {
          msg.working();
        } catch {
          // Connection gone: the message is redelivered after the ack wait; nothing to do here.
        }
      },
      Math.max(1000, ackWaitMs / 3),
    );
    let failure: unknown;
    let stored = false;
    // Kept alive while it waits for the events ahead of it, too (take never rejects).
    await eventSlots.take(events.length);
    try {
      await handler(events);
      stored = true;
    } catch (e) {
      failure = e;
    } finally {
      clearInterval(keepAlive);
      eventSlots.give(events.length);
    }
    if (!stored && deliveries >= maxDeliveries) {
      let data: Uint8Array | null = null;
      try {
        data = await body(msg);
      } catch {
        // Not readable now: left for a later delivery below.
      }
      if (data === null) {
        nak(msg, deliveries);
        return 'failed';
      }
      const kept = await deadLetter(
        msg,
        data,
        `failed ${deliveries} times: ${(failure as Error)?.message ?? String(failure)}`,
      );
      return kept ? 'dead-lettered' : 'failed';
    }
    try {
      if (stored) msg.ack();
      else msg.nak(backoffDelay(deliveries, { initialMs: 500, maxMs: 30_000 }));
    } catch (e) {
      // Stored but not acknowledged (or not nak'ed): JetStream delivers it again after the ack wait and
      // the writer's idempotent insert turns that into nothing.
      report(e, `could not ${stored ? 'ack' : 'nak'} a NATS message; it will be redelivered`);
      return 'failed';
    }
    if (!stored) return 'failed';
    stats.handled++;
    return 'stored';
  }

  /** Keeps a poison message on the dead-letter path and terminates it; false when it could not be kept. */
  async function deadLetter(msg: JsMsg, data: Uint8Array, reason: string): Promise<boolean> {
    try {
      await options.onDeadLetter?.({
        subject: msg.subject,
        data,
        deliveries: msg.info.deliveryCount,
        reason,
      });
    } catch (e) {
      // Could not keep it: leave the message in the stream for a later delivery rather than lose it.
      report(e, 'could not write a NATS dead letter; the message stays in the stream');
      try {
        msg.nak(30_000);
      } catch {
        // Connection gone: redelivered after the ack wait all the same.
      }
      return false;
    }
    stats.deadLettered++;
    try {
      msg.term(reason);
    } catch (e) {
      // Kept as a dead letter but delivered again later: the dead-letter file may hold it twice.
      report(e, 'could not terminate a dead-lettered NATS message');
    }
    return true;
  }

  /** The refusal of a publish that waited for the consumer in vain. */
  function overloaded(): TallyError {
    const behind = ledger.lag();
    return new TallyError(
      ErrorCodes.OVERLOADED,
      `the stream's consumer is ${(behind / 1000).toFixed(1)} s behind (bound ${maxLagMs / 1000} s): retry later`,
      { retryAfterS: Math.min(30, Math.max(1, Math.ceil(behind / 1000))) },
    );
  }

  return {
    kind: 'nats',
    connection: nc,
    jsm,
    async publish(events: TallyEvent[], source?: BatchSource): Promise<PublishResult> {
      if (closing) throw new TallyError(ErrorCodes.SHUTDOWN, 'transport is closing');
      if (maxPending > 0 && pending > maxPending) {
        throw new TallyError(
          ErrorCodes.OVERLOADED,
          `the stream's consumer is ${pending} batches behind (limit ${maxPending}): retry later`,
        );
      }
      // Behind those already waiting, or when the backlog would pass the bound: wait for the consumer.
      const waited = ledger.admit(events.length, lagWaitMs);
      if (ledger.waiting() > 0 && waitingRefresh === undefined) {
        waitingRefresh = setInterval(() => {
          if (ledger.waiting() > 0) return void refresh();
          clearInterval(waitingRefresh);
          waitingRefresh = undefined;
        }, 100);
        waitingRefresh.unref();
      }
      const admission = await waited;
      if (admission === 'timeout') throw overloaded();
      if (closing || admission === 'closed') {
        if (admission === 'waited') ledger.unreserve(events.length);
        throw new TallyError(ErrorCodes.SHUTDOWN, 'transport is closing');
      }
      const messages = batchMessages(prefix, events, nc.info?.max_payload ?? 1024 * 1024, source);
      try {
        await Promise.all(
          messages.map(async (m) => {
            const origin = `${instance}.${(++published).toString(36)}`;
            // Kept before the publish: the consumer can be delivered the message before its ack arrives here.
            ledger.add(origin, m.events, admission === 'waited');
            try {
              const ack = await js.publish(m.subject, m.data, {
                msgID: m.id,
                timeout: publishTimeoutMs,
                headers: headersOf(m, [[HEADER_ORIGIN, origin]]),
              });
              // A duplicate was not stored: the stream holds an earlier message under that id.
              if (ack.duplicate) ledger.withdraw(origin);
              else ledger.sequenced(origin, ack.seq);
            } catch (e) {
              ledger.withdraw(origin);
              throw e;
            }
          }),
        );
      } catch (e) {
        throw new TallyError(
          ErrorCodes.UNAVAILABLE,
          `JetStream did not take the batch: ${(e as Error).message}`,
          {},
          { cause: e },
        );
      }
      stats.published++;
      return { durability: 'queued', rejected: [] };
    },
    async consume(handler) {
      const subscribe = async () => {
        await ensureConsumer(jsm, streamName, durable, prefix, ackWaitMs, maxInFlight * 4);
        const consumer = await js.consumers.get(streamName, durable);
        const subscribed = await consumer.consume({ max_messages: maxInFlight * 2 });
        // The client retries pulls on its own, but a durable consumer deleted under it (by hand, or a
        // stream re-created) never comes back by itself: re-create it, and the pulls find it again.
        void (async () => {
          for await (const n of subscribed.status()) {
            if ((n.type === 'consumer_deleted' || n.type === 'consumer_not_found') && !closing) {
              report(new Error(n.type), `NATS consumer ${durable} is gone; re-creating it`);
              try {
                await ensureConsumer(jsm, streamName, durable, prefix, ackWaitMs, maxInFlight * 4);
              } catch (e) {
                report(e, `could not re-create NATS consumer ${durable}`);
                continue;
              }
              // The client would only pull again after its heartbeats go missing (~30 s): subscribe anew.
              resubscribe = true;
              await subscribed.close().catch(() => undefined);
              return;
            }
          }
        })().catch((e: unknown) => report(e, 'NATS consumer status stream failed'));
        return subscribed;
      };
      let resubscribe = false;
      messages = await subscribe();
      const pull = async (iterator: ConsumerMessages) => {
        for await (const msg of iterator) {
          // Bounded: wait for a slot before taking the next message from the client's buffer.
          const bytes = Number(msg.headers?.get(MSG_SIZE)) || msg.data.length;
          while (inFlight.size >= maxInFlight || (inFlight.size > 0 && inFlightBytes + bytes > maxInFlightBytes)) {
            await Promise.race(inFlight);
          }
          stats.inFlight = inFlight.size + 1;
          inFlightBytes += bytes;
          const p: Promise<void> = handle(msg, handler)
            .catch((e: unknown) => report(e, 'handling a NATS message failed'))
            .finally(() => {
              inFlight.delete(p);
              inFlightBytes -= bytes;
              stats.inFlight = inFlight.size;
            });
          inFlight.add(p);
        }
      };
      // The consumer ends only when closed; if it stops otherwise (an error from the client), it is
      // restarted after a backoff, so the server never silently stops storing what NATS holds.
      loop = (async () => {
        for (let attempt = 1; ; attempt++) {
          try {
            await pull(messages as ConsumerMessages);
            if (closing) return;
            if (!resubscribe) report(new Error('the message iterator ended'), 'NATS consumer stopped; restarting it');
          } catch (e) {
            if (closing) return;
            report(e, 'NATS consumer failed; restarting it');
          }
          if (!resubscribe) await sleep(backoffDelay(attempt, { initialMs: 500, maxMs: 30_000 }), stopping.signal);
          resubscribe = false;
          if (closing) return;
          try {
            messages = await subscribe();
            attempt = 0;
          } catch (e) {
            report(e, 'could not restart the NATS consumer; trying again');
          }
        }
      })();
    },
    healthy: () => connected && !nc.isClosed(),
    stats: () => ({ ...stats }),
    backlog: () => pending,
    lag: () => ledger.lag(),
    async close() {
      if (closing) return;
      closing = true;
      clearInterval(backlog);
      clearInterval(waitingRefresh);
      ledger.close();
      stopping.abort();
      // Stop pulling; messages fetched but not handled are simply redelivered to the next consumer.
      await messages?.close().catch(() => undefined);
      await loop;
      await Promise.allSettled([...inFlight]);
      await nc.drain().catch(async (e: unknown) => {
        report(e, 'NATS drain failed; closing');
        await nc.close().catch(() => undefined);
      });
    },
  };
}
