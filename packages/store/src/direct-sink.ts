/**
 * The SDK's `direct` sink: events and request logs go from the tracker through the exactly-once writer
 * into the store of this process, with no collector in between (the "worker writes to the DB" design).
 */
import { ErrorCodes, type SendResult, type Sink, TallyError } from '@tally/core';
import { writeEnvelopes } from './envelopes.js';
import type { Writer } from './writer.js';

/**
 * Tracker batches in flight by default: enough (32 × 500 rows) that the writer always has its next
 * 1000-row statement queued. With the tracker's usual 4, request logs into PGlite on a worker thread were
 * stored at 7–8k/s during the Fastify bench, with 64 at 11–12.5k/s (bench/fastify.bench.ts).
 */
const DIRECT_IN_FLIGHT = 32;

export function createDirectSink(writer: Writer): Sink {
  return {
    name: 'direct',
    maxInFlight: DIRECT_IN_FLIGHT,
    async send(batch): Promise<SendResult> {
      const r = await writeEnvelopes(writer, batch);
      if (!r.ok) {
        // Overloaded or closing: the tracker retries the whole batch; ids make the part already taken harmless.
        return {
          ok: false,
          disposition: 'retry',
          error: new TallyError(ErrorCodes.SINK_RETRYABLE, `writer refused the batch: ${r.code}`),
        };
      }
      // Dead-lettered rows are the writer's now (kept in its spool for `tally replay`); the SDK counts them.
      return r.rejected.length > 0 ? { ok: true, rejected: r.rejected } : { ok: true };
    },
    async close() {},
  };
}
