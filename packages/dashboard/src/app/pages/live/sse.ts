/**
 * Server-sent events read from a fetch() body. The browser's EventSource cannot send an Authorization
 * header, and the key must never go into a URL (links are shared, URLs are logged), so the Live page
 * reads `GET /v1/live` with fetch and parses the stream here, as the HTML standard's event-stream
 * interpretation says: lines end with CRLF, LF or CR; a blank line dispatches; `:` starts a comment;
 * `data` lines join with LF; `id` sets the last event id; `retry` sets the reconnection delay; an event
 * not ended by a blank line when the stream ends is dropped.
 */

export interface SseMessage {
  /** `message` when the frame names none. */
  event: string;
  data: string;
  /** The last event id seen so far (an id carries over to later frames without one). */
  id: string;
}

export class SseParser {
  /** The reconnection delay the server asked for (`retry:`), ms. */
  retry: number | undefined;
  lastEventId = '';
  /** Comment lines seen (`: heartbeat`): a sign of life on a quiet stream. */
  comments = 0;
  private buffer = '';
  private event = '';
  private data: string[] = [];
  private started = false;
  /** The previous chunk ended with CR: an LF starting the next one belongs to it. */
  private pendingCr = false;

  /** Feeds decoded text; returns the frames it completed. */
  push(text: string): SseMessage[] {
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.pendingCr && text.startsWith('\n')) text = text.slice(1);
    this.pendingCr = false;
    const out: SseMessage[] = [];
    const all = this.buffer + text;
    let start = 0;
    for (let i = 0; i < all.length; i++) {
      const c = all.charCodeAt(i);
      if (c !== 0x0a && c !== 0x0d) continue;
      this.line(all.slice(start, i), out);
      if (c === 0x0d) {
        if (i + 1 === all.length) this.pendingCr = true;
        else if (all.charCodeAt(i + 1) === 0x0a) i++;
      }
      start = i + 1;
    }
    this.buffer = all.slice(start);
    return out;
  }

  private line(line: string, out: SseMessage[]): void {
    if (line === '') {
      if (this.data.length > 0)
        out.push({ event: this.event || 'message', data: this.data.join('\n'), id: this.lastEventId });
      this.event = '';
      this.data = [];
      return;
    }
    if (line.startsWith(':')) {
      this.comments++;
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.event = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
      // Unknown fields are ignored.
    }
  }
}

/**
 * The frames of a response body as they arrive (UTF-8, a character split across chunks kept whole).
 * Ends when the body ends; an abort of the fetch's signal ends it with the AbortError.
 */
export async function* readSse(
  body: ReadableStream<Uint8Array>,
  parser = new SseParser(),
): AsyncGenerator<SseMessage, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder('utf-8');
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        yield* parser.push(decoder.decode());
        return;
      }
      yield* parser.push(decoder.decode(value, { stream: true }));
    }
  } finally {
    // A consumer that stops early (the page left, the filter changed) lets the connection go.
    reader.cancel().catch(() => undefined);
  }
}
