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
  batchEndpoint,
  type BatchEndpointOptions,
  batchHeaders,
  classifyResponse,
  encodeBatch,
  ErrorCodes,
  isoTime,
  type SendResult,
  type Sink,
  TallyError,
  type TallyEvent,
} from '@tally/core';

const gzip = promisify(gzipCb);

export interface HttpSinkOptions extends BatchEndpointOptions {
  /** Gzip bodies of at least this many bytes; `false` never. Default 1024. Compression runs on libuv's thread pool. */
  gzipMinBytes?: number | false;
  /** Per-request timeout in ms (connect to last byte). Default 10 000. */
  timeoutMs?: number;
  /** Sockets kept open per host. Default 8. */
  maxSockets?: number;
}

export function createHttpSink(options: HttpSinkOptions): Sink {
  const url = new URL(batchEndpoint(options.url, 'http'));
  const client = url.protocol === 'https:' ? https : http;
  const agent = new client.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 8 });
  const timeoutMs = options.timeoutMs ?? 10_000;
  const gzipMin = options.gzipMinBytes ?? 1024;
  // Resolved once: handing request() a URL makes it convert the URL into these options on every batch.
  const target: http.RequestOptions = { ...urlToHttpOptions(url), method: 'POST', agent };
  const baseHeaders = batchHeaders(options);

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
    return classifyResponse(res.status, headerValue(res.headers['retry-after']), res.text, events.length);
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

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
