/**
 * Server-sent events as a request log captured them (the response body of a `text/event-stream` reply),
 * split into frames by the format's own rules: frames end at a blank line; `field: value` lines, one
 * leading space dropped from the value; several `data` lines joined by a newline; lines starting with `:`
 * are comments. A capture cut at the logging limit ends in a frame that may be partial: `partial` says so.
 */
export interface SseFrame {
  event: string;
  data: string;
  id?: string;
  retry?: string;
  /** Comment lines (heartbeats), without the colon. */
  comments: string[];
  /** The last frame of a capture with no blank line after it (cut, or the stream ended mid-frame). */
  partial: boolean;
}

export function parseSse(text: string): SseFrame[] {
  const frames: SseFrame[] = [];
  const lines = text.split(/\r\n|\r|\n/);
  let frame: SseFrame | undefined;
  let data: string[] = [];
  let fields = 0;
  const end = (partial: boolean) => {
    if (frame) {
      frame.data = data.join('\n');
      // A block of comments only (a heartbeat) dispatches no event: say what it is.
      if (fields === 0) frame.event = '(comment)';
      frame.partial = partial;
      frames.push(frame);
    }
    frame = undefined;
    data = [];
    fields = 0;
  };
  for (const line of lines) {
    if (line === '') {
      end(false);
      continue;
    }
    frame ??= { event: 'message', data: '', comments: [], partial: false };
    const colon = line.indexOf(':');
    if (colon === 0) {
      frame.comments.push(line.slice(1).replace(/^ /, ''));
      continue;
    }
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
    fields++;
    if (field === 'data') data.push(value);
    else if (field === 'event') frame.event = value;
    else if (field === 'id') frame.id = value;
    else if (field === 'retry') frame.retry = value;
  }
  // Text that ends without a blank line ends inside a frame.
  end(true);
  return frames;
}

/** Whether a captured response is an event stream: by its Content-Type, else by its first line's shape. */
export function isEventStream(contentType: string | undefined, body: string | null): boolean {
  if (contentType) return /^\s*text\/event-stream\b/i.test(contentType);
  return body !== null && /^(?:event|data|id|retry)?:/.test(body);
}
