/**
 * The in-process transport: `publish` hands the batch straight to the consumer and resolves once the
 * writer has committed it. Nothing sits in between, so there is nothing to lose in a crash: a batch is
 * either committed and answered, or not answered and resent by its producer.
 */
import {
  type BatchHandler,
  ErrorCodes,
  type PublishResult,
  TallyError,
  type TallyEvent,
  type Transport,
  type TransportStats,
} from '@tally/core';

export function createMemoryTransport(): Transport {
  let handler: BatchHandler | undefined;
  let closing = false;
  const inFlight = new Set<Promise<unknown>>();
  const stats: TransportStats = { published: 0, handled: 0, redelivered: 0, deadLettered: 0, inFlight: 0 };

  return {
    kind: 'memory',
    async publish(events: TallyEvent[]): Promise<PublishResult> {
      if (closing) throw new TallyError(ErrorCodes.SHUTDOWN, 'transport is closing');
      if (!handler) throw new TallyError(ErrorCodes.UNAVAILABLE, 'no consumer yet');
      stats.published++;
      stats.inFlight++;
      const done = handler(events);
      inFlight.add(done);
      try {
        const r = await done;
        stats.handled++;
        return { durability: 'stored', stored: r.stored, duplicates: r.duplicates, rejected: r.rejected };
      } catch (e) {
        // Not stored: the producer gets the error and sends again (that is the redelivery here).
        throw e instanceof TallyError
          ? e
          : new TallyError(ErrorCodes.UNAVAILABLE, `batch not stored: ${(e as Error).message}`, {}, { cause: e });
      } finally {
        stats.inFlight--;
        inFlight.delete(done);
      }
    },
    async consume(h) {
      handler = h;
    },
    healthy: () => !closing && handler !== undefined,
    stats: () => ({ ...stats }),
    async close() {
      closing = true;
      await Promise.allSettled([...inFlight]);
    },
  };
}
