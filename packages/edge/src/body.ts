/**
 * Reads what a body stream carries as a request log keeps it: its first and last `limit / 2` bytes and
 * its total, never more in memory, so a large upload or a long SSE stream costs `limit` bytes. The same
 * cut as the Fastify plugin's capture (head, bytes left out, tail), decoded as UTF-8 (a character cut in
 * two becomes U+FFFD), for core's Redactor.
 */
import type { BodyParts } from '@tally/core';

export async function captureStream(stream: ReadableStream<Uint8Array>, limit: number): Promise<BodyParts> {
  const half = Math.max(1, Math.floor(limit / 2));
  const head = new Uint8Array(half);
  let headBytes = 0;
  const tail: Uint8Array[] = [];
  let tailBytes = 0;
  let total = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    let chunk = value;
    total += chunk.length;
    if (headBytes < half) {
      const n = Math.min(half - headBytes, chunk.length);
      head.set(chunk.subarray(0, n), headBytes);
      headBytes += n;
      chunk = chunk.subarray(n);
    }
    if (chunk.length === 0) continue;
    // Chunks are views into buffers the stream may reuse: keep a copy.
    tail.push(chunk.slice());
    tailBytes += chunk.length;
    while (tail.length > 1 && tailBytes - (tail[0] as Uint8Array).length >= half) {
      tailBytes -= (tail.shift() as Uint8Array).length;
    }
  }
  const rest = new Uint8Array(tailBytes);
  let at = 0;
  for (const c of tail) {
    rest.set(c, at);
    at += c.length;
  }
  const decoder = new TextDecoder();
  if (total <= 2 * half) {
    // Nothing left out: head and tail are one text, decoded together so no character is cut at the seam.
    const all = new Uint8Array(total);
    all.set(head.subarray(0, headBytes));
    all.set(rest, headBytes);
    return { head: decoder.decode(all), tail: '', omittedBytes: 0, bytes: total };
  }
  const kept = rest.subarray(rest.length - half);
  return {
    head: decoder.decode(head),
    tail: decoder.decode(kept),
    omittedBytes: total - half - kept.length,
    bytes: total,
  };
}
