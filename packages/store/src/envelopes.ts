/**
 * Envelopes to rows: `$request` envelopes carry request logs, everything else is an event. The SDK's
 * direct sink and the server's transport consumer both store batches through here, so a batch means
 * the same thing whichever way it came.
 */
import { type BatchRejection, isoTime, REQUEST_LOG_EVENT, type RequestLogRecord, type TallyEvent } from '@tally/core';
import type { EventRow, RequestLogRow } from './rows.js';
import type { WriteResult, Writer } from './writer.js';

export type EnvelopeWriteResult =
  | { ok: true; stored: number; duplicates: number; duplicateIndexes: number[]; rejected: BatchRejection[] }
  /** Nothing was taken (TALLY_OVERLOADED or TALLY_SHUTDOWN): the whole batch may be sent again. */
  | { ok: false; code: string };

/** Writes a batch through the writer; `receivedAt` fills in envelopes that have none. */
export async function writeEnvelopes(
  writer: Writer,
  batch: readonly TallyEvent[],
  receivedAt: string = isoTime(Date.now()),
): Promise<EnvelopeWriteResult> {
  // Indexes map the writer's per-kind rejections back to positions in the batch.
  const events: EventRow[] = [];
  const eventIndex: number[] = [];
  const logs: RequestLogRow[] = [];
  const logIndex: number[] = [];
  for (let i = 0; i < batch.length; i++) {
    const e = batch[i] as TallyEvent;
    const at = e.receivedAt ?? receivedAt;
    if (e.name === REQUEST_LOG_EVENT) {
      logs.push({ ...(e.properties as unknown as RequestLogRecord), receivedAt: at });
      logIndex.push(i);
    } else {
      // The collector has stamped receivedAt already: no copy per event then (GC is a fifth of its CPU).
      events.push(e.receivedAt === undefined ? { ...e, receivedAt: at } : (e as EventRow));
      eventIndex.push(i);
    }
  }
  const [a, b] = await Promise.all([writer.writeEvents(events), writer.writeRequestLogs(logs)]);
  if (!a.ok || !b.ok) return { ok: false, code: (a.code ?? b.code) as string };
  return {
    ok: true,
    stored: a.stored + b.stored,
    duplicates: a.duplicates + b.duplicates,
    duplicateIndexes: [
      ...a.duplicateIndexes.map((i) => eventIndex[i] as number),
      ...b.duplicateIndexes.map((i) => logIndex[i] as number),
    ].sort((x, y) => x - y),
    rejected: [...remap(a, eventIndex), ...remap(b, logIndex)],
  };
}

function remap(result: WriteResult, index: number[]): BatchRejection[] {
  return result.rejected.map((r) => ({ ...r, index: index[r.index] as number }));
}
