/**
 * A sink delivers finished batches somewhere: the collector over HTTP, stdout or memory (@tally/node), the
 * database writer (`direct`, @tally/store), NATS JetStream (@tally/nats). Sinks do one attempt and say what
 * happened; the SDK's tracker owns retries, backoff, splitting and spooling, so every sink gets them the
 * same way. The interface lives in core so the packages implementing it need not depend on the SDK.
 */
import type { PlatformAbortSignal } from './abort.js';
import type { BatchRejection, TallyEvent } from './envelope.js';
import { TallyConfigError, type TallyError } from './errors.js';

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

/** Where an HTTP sink posts batches: the options the Node SDK's http sink and the edge SDK's fetch sink share. */
export interface BatchEndpointOptions {
  /** Full URL of the batch endpoint, e.g. `http://127.0.0.1:8787/v1/events`. */
  url: string;
  /** Sent as `Authorization: Bearer <writeKey>`. */
  writeKey?: string;
  headers?: Record<string, string>;
}

/** What core needs of the runtime's URL class; core compiles without the DOM's or Node's globals. */
const WebURL = (globalThis as unknown as { URL: new (url: string) => { protocol: string; href: string } }).URL;

/** The endpoint's URL, checked and normalized; `sink` names the sink in the error. */
export function batchEndpoint(url: string, sink: string): string {
  let parsed: { protocol: string; href: string };
  try {
    parsed = new WebURL(url);
  } catch {
    throw new TallyConfigError(`${sink} sink: "${url}" is not a URL; use e.g. http://127.0.0.1:8787/v1/events`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TallyConfigError(`${sink} sink: protocol must be http: or https:, got ${parsed.protocol}`);
  }
  return parsed.href;
}

/** The headers of every batch request: JSON, the write key, the caller's own. */
export function batchHeaders(options: BatchEndpointOptions): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
  if (options.writeKey) headers.authorization = `Bearer ${options.writeKey}`;
  return headers;
}
