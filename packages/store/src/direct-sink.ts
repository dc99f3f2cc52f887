/**
 * The SDK's `direct` sink: events go from `track()` through the exactly-once writer into the store of
 * this process, with no collector in between (the "worker writes to the DB" design of the seeds).
 */
import { ErrorCodes, isoTime, TallyError } from '@tally/core';
import type { SendResult, Sink } from '@tally/node';
import type { Writer } from './writer.js';

export function createDirectSink(writer: Writer): Sink {
  return {
    name: 'direct',
    async send(events): Promise<SendResult> {
      const receivedAt = isoTime(Date.now());
      const result = await writer.writeEvents(events.map((e) => ({ ...e, receivedAt })));
      if (!result.ok) {
        // Overloaded or closing: nothing was taken, so the tracker retries (or spools at its own shutdown).
        return {
          ok: false,
          disposition: 'retry',
          error: new TallyError(ErrorCodes.SINK_RETRYABLE, `writer refused the batch: ${result.code}`),
        };
      }
      // Dead-lettered rows are the writer's now (kept in its spool for `tally replay`); the SDK counts them.
      return result.rejected.length > 0 ? { ok: true, rejected: result.rejected } : { ok: true };
    },
    async close() {},
  };
}
