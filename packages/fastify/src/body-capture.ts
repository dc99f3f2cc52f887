/**
 * Captures what a response sends, without buffering it and without changing a byte of it: the first
 * `limit / 2` bytes, the last `limit / 2` bytes, and the total. It wraps the raw `write` and `end`, so it
 * sees bodies sent by `reply.send()` (string, Buffer, stream) and bytes written straight to `reply.raw`
 * (SSE), which bypass Fastify's `onSend` hook.
 */
import type { ServerResponse } from 'node:http';

export interface CapturedBody {
  /** Head and tail joined by a marker when bytes were left out; UTF-8 decoded (a cut character becomes U+FFFD). */
  text: string;
  /** Total bytes the application sent. */
  bytes: number;
  truncated: boolean;
}

type Chunk = string | Uint8Array;

export class BodyCapture {
  private readonly half: number;
  private head: Buffer[] = [];
  private headBytes = 0;
  private tail: Buffer[] = [];
  private tailBytes = 0;
  total = 0;

  constructor(limit: number) {
    this.half = Math.max(1, Math.floor(limit / 2));
  }

  add(chunk: Chunk, encoding?: BufferEncoding): void {
    const buf =
      typeof chunk === 'string'
        ? Buffer.from(chunk, encoding ?? 'utf8')
        : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.total += buf.length;
    let rest = buf;
    if (this.headBytes < this.half) {
      const take = Math.min(this.half - this.headBytes, rest.length);
      // Copied: the application may reuse its buffer after write() returns.
      this.head.push(Buffer.from(rest.subarray(0, take)));
      this.headBytes += take;
      rest = rest.subarray(take);
    }
    if (rest.length === 0) return;
    if (rest.length >= this.half) {
      this.tail = [Buffer.from(rest.subarray(rest.length - this.half))];
      this.tailBytes = this.half;
      return;
    }
    this.tail.push(Buffer.from(rest));
    this.tailBytes += rest.length;
    while (this.tailBytes - (this.tail[0]?.length ?? 0) >= this.half)
      this.tailBytes -= (this.tail.shift() as Buffer).length;
  }

  result(): CapturedBody {
    const head = Buffer.concat(this.head);
    let tail = Buffer.concat(this.tail);
    if (tail.length > this.half) tail = tail.subarray(tail.length - this.half);
    const omitted = this.total - head.length - tail.length;
    const text =
      omitted > 0
        ? `${head.toString('utf8')}…[${omitted} bytes omitted]…${tail.toString('utf8')}`
        : head.toString('utf8') + tail.toString('utf8');
    return { text, bytes: this.total, truncated: omitted > 0 };
  }
}

/**
 * Wraps `res.write` and `res.end` to feed a capture; returns it. The wrapped methods call the originals
 * with the same arguments and return what they return, so backpressure and callbacks are untouched.
 */
export function captureResponse(res: ServerResponse, limit: number): BodyCapture {
  const capture = new BodyCapture(limit);
  const write = res.write;
  const end = res.end;
  // Some responses implement end(chunk) with this.write(chunk) (light-my-request does): count it once.
  let ending = false;
  res.write = function (this: ServerResponse, chunk: unknown, ...args: unknown[]) {
    if (!ending && (typeof chunk === 'string' || chunk instanceof Uint8Array)) {
      capture.add(chunk, typeof args[0] === 'string' ? (args[0] as BufferEncoding) : undefined);
    }
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...args);
  } as ServerResponse['write'];
  res.end = function (this: ServerResponse, chunk?: unknown, ...args: unknown[]) {
    if (typeof chunk === 'string' || chunk instanceof Uint8Array) {
      capture.add(chunk, typeof args[0] === 'string' ? (args[0] as BufferEncoding) : undefined);
    }
    ending = true;
    try {
      return (end as (...a: unknown[]) => ServerResponse).call(this, chunk, ...args);
    } finally {
      ending = false;
    }
  } as ServerResponse['end'];
  return capture;
}
