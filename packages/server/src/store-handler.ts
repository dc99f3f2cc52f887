/**
 * The consumer end of every transport: a batch is stored through the exactly-once writer, and the
 * handler resolves only once it is committed. Refusals that are about the moment (overloaded,
 * shutting down) throw, so the transport delivers the batch again later. What a committed write stored
 * is handed to `onStored` (the live streams) before the handler resolves.
 */
import { type BatchHandler, ErrorCodes, TallyError, type TallyEvent } from '@tally/core';
import { type EnvelopeWriteResult, writeEnvelopes, type Writer } from '@tally/store';
import type { Metrics } from './metrics.js';

export type OnStored = (batch: readonly TallyEvent[], result: EnvelopeWriteResult & { ok: true }) => void;

export function createStoreHandler(writer: Writer, metrics?: Metrics, onStored?: OnStored): BatchHandler {
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
    onStored?.(events, r);
    return r;
  };
}
