/**
 * The Transport carries accepted batches from where they arrive (the collector, an SDK) to the writer.
 * Two implementations share this contract and one conformance suite: in-process (the batch is handed
 * straight to the writer) and NATS JetStream (the batch is committed to a stream, a durable consumer
 * feeds the writer). Delivery is at least once; the writer's idempotent insert makes it exactly once.
 */
import type { BatchRejection, TallyEvent } from './envelope.js';

/** What the consumer did with a batch. Throwing instead means "not done": the batch is delivered again. */
export interface HandleResult {
  stored: number;
  /** Events whose id was already stored. */
  duplicates: number;
  /** Events refused for good (dead-lettered by the writer), by index in the batch. */
  rejected: BatchRejection[];
}

export type BatchHandler = (events: TallyEvent[]) => Promise<HandleResult>;

/** The answer to `publish`: given only once the batch is durable. */
export interface PublishResult {
  /**
   * `stored`: the handler committed the batch before publish resolved (in-process), and the counts are
   * known. `queued`: the batch is committed to a durable stream and will be stored by a consumer.
   */
  durability: 'stored' | 'queued';
  stored?: number;
  duplicates?: number;
  rejected: BatchRejection[];
}

export interface TransportStats {
  published: number;
  /** Batches the handler completed (acknowledged). */
  handled: number;
  /** Deliveries after a handler failure, a crash or a timeout. */
  redelivered: number;
  /** Batches given up on after too many deliveries, or unreadable: sent to the dead-letter path. */
  deadLettered: number;
  /** Batches handed to the handler and not yet acknowledged. */
  inFlight: number;
}

/**
 * The bytes a batch was accepted from, when its events are exactly the body's items (after its batch
 * context) stamped with one tenant and one arrival time: every item accepted, and none changed (no
 * timestamp moved, no property stripped or redacted, no context key added). A transport that queues
 * batches can carry these bytes instead of serializing the events again.
 */
export interface BatchSource {
  /** The request body, a JSON batch (`{"batch": [...], "context"?, "sentAt"}`). */
  body: Uint8Array;
  tenantId: string;
  receivedAt: string;
}

export interface Transport {
  readonly kind: 'memory' | 'nats';
  /**
   * Resolves once the batch is durable (see PublishResult); rejects with a TallyError when it is not.
   * `source`, when given, holds the same events as bytes (see BatchSource).
   */
  publish(events: TallyEvent[], source?: BatchSource): Promise<PublishResult>;
  /** Starts delivering batches to `handler`; a batch is acknowledged only after the handler resolves. */
  consume(handler: BatchHandler): Promise<void>;
  /** Is the transport able to take batches now (connected, stream present)? */
  healthy(): boolean;
  stats(): TransportStats;
  /** Stops intake, lets in-flight handlers finish and acknowledges them. Idempotent. */
  close(): Promise<void>;
}
