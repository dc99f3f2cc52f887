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
 */
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
  applyBatchContext,
  backoffDelay,
  type BatchHandler,
  type EventBatch,
  ErrorCodes,
  type PublishResult,
  sleep,
  TallyConfigError,
  TallyError,
  type TallyEvent,
  type Transport,
  type TransportStats,
} from '@tally/core';
import { publishBatch } from './publisher.js';
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
  /** Messages handled at once (each is a batch of events). Default 16. */
  maxInFlight?: number;
  /** Publish ack timeout. Default 10 s. */
  publishTimeoutMs?: number;
  /**
   * Back-pressure: when the durable consumer has more than this many messages (batches) not yet
   * stored, `publish` refuses with TALLY_OVERLOADED (the collector answers 503 + Retry-After), so
   * producers slow down instead of the stream's backlog growing and freshness going with it.
   * Default 1000; 0 turns it off.
   */
  maxPendingMessages?: number;
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
}

const decoder = new TextDecoder();

export async function createNatsTransport(options: NatsTransportOptions): Promise<NatsTransport> {
  const prefix = options.prefix ?? 'tally';
  const streamName = options.stream ?? 'ANALYTICS';
  const durable = options.durable ?? 'tally-writer';
  const ackWaitMs = options.ackWaitMs ?? 30_000;
  const maxDeliveries = options.maxDeliveries ?? 10;
  const maxInFlight = options.maxInFlight ?? 16;
  const publishTimeoutMs = options.publishTimeoutMs ?? 10_000;
  const maxPending = options.maxPendingMessages ?? 1000;
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
  // The consumer's backlog, refreshed once a second (a cheap consumer-info request), not per publish.
  let pending = 0;
  const backlog = setInterval(() => {
    jsm.consumers.info(streamName, durable).then(
      (i) => (pending = i.num_pending + i.num_ack_pending),
      () => undefined, // not created yet, or NATS away: health says so elsewhere
    );
  }, 1000);
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
    let events: TallyEvent[];
    try {
      const body = JSON.parse(decoder.decode(msg.data)) as EventBatch;
      if (!Array.isArray(body?.batch)) throw new Error('no "batch" array');
      applyBatchContext(body.batch, body.context);
      events = body.batch as TallyEvent[];
    } catch (e) {
      return deadLetter(msg, `unreadable message: ${(e as Error).message}`);
    }
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
    try {
      await handler(events);
      stored = true;
    } catch (e) {
      failure = e;
    } finally {
      clearInterval(keepAlive);
    }
    if (!stored && deliveries >= maxDeliveries) {
      return deadLetter(msg, `failed ${deliveries} times: ${(failure as Error)?.message ?? String(failure)}`);
    }
    try {
      if (stored) msg.ack();
      else msg.nak(backoffDelay(deliveries, { initialMs: 500, maxMs: 30_000 }));
    } catch (e) {
      // Stored but not acknowledged (or not nak'ed): JetStream delivers it again after the ack wait and
      // the writer's idempotent insert turns that into nothing.
      report(e, `could not ${stored ? 'ack' : 'nak'} a NATS message; it will be redelivered`);
      return;
    }
    if (stored) stats.handled++;
  }

  async function deadLetter(msg: JsMsg, reason: string): Promise<void> {
    try {
      await options.onDeadLetter?.({
        subject: msg.subject,
        data: msg.data,
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
      return;
    }
    stats.deadLettered++;
    try {
      msg.term(reason);
    } catch (e) {
      // Kept as a dead letter but delivered again later: the dead-letter file may hold it twice.
      report(e, 'could not terminate a dead-lettered NATS message');
    }
  }

  return {
    kind: 'nats',
    connection: nc,
    jsm,
    async publish(events: TallyEvent[]): Promise<PublishResult> {
      if (closing) throw new TallyError(ErrorCodes.SHUTDOWN, 'transport is closing');
      if (maxPending > 0 && pending > maxPending) {
        throw new TallyError(
          ErrorCodes.OVERLOADED,
          `the stream's consumer is ${pending} batches behind (limit ${maxPending}): retry later`,
        );
      }
      try {
        await publishBatch(js, prefix, events, nc.info?.max_payload ?? 1024 * 1024, publishTimeoutMs);
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
          while (inFlight.size >= maxInFlight) await Promise.race(inFlight);
          stats.inFlight = inFlight.size + 1;
          const p: Promise<void> = handle(msg, handler)
            .catch((e: unknown) => report(e, 'handling a NATS message failed'))
            .finally(() => {
              inFlight.delete(p);
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
    async close() {
      if (closing) return;
      closing = true;
      clearInterval(backlog);
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
