/**
 * A sink delivers finished batches somewhere: the collector over HTTP, stdout or memory (@tally/node), the
 * database writer (`direct`, @tally/store), NATS JetStream (@tally/nats). Sinks do one attempt and say what
 * happened; the SDK's tracker owns retries, backoff, splitting and spooling, so every sink gets them the
 * same way. The interface lives in core so the packages implementing it need not depend on the SDK.
 */
import type { PlatformAbortSignal } from './abort.js';
import type { BatchRejection, TallyEvent } from './envelope.js';
import type { TallyError } from './errors.js';

export interface SendOptions {
  /** Aborted when the tracker gives up waiting (shutdown deadline): stop and report `retry`. */
  signal: PlatformAbortSignal;
}

/** What became of one attempt. Returned, never thrown: delivery is a hot path with expected failures. */
export type SendResult =
  | {
      ok: true;
      /** Events the receiver refused for good (validation); the rest were accepted. */
      rejected?: BatchRejection[];
    }
  | {
      ok: false;
      /**
       * - `retry`: transient (network, timeout, 429, 5xx); try again after a backoff.
       * - `split`: the batch is too large for the receiver; retry in halves.
       * - `spool`: the receiver cannot take it now and waiting will not help (bad credentials); keep it on disk.
       * - `drop`: the receiver refused every event for good (validation); counted with the error's code.
       */
      disposition: 'retry' | 'split' | 'spool' | 'drop';
      error: TallyError;
      /** The receiver's Retry-After, in ms. */
      retryAfterMs?: number;
    };

export interface Sink {
  readonly name: string;
  /**
   * Batches this sink is best given at once, when the tracker's `maxInFlight` is not set. A sink into a
   * local store sets it high: each batch waits for its commit, and a writer that sees only a few batches
   * at a time stores in small statements with pauses between them.
   */
  readonly maxInFlight?: number;
  send(events: readonly TallyEvent[], options: SendOptions): Promise<SendResult>;
  /** Releases connections or handles. Idempotent. */
  close(): Promise<void>;
}
