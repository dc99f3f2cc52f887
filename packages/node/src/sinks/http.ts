/**
 * Delivers batches as `POST <url>` with the batch JSON of docs/wire-format.md: to the Tally collector
 * (`/v1/events`) or any endpoint that speaks it. One attempt per call; the tracker retries.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { urlToHttpOptions } from 'node:url';
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import {
  type BatchResponse,
  encodeBatch,
  ErrorCodes,
  isoTime,
  parseRetryAfter,
  type SendResult,
  type Sink,
  TallyConfigError,
  TallyError,
  type TallyEvent,
} from '@tally/core';

const gzip = promisify(gzipCb);

export interface HttpSinkOptions {
  /** Full URL of the batch endpoint, e.g. `http://127.0.0.1:8787/v1/events`. */
  url: string;
  /** Sent as `Authorization: Bearer <writeKey>`. */
  writeKey?: string;
  headers?: Record<string, string>;
  /** Gzip bodies of at least this many bytes; `false` never. Default 1024. Compression runs on libuv's thread pool. */
  gzipMinBytes?: number | false;
  /** Per-request timeout in ms (connect to last byte). Default 10 000. */
  timeoutMs?: number;
  /** Sockets kept open per host. Default 8. */
  maxSockets?: number;
}

export function createHttpSink(options: HttpSinkOptions): Sink {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new TallyConfigError(`http sink: "${options.url}" is not a URL; use e.g. http://127.0.0.1:8787/v1/events`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TallyConfigError(`http sink: protocol must be http: or https:, got ${url.protocol}`);
  }
  const client = url.protocol === 'https:' ? https : http;
  const agent = new client.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 8 });
  const timeoutMs = options.timeoutMs ?? 10_000;
  const gzipMin = options.gzipMinBytes ?? 1024;
  // Resolved once: handing request() a URL makes it convert the URL into these options on every batch.
  const target: http.RequestOptions = { ...urlToHttpOptions(url), method: 'POST', agent };
  const baseHeaders: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
  if (options.writeKey) baseHeaders.authorization = `Bearer ${options.writeKey}`;

  async function send(events: readonly TallyEvent[], { signal }: { signal: AbortSignal }): Promise<SendResult> {
    let body: Buffer = Buffer.from(encodeBatch(events, isoTime(Date.now())));
    const headers = { ...baseHeaders };
    if (gzipMin !== false && body.length >= gzipMin) {
      body = await gzip(body);
      headers['content-encoding'] = 'gzip';
    }
    headers['content-length'] = String(body.length);
    let res: { status: number; headers: http.IncomingHttpHeaders; text: string };
    try {
      res = await post(body, headers, signal);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const what = err.name === 'AbortError' || err.code === 'ABORT_ERR' ? 'aborted' : (err.code ?? err.message);
      return {
        ok: false,
        disposition: 'retry',
        error: new TallyError(ErrorCodes.SINK_RETRYABLE, `POST ${url.href} failed: ${what}`, {}, { cause: e }),
      };
    }
    return classify(res.status, res.headers, res.text, events.length);
  }

  function post(
    body: Buffer,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
    return new Promise((resolve, reject) => {
      const req = client.request({ ...target, headers, signal }, (res) => {
        // Answers are a few bytes, in one chunk: a string decoder and no Buffer.concat.
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
        res.on('error', reject);
      });
      // A late answer is a retry with the same ids: the receiver dedupes, so nothing is stored twice.
      req.setTimeout(timeoutMs, () =>
        req.destroy(Object.assign(new Error(`timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' })),
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  return {
    name: 'http',
    send,
    async close() {
      agent.destroy();
    },
  };
}

function classify(status: number, headers: http.IncomingHttpHeaders, text: string, count: number): SendResult {
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
    const retryAfterMs = parseRetryAfter(headerValue(headers['retry-after']));
    return {
      ok: false,
      disposition: 'retry',
      retryAfterMs,
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

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
