/**
 * One batch, delivered to its end: the loop both SDKs run over a sink, and the store writer over its
 * database. A receiver makes one attempt and says what happened (sink.ts); here transient failures are
 * retried with backoff, a batch too large (or, for the writer, holding a row the database refuses) is
 * split in halves, items the receiver refused are reported one by one, and what cannot be delivered now
 * is handed back to the caller, which keeps it: the Node SDK in its disk spool, the edge SDK in memory for
 * the next flush, the writer in its pending spool. Every item of the batch ends in exactly one of the
 * outcomes below.
 */
import type { PlatformAbortSignal } from './abort.js';
import { backoffDelay, parseRetryAfter, sleep } from './backoff.js';
import type { BatchResponse, TallyEvent } from './envelope.js';
import { type ErrorCode, ErrorCodes, TallyError } from './errors.js';
import type { SendResult } from './sink.js';

export interface RetryPolicy {
  initialMs: number;
  maxMs: number;
  maxAttempts: number;
}

export interface DeliveryOutcomes<T = TallyEvent> {
  /** `count` items of the batch were accepted. */
  delivered(count: number): void;
  /** The receiver refused this one for good (validation, or the whole batch); counted under the error's code. */
  refused(item: T | undefined, error: TallyError): Promise<void> | void;
  /** An attempt failed and will be retried after `delayMs`. */
  retrying(error: TallyError, attempt: number, delayMs: number, items: number): void;
  /** Not deliverable now (retries exhausted, bad credentials, out of time): the caller keeps them. */
  keep(items: T[], error: TallyError): Promise<void> | void;
}

/** What deliverBatch sends through: a Sink, or any receiver making one attempt per call (the writer's). */
export interface BatchReceiver<T> {
  readonly name: string;
  send(items: T[], options: { signal?: PlatformAbortSignal }): Promise<SendResult>;
}

/**
 * Sends `items` through `sink` until each is delivered, refused or kept. Never throws. A split runs its
 * halves one after the other, so a batch never holds more than its one slot of the caller's concurrency.
 */
export async function deliverBatch<T = TallyEvent>(
  sink: BatchReceiver<T>,
  events: T[],
  retry: RetryPolicy,
  signal: PlatformAbortSignal,
  outcomes: DeliveryOutcomes<T>,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    let result: SendResult;
    try {
      result = await sink.send(events, { signal });
    } catch (e) {
      // A sink must return results; one that throws is treated as a transient failure, not a crash.
      result = {
        ok: false,
        disposition: 'retry',
        error: new TallyError(ErrorCodes.SINK_RETRYABLE, `sink ${sink.name} threw: ${(e as Error)?.message}`),
      };
    }
    if (result.ok) {
      const rejected = result.rejected ?? [];
      for (const r of rejected) {
        const e = events[r.index];
        const code = (Object.values(ErrorCodes) as string[]).includes(r.code)
          ? (r.code as ErrorCode)
          : ErrorCodes.SINK_REJECTED;
        const event = (e as { name?: unknown } | undefined)?.name;
        await outcomes.refused(
          e,
          new TallyError(code, r.message, { event: typeof event === 'string' ? event : undefined, remoteCode: r.code }),
        );
      }
      outcomes.delivered(events.length - rejected.length);
      return;
    }
    const { disposition, error } = result;
    if (disposition === 'split') {
      if (events.length > 1) {
        const mid = events.length >> 1;
        await deliverBatch(sink, events.slice(0, mid), retry, signal, outcomes);
        await deliverBatch(sink, events.slice(mid), retry, signal, outcomes);
      } else {
        await outcomes.refused(events[0], error);
      }
      return;
    }
    if (disposition === 'drop') {
      for (const e of events) await outcomes.refused(e, error);
      return;
    }
    if (disposition === 'spool') return outcomes.keep(events, error);
    if (signal.aborted) {
      return outcomes.keep(events, new TallyError(ErrorCodes.TIMEOUT, 'deadline reached during delivery'));
    }
    if (attempt + 1 >= retry.maxAttempts) {
      return outcomes.keep(
        events,
        new TallyError(ErrorCodes.RETRIES_EXHAUSTED, `gave up after ${attempt + 1} attempts: ${error.message}`),
      );
    }
    const delayMs = backoffDelay(attempt, retry, result.retryAfterMs);
    outcomes.retrying(error, attempt, delayMs, events.length);
    if (!(await sleep(delayMs, signal))) {
      return outcomes.keep(events, new TallyError(ErrorCodes.TIMEOUT, 'deadline reached during delivery'));
    }
  }
}

/**
 * What an HTTP receiver's answer to a batch means for the sender; shared by the Node SDK's http sink and
 * the edge SDK's fetch sink, so both treat every status alike.
 */
export function classifyResponse(
  status: number,
  retryAfter: string | null | undefined,
  text: string,
  count: number,
): SendResult {
  if (status >= 200 && status < 300) {
    const parsed = parseJson(text) as Partial<BatchResponse> | undefined;
    return Array.isArray(parsed?.rejected) && parsed.rejected.length > 0
      ? { ok: true, rejected: parsed.rejected }
      : { ok: true };
  }
  const remote = (parseJson(text) as { error?: { code?: string; message?: string } } | undefined)?.error;
  const detail = remote?.code ? `${remote.code}: ${remote.message ?? ''}` : text.slice(0, 200);
  const details = { status, remoteCode: remote?.code, events: count };
  if (status === 408 || status === 429 || status >= 500) {
    return {
      ok: false,
      disposition: 'retry',
      retryAfterMs: parseRetryAfter(retryAfter ?? undefined),
      error: new TallyError(ErrorCodes.SINK_RETRYABLE, `receiver answered ${status} ${detail}`, details),
    };
  }
  if (status === 413) {
    return {
      ok: false,
      disposition: 'split',
      error: new TallyError(ErrorCodes.SINK_REJECTED, `receiver answered 413: batch too large`, details),
    };
  }
  if (status === 401 || status === 403) {
    // Wrong or revoked credentials: the events are fine, so keep them for after the key is fixed.
    return {
      ok: false,
      disposition: 'spool',
      error: new TallyError(
        ErrorCodes.SINK_REJECTED,
        `receiver answered ${status} (check the write key) ${detail}`,
        details,
      ),
    };
  }
  return {
    ok: false,
    disposition: 'drop',
    error: new TallyError(ErrorCodes.SINK_REJECTED, `receiver answered ${status} ${detail}`, details),
  };
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
