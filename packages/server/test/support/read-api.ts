/**
 * What the read-side tests share: HTTP calls with a key, events and request logs sent through the
 * collector as an app would (answered once stored), and a reader of server-sent events.
 */
import { connect } from 'node:net';
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
  /** Everything received after the headers, comments included. */
  raw(): string;
  /** The body as received (for an error answer: its JSON). */
  body(): string;
  /** Starts reading (a reader opened with `paused` reads nothing until then). */
  resume(): void;
  /** Resolves when `predicate` holds for the frames received so far. */
  until(predicate: (frames: SseFrame[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): void;
  /** Resolves when the server ended the stream. */
  ended: Promise<void>;
}

/**
 * Opens `GET path` on a raw connection (HTTP/1.0, so the body is the bare stream, not chunked). With
 * `paused` nothing is read from the socket until `resume()`: the kernel's buffers fill, then the
 * server's, as with a client that stopped reading.
 */
export async function openLive(
  base: string,
  path: string,
  key: string,
  options: { paused?: boolean } = {},
): Promise<LiveReader> {
  const url = new URL(base);
  const socket = connect(Number(url.port), url.hostname);
  socket.write(`GET ${path} HTTP/1.0\r\nHost: ${url.host}\r\nAuthorization: Bearer ${key}\r\n\r\n`);
  const frames: SseFrame[] = [];
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  let text = '';
  let head = '';
  let buffered = '';
  let status = 0;
  let resolveHead: () => void = () => undefined;
  const headRead = new Promise<void>((resolve) => (resolveHead = resolve));
  const decoder = new TextDecoder();
  socket.on('data', (data: Buffer) => {
    let chunk = decoder.decode(data, { stream: true });
    if (status === 0) {
      head += chunk;
      const cut = head.indexOf('\r\n\r\n');
      if (cut < 0) return;
      status = Number(/^HTTP\/1\.\d (\d{3})/.exec(head)?.[1] ?? -1);
      chunk = head.slice(cut + 4);
      resolveHead();
      if (options.paused) socket.pause();
    }
    text += chunk;
    buffered += chunk;
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
    }
    wake();
  });
  const ended = new Promise<void>((resolve) => {
    socket.once('close', () => {
      resolveHead();
      wake();
      resolve();
    });
    socket.on('error', () => undefined);
  });
  await headRead;
  return {
    status,
    frames,
    raw: () => text,
    resume: () => socket.resume(),
    ended,
    close: () => socket.destroy(),
    body: () => text,
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
