/**
 * A real HTTP receiver for the batch wire format (and the `batch` arrays of Segment and PostHog), on an
 * ephemeral port: it gunzips, parses, counts every event and every distinct id, and can be told to
 * fail, stall or throttle, so tests and benchmarks exercise the SDK against a real socket.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { applyBatchContext } from '@tally/core';

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Answer only after this long (the events are recorded first: a late answer, not a lost batch). */
  delayMs?: number;
  /** Do not record the events (the request failed before they were stored). */
  discard?: boolean;
}

export interface ReceivedRequest {
  path: string;
  headers: IncomingMessage['headers'];
  events: { id?: string; messageId?: string; uuid?: string; [k: string]: unknown }[];
}

export interface Receiver {
  url: string;
  /** Every event received, duplicates included. */
  events: ReceivedRequest['events'];
  /** Distinct event ids stored. */
  ids: Set<string>;
  requests: ReceivedRequest[];
  /** Decides the answer to each request; default 200 with `{accepted, rejected: []}`. */
  behave: (req: ReceivedRequest, n: number) => Reply;
  /** Count only (no per-event arrays): for benchmarks. */
  countOnly: boolean;
  count: number;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  let n = 0;
  const receiver: Receiver = {
    url: '',
    events: [],
    ids: new Set(),
    requests: [],
    behave: () => ({ status: 200 }),
    countOnly: false,
    count: 0,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: Buffer = Buffer.concat(chunks);
      let parsed: { batch?: ReceivedRequest['events'] } | undefined;
      try {
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'TALLY_MALFORMED', message: 'bad body' } }));
        return;
      }
      const events = Array.isArray(parsed?.batch) ? parsed.batch : parsed ? [parsed as never] : [];
      // Tests look at whole events: give each the batch's context, as the collector does.
      if (!receiver.countOnly) applyBatchContext(events, (parsed as { context?: unknown } | undefined)?.context);
      const request: ReceivedRequest = { path: req.url ?? '/', headers: req.headers, events };
      const reply = receiver.behave(request, n++);
      if (!reply.discard && reply.status < 300) {
        receiver.count += events.length;
        if (!receiver.countOnly) {
          receiver.requests.push(request);
          for (const e of events) {
            receiver.events.push(e);
            const id = e.id ?? e.messageId ?? e.uuid;
            if (typeof id === 'string') receiver.ids.add(id);
          }
        }
      }
      const send = () => {
        if (res.destroyed) return;
        res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
        res.end(JSON.stringify(reply.body ?? { accepted: events.length, rejected: [] }));
      };
      if (reply.delayMs) setTimeout(send, reply.delayMs);
      else send();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return receiver;
}
