/**
 * Captures what a response sends, without buffering it and without changing a byte of it: the first
 * `limit / 2` bytes, the last `limit / 2` bytes, and the total. It wraps the raw `write` and `end`, so it
 * sees bodies sent by `reply.send()` (string, Buffer, stream) and bytes written straight to `reply.raw`
 * (SSE), which bypass Fastify's `onSend` hook.
 */
import type { ServerResponse } from 'node:http';
import type { BodyParts } from '@tally/core';

export interface CapturedBody {
  /** Head and tail joined by a marker when bytes were left out; UTF-8 decoded (a cut character becomes U+FFFD). */
  text: string;
  /** Total bytes the application sent. */
  bytes: number;
  truncated: boolean;
}

type Chunk = string | Uint8Array;

/** Where a capturing response keeps its capture (one symbol slot instead of closures per response). */
const CAPTURE = Symbol('tally.bodyCapture');

type CapturingResponse = ServerResponse & { [CAPTURE]?: BodyCapture };

const SURROGATE = /[\uD800-\uDFFF]/;

export class BodyCapture {
  private readonly half: number;
  /**
   * The first `half` bytes. UTF-8 strings are kept as they are (immutable: no copy needed, and the common
   * response, one `end(json)` string, costs no Buffer at all); bytes are copied, since the application may
   * reuse its buffer after write() returns. Allocated on the first chunk.
   */
  private head: (string | Buffer)[] | undefined;
  private headBytes = 0;
  private tail: Buffer[] | undefined;
  private tailBytes = 0;
  total = 0;
  /** The response's own write/end, called by the shared wrappers (see captureResponse). */
  write?: ServerResponse['write'];
  end?: ServerResponse['end'];
  /** Inside end(): some responses implement end(chunk) with this.write(chunk) (light-my-request does). */
  ending = false;

  constructor(limit: number) {
    this.half = Math.max(1, Math.floor(limit / 2));
  }

  add(chunk: Chunk, encoding?: BufferEncoding): void {
    if (typeof chunk === 'string' && (encoding === undefined || encoding === 'utf8' || encoding === 'utf-8')) {
      const bytes = Buffer.byteLength(chunk, 'utf8');
      if (this.headBytes + bytes <= this.half) {
        this.total += bytes;
        this.headBytes += bytes;
        (this.head ??= []).push(chunk);
        return;
      }
    }
    const buf =
      typeof chunk === 'string'
        ? Buffer.from(chunk, encoding ?? 'utf8')
        : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.total += buf.length;
    let rest = buf;
    if (this.headBytes < this.half) {
      const take = Math.min(this.half - this.headBytes, rest.length);
      (this.head ??= []).push(Buffer.from(rest.subarray(0, take)));
      this.headBytes += take;
      rest = rest.subarray(take);
    }
    if (rest.length === 0) return;
    if (rest.length >= this.half) {
      this.tail = [Buffer.from(rest.subarray(rest.length - this.half))];
      this.tailBytes = this.half;
      return;
    }
    const tail = (this.tail ??= []);
    tail.push(Buffer.from(rest));
    this.tailBytes += rest.length;
    while (this.tailBytes - (tail[0]?.length ?? 0) >= this.half) this.tailBytes -= (tail.shift() as Buffer).length;
  }

  parts(): BodyParts {
    const parts = this.head ?? [];
    const headText =
      parts.length === 1 && typeof parts[0] === 'string'
        ? parts[0]
        : parts.every((p) => typeof p === 'string')
          ? parts.join('')
          : // A mix, or bytes: decoded together, so a character split across chunks stays whole.
            Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p))).toString('utf8');
    let tail = this.tail ? Buffer.concat(this.tail) : undefined;
    if (tail && tail.length > this.half) tail = tail.subarray(tail.length - this.half);
    const tailLength = tail?.length ?? 0;
    // A kept string reads as its UTF-8 bytes would, except a lone surrogate: that becomes U+FFFD once encoded.
    const head = SURROGATE.test(headText) ? Buffer.from(headText, 'utf8').toString('utf8') : headText;
    return {
      head,
      tail: tail ? tail.toString('utf8') : '',
      omittedBytes: this.total - this.headBytes - tailLength,
      bytes: this.total,
    };
  }

  result(): CapturedBody {
    const { head, tail, omittedBytes, bytes } = this.parts();
    const text = omittedBytes > 0 ? `${head}…[${omittedBytes} bytes omitted]…${tail}` : head + tail;
    return { text, bytes, truncated: omittedBytes > 0 };
  }
}

/**
 * Makes `res.write` and `res.end` feed a capture; returns it. The wrappers are two functions shared by
 * every response (the capture sits in a symbol slot of the response, the originals on the capture), so
 * capturing costs no closures per request. They call the originals with the same arguments and return
 * what they return, so backpressure and callbacks are untouched.
 */
export function captureResponse(res: ServerResponse, limit: number): BodyCapture {
  const capture = new BodyCapture(limit);
  capture.write = res.write;
  capture.end = res.end;
  (res as CapturingResponse)[CAPTURE] = capture;
  res.write = capturingWrite as ServerResponse['write'];
  res.end = capturingEnd as ServerResponse['end'];
  return capture;
}

function capturingWrite(this: CapturingResponse, chunk: unknown, encoding?: unknown): boolean {
  const capture = this[CAPTURE] as BodyCapture;
  if (!capture.ending && (typeof chunk === 'string' || chunk instanceof Uint8Array)) {
    capture.add(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : undefined);
  }
  // `arguments`, not a rest parameter: passes them on as given, without an array per call.
  // eslint-disable-next-line prefer-rest-params
  return (capture.write as (...a: unknown[]) => boolean).apply(this, arguments as unknown as unknown[]);
}

function capturingEnd(this: CapturingResponse, chunk?: unknown, encoding?: unknown): ServerResponse {
  const capture = this[CAPTURE] as BodyCapture;
  if (typeof chunk === 'string' || chunk instanceof Uint8Array) {
    capture.add(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : undefined);
  }
  capture.ending = true;
  try {
    // eslint-disable-next-line prefer-rest-params
    return (capture.end as (...a: unknown[]) => ServerResponse).apply(this, arguments as unknown as unknown[]);
  } finally {
    capture.ending = false;
  }
}
