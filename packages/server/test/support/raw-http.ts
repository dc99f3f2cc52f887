/**
 * A minimal HTTP/1.1 client over a raw TCP socket, for tests that must send what a well-behaved client
 * never would: headers that lie, bodies written in pieces with pauses, uploads cut off half-way, bytes
 * that are not HTTP at all. It frames responses by Content-Length (or chunked encoding) and keeps the
 * connection alive between requests unless either side says `connection: close`.
 */
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Settled when a response is complete, or with `closed` when the connection ends before one. */
export type Outcome = { kind: 'response'; response: RawResponse } | { kind: 'closed'; error?: string };

export interface RawRequest {
  method: string;
  path: string;
  headers: [string, string][];
  body?: Uint8Array;
  /** Writes the request in these many pieces, pausing `pauseMs` between them. Default: one write. */
  chunks?: number;
  pauseMs?: number;
  /** Destroys the socket after writing this many bytes of the request (an aborted upload). */
  abortAfter?: number;
}

export function serialize(req: RawRequest): Buffer {
  const head = [`${req.method} ${req.path} HTTP/1.1`, ...req.headers.map(([k, v]) => `${k}: ${v}`), '', ''].join(
    '\r\n',
  );
  return Buffer.concat([Buffer.from(head, 'latin1'), req.body ?? Buffer.alloc(0)]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class RawConnection {
  private socket: Socket | undefined;
  private buffer: Buffer = Buffer.alloc(0);
  private head = false;
  private waiting: ((o: Outcome) => void) | undefined;
  private ended: string | undefined;

  constructor(
    private readonly port: number,
    private readonly host = '127.0.0.1',
  ) {}

  get open(): boolean {
    return this.socket !== undefined && this.ended === undefined;
  }

  private async connect(): Promise<Socket> {
    const socket = connect(this.port, this.host);
    socket.setNoDelay(true);
    this.buffer = Buffer.alloc(0);
    this.ended = undefined;
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    // Events of a socket this connection has moved on from are ignored.
    socket.on('data', (d: Buffer) => {
      if (socket !== this.socket) return;
      this.buffer = this.buffer.length === 0 ? d : Buffer.concat([this.buffer, d]);
      this.tryParse();
    });
    const end = (why: string) => {
      if (socket !== this.socket) return;
      if (this.ended === undefined) this.ended = why;
      this.tryParse();
      const w = this.waiting;
      this.waiting = undefined;
      w?.({ kind: 'closed', error: why });
    };
    socket.on('error', (e: NodeJS.ErrnoException) => end(e.code ?? e.message));
    socket.on('close', () => end('closed'));
    this.socket = socket;
    return socket;
  }

  /** Sends one request and waits (up to `timeoutMs`) for its response. */
  async send(req: RawRequest, timeoutMs = 10_000): Promise<Outcome> {
    if (!this.open) await this.connect();
    const socket = this.socket as Socket;
    const bytes = serialize(req);
    this.head = req.method === 'HEAD';
    const answer = new Promise<Outcome>((resolve) => {
      this.waiting = resolve;
    });
    this.tryParse();
    const timer = setTimeout(() => {
      const w = this.waiting;
      this.waiting = undefined;
      w?.({ kind: 'closed', error: 'client timeout' });
      socket.destroy();
    }, timeoutMs);
    try {
      const limit = req.abortAfter ?? bytes.length;
      const pieces = Math.max(1, req.chunks ?? 1);
      const size = Math.ceil(limit / pieces) || 1;
      for (let at = 0; at < limit && !socket.destroyed; at += size) {
        socket.write(bytes.subarray(at, Math.min(limit, at + size)));
        if (req.pauseMs && at + size < limit) await sleep(req.pauseMs);
      }
      if (req.abortAfter !== undefined && req.abortAfter < bytes.length) {
        socket.destroy();
      }
      return await answer;
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }

  private tryParse(): void {
    if (!this.waiting) return;
    const parsed = parseResponse(this.buffer, this.ended !== undefined, this.head);
    if (!parsed) return;
    this.buffer = this.buffer.subarray(parsed.used);
    const w = this.waiting;
    this.waiting = undefined;
    if (parsed.response.headers.connection?.toLowerCase() === 'close') this.close();
    w({ kind: 'response', response: parsed.response });
  }
}

/**
 * One complete response at the start of `data` (after any 1xx interim ones), with the bytes it took;
 * undefined if incomplete. `head`: the request was HEAD, so the response has no body whatever it says.
 */
export function parseResponse(
  data: Buffer,
  eof: boolean,
  head = false,
): { response: RawResponse; used: number } | undefined {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = data.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1]);
  if (status >= 100 && status < 200) {
    const rest = parseResponse(data.subarray(end + 4), eof, head);
    return rest && { response: rest.response, used: end + 4 + rest.used };
  }
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const start = end + 4;
  if (head || status === 204 || status === 304) {
    return { response: { status, headers, body: Buffer.alloc(0) }, used: start };
  }
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    if (data.length < start + n) return undefined;
    return { response: { status, headers, body: data.subarray(start, start + n) }, used: start + n };
  }
  if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
    const parts: Buffer[] = [];
    let at = start;
    for (;;) {
      const lineEnd = data.indexOf('\r\n', at);
      if (lineEnd < 0) return undefined;
      const size = Number.parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
      if (data.length < lineEnd + 2 + size + 2) return undefined;
      if (size === 0) return { response: { status, headers, body: Buffer.concat(parts) }, used: lineEnd + 4 };
      parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
  }
  // Neither: the body runs to the end of the connection.
  if (!eof) return undefined;
  return { response: { status, headers, body: data.subarray(start) }, used: data.length };
}
