/**
 * Delivers batches as `POST <url>` with the batch JSON of docs/wire-format.md, through `fetch`: the one
 * network API every runtime the edge SDK targets has. One attempt per call; the tracker retries, and the
 * HTTP answer means what it means to the Node SDK's sink (`classifyResponse` in core).
 */
import {
  batchEndpoint,
  type BatchEndpointOptions,
  batchHeaders,
  classifyResponse,
  encodeBatch,
  ErrorCodes,
  isoTime,
  type SendOptions,
  type SendResult,
  type Sink,
  TallyError,
  type TallyEvent,
} from '@tally/core';

/** What the sink needs of `fetch`: a Workers service binding's `fetch` fits too. */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export interface FetchSinkOptions extends BatchEndpointOptions {
  /** Per-request timeout in ms. Default 5 000: a late answer is retried with the same ids, which dedupe. */
  timeoutMs?: number;
  /** Default: the global `fetch`. */
  fetch?: FetchLike;
}

export function createFetchSink(options: FetchSinkOptions): Sink {
  const href = batchEndpoint(options.url, 'fetch');
  const timeoutMs = options.timeoutMs ?? 5000;
  // Called through a closure, never as a detached reference: Workers throw "Illegal invocation" when the
  // global fetch is called without its `this`.
  const doFetch: FetchLike = options.fetch ?? ((input, init) => fetch(input, init));
  const headers = batchHeaders(options);

  async function send(events: readonly TallyEvent[], { signal }: SendOptions): Promise<SendResult> {
    const body = encodeBatch(events, isoTime(Date.now()));
    // One controller for both ends of the attempt: the tracker's deadline and this request's timeout. The
    // timer is cleared before returning, so nothing outlives the flush that made the request.
    const controller = new AbortController();
    const abort = () => controller.abort();
    signal.addEventListener('abort', abort);
    if (signal.aborted) controller.abort();
    const timer = setTimeout(abort, timeoutMs);
    try {
      const res = await doFetch(href, { method: 'POST', headers, body, signal: controller.signal });
      const text = await res.text();
      return classifyResponse(res.status, res.headers.get('retry-after'), text, events.length);
    } catch (e) {
      const what = signal.aborted
        ? 'aborted'
        : controller.signal.aborted
          ? `timed out after ${timeoutMs} ms`
          : ((e as Error)?.message ?? String(e));
      return {
        ok: false,
        disposition: 'retry',
        error: new TallyError(ErrorCodes.SINK_RETRYABLE, `POST ${href} failed: ${what}`, {}, { cause: e }),
      };
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', abort);
    }
  }

  return { name: 'fetch', send, close: async () => undefined };
}
