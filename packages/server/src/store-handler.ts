/**
 * The consumer end of every transport: a batch is stored through the exactly-once writer, and the
 * handler resolves only once it is committed. Refusals that are about the moment (overloaded,
 * shutting down) throw, so the transport delivers the batch again later.
 */
import { type BatchHandler, ErrorCodes, TallyError } from '@tally/core';
import { writeEnvelopes, type Writer } from '@tally/store';
import type { Metrics } from './metrics.js';

export function createStoreHandler(writer: Writer, metrics?: Metrics): BatchHandler {
  return async (events) => {
    const started = performance.now();
    const r = await writeEnvelopes(writer, events);
    if (!r.ok) {
      throw new TallyError(
        r.code === ErrorCodes.OVERLOADED ? ErrorCodes.OVERLOADED : ErrorCodes.UNAVAILABLE,
        `writer refused the batch: ${r.code}`,
      );
    }
    metrics?.batchWritten(events, r, (performance.now() - started) / 1000);
    return r;
  };
}
