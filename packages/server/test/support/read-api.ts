/**
 * What the read-side tests share: HTTP calls with a key, events and request logs sent through the
 * collector as an app would (answered once stored), and a reader of server-sent events.
 */
import { isoTime, uuidv7 } from '@tally/core';

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  /** The body as JSON, when it is JSON (tests look into it freely). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export async function call(
  base: string,
  method: string,
  path: string,
  options: { key?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key !== undefined) headers.authorization = `Bearer ${options.key}`;
  let body: string | undefined;
  if (options.raw !== undefined) body = options.raw;
  else if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined) headers['content-type'] ??= 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, body });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

export function event(name: string, properties: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { id: uuidv7(), name, properties, timestamp: isoTime(Date.now() - 60_000), ...extra };
}

/** A `$request` envelope: a request log as the Fastify plugin sends it. */
export function requestLog(fields: Record<string, unknown>) {
  const id = uuidv7();
  const timestamp = isoTime(Date.now() - 60_000);
  return {
    id,
    name: '$request',
    timestamp,
    properties: {
      id,
      tenantId: 'ignored',
      method: 'GET',
      url: '/',
      status: 200,
      durationMs: 12,
      timestamp,
      ...fields,
    },
  };
}

/** Sends one batch with a write key; resolves with the collector's answer (stored by then). */
export async function send(base: string, key: string, batch: unknown[]): Promise<Answer> {
  const r = await call(base, 'POST', '/v1/events', { key, body: { batch } });
  if (r.status !== 200) throw new Error(`send: ${r.status} ${r.text}`);
  return r;
}

export interface SseFrame {
  event: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  data: any;
  id?: string;
}

/** An open `GET /v1/live`: frames as they come, parsed. */
export interface LiveReader {
  status: number;
  frames: SseFrame[];
  /** Resolves when `predicate` holds for the frames received so far. */
  until(predicate: (frames: SseFrame[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): void;
  /** Resolves when the server ended the stream. */
  ended: Promise<void>;
}

export async function openLive(base: string, path: string, key: string): Promise<LiveReader> {
  const abort = new AbortController();
  const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${key}` }, signal: abort.signal });
  const frames: SseFrame[] = [];
  const waiters = new Set<() => void>();
  let ended: Promise<void> = Promise.resolve();
  if (res.ok && res.body) {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffered = '';
    ended = (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          buffered += decoder.decode(value, { stream: true });
          let cut: number;
          while ((cut = buffered.indexOf('\n\n')) >= 0) {
            const block = buffered.slice(0, cut);
            buffered = buffered.slice(cut + 2);
            const frame: Partial<SseFrame> = {};
            let data: string | undefined;
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) continue;
              const at = line.indexOf(': ');
              const field = at < 0 ? line : line.slice(0, at);
              const v = at < 0 ? '' : line.slice(at + 2);
              if (field === 'event') frame.event = v;
              else if (field === 'data') data = v;
              else if (field === 'id') frame.id = v;
            }
            if (frame.event === undefined) continue;
            frames.push({ event: frame.event, id: frame.id, data: data === undefined ? undefined : JSON.parse(data) });
            for (const w of [...waiters]) w();
          }
        }
      } catch {
        // aborted by close()
      } finally {
        for (const w of [...waiters]) w();
      }
    })();
  } else {
    await res.text().catch(() => undefined);
  }
  return {
    status: res.status,
    frames,
    ended,
    close: () => abort.abort(),
    until(predicate, timeoutMs = 15_000) {
      if (predicate(frames)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`live: timed out; frames so far: ${JSON.stringify(frames).slice(0, 2000)}`));
        }, timeoutMs);
        const check = () => {
          if (!predicate(frames)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
      });
    },
  };
}
