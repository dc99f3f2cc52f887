/**
 * The SDK's `direct` sink: events and request logs go from the tracker through the exactly-once writer
 * into the store of this process, with no collector in between (the "worker writes to the DB" design).
 */
import {
  type BatchRejection,
  ErrorCodes,
  isoTime,
  REQUEST_LOG_EVENT,
  type RequestLogRecord,
  TallyError,
} from '@tally/core';
import type { SendResult, Sink } from '@tally/node';
import type { EventRow, RequestLogRow } from './rows.js';
import type { WriteResult, Writer } from './writer.js';

export function createDirectSink(writer: Writer): Sink {
  return {
    name: 'direct',
    async send(batch): Promise<SendResult> {
      const receivedAt = isoTime(Date.now());
      // `$request` envelopes carry request logs; everything else is an event. Indexes map results back.
      const events: EventRow[] = [];
      const eventIndex: number[] = [];
      const logs: RequestLogRow[] = [];
      const logIndex: number[] = [];
      batch.forEach((e, i) => {
        if (e.name === REQUEST_LOG_EVENT) {
          logs.push({ ...(e.properties as unknown as RequestLogRecord), receivedAt });
          logIndex.push(i);
        } else {
          events.push({ ...e, receivedAt });
          eventIndex.push(i);
        }
      });
      const [a, b] = await Promise.all([writer.writeEvents(events), writer.writeRequestLogs(logs)]);
      if (!a.ok || !b.ok) {
        // Overloaded or closing: the tracker retries the whole batch; ids make the part already taken harmless.
        return {
          ok: false,
          disposition: 'retry',
          error: new TallyError(ErrorCodes.SINK_RETRYABLE, `writer refused the batch: ${a.code ?? b.code}`),
        };
      }
      // Dead-lettered rows are the writer's now (kept in its spool for `tally replay`); the SDK counts them.
      const rejected: BatchRejection[] = [...remap(a, eventIndex), ...remap(b, logIndex)];
      return rejected.length > 0 ? { ok: true, rejected } : { ok: true };
    },
    async close() {},
  };
}

function remap(result: WriteResult, index: number[]): BatchRejection[] {
  return result.rejected.map((r) => ({ ...r, index: index[r.index] as number }));
}
