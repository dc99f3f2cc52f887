/**
 * Live streams (`GET /v1/live`, server-sent events): the events and request logs this server stores,
 * pushed to the tenant's connected clients as they are committed. The hub is fed by the transport's
 * consumer after each write (store-handler.ts), so a client sees exactly the rows that were stored:
 * never a refused event (refused before the transport), a dead-lettered row, or a duplicate.
 *
 * Ingestion never waits on a client. Each client has a bounded queue (frames and bytes): while its socket
 * is full, new frames wait there; beyond the bounds they are dropped and counted, and the client gets an
 * `event: dropped` with the count once it reads again. A frame is serialized once per event, whatever
 * the number of clients. With no client connected, feeding the hub costs one comparison per batch.
 *
 * Each server streams what it stored: behind NATS with several servers, a client sees the share of the
 * server it is connected to.
 */
import type { ServerResponse } from 'node:http';
import { REQUEST_LOG_EVENT, type RequestLogRecord, type TallyEvent } from '@tally/core';

export type LiveKind = 'events' | 'logs';

export interface LiveFilter {
  kinds: ReadonlySet<LiveKind>;
  /** Only these event names (events only). */
  names?: ReadonlySet<string>;
  /** Only this user's events and request logs. */
  userId?: string;
}

/** What a write answered, as far as the hub needs it (EnvelopeWriteResult when ok). */
export interface StoredOutcome {
  stored: number;
  duplicates: number;
  duplicateIndexes: readonly number[];
  rejected: readonly { index: number }[];
}

export interface LiveOptions {
  /** Open streams at once, all tenants together. */
  maxClients: number;
  /** Frames waiting for a slow client; beyond, dropped. Default 1000. */
  maxQueued?: number;
  /** Bytes waiting for a slow client; beyond, dropped. Default 1 MiB. */
  maxQueuedBytes?: number;
  /** Comment lines that keep proxies from closing an idle stream. Default 15 000 ms. */
  heartbeatMs?: number;
}

export interface LiveStats {
  clients: number;
  /** Frames waiting for slow clients now, all clients together. */
  queued: number;
  /** Frames dropped for slow clients, since start. */
  dropped: number;
  /** Stored rows not streamed because the write's answer did not say which they were (a writer spooling at shutdown). */
  unresolved: number;
}

export interface LiveHub {
  /** A committed write of `batch` (envelopes, any tenants) and what it answered. Never throws. */
  stored(batch: readonly TallyEvent[], outcome: StoredOutcome): void;
  /**
   * Starts a stream on `res` (headers written here); false when the hub is full or closed, and then
   * nothing has been written.
   */
  attach(tenantId: string, filter: LiveFilter, res: ServerResponse): boolean;
  /** Whether a stream may start now (below --live-max-clients, not shutting down). */
  canAttach(): boolean;
  stats(): LiveStats;
  /** Ends every stream (shutdown): a client that reads gets `event: shutdown`; one that does not is cut. */
  closeAll(): void;
}

export function createLiveHub(options: LiveOptions): LiveHub {
  const maxQueued = options.maxQueued ?? 1000;
  const maxQueuedBytes = options.maxQueuedBytes ?? 1 << 20;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const byTenant = new Map<string, Set<Client>>();
  let count = 0;
  let closed = false;
  const totals = { dropped: 0, unresolved: 0 };

  class Client {
    private queue: string[] = [];
    private head = 0;
    private queuedBytes = 0;
    private blocked = false;
    private dropped = 0;
    private done = false;
    private readonly heartbeat: NodeJS.Timeout;

    constructor(
      readonly tenantId: string,
      readonly filter: LiveFilter,
      private readonly res: ServerResponse,
    ) {
      res.on('drain', () => this.flush());
      res.once('close', () => this.detach());
      res.on('error', () => this.detach());
      this.heartbeat = setInterval(() => {
        // A client that is behind has data coming; a heartbeat would only queue.
        if (!this.blocked) this.write(': heartbeat\n\n');
      }, heartbeatMs);
      this.heartbeat.unref();
    }

    send(frame: string): void {
      if (this.done) return;
      if (!this.blocked) return this.write(frame);
      if (this.queue.length - this.head >= maxQueued || this.queuedBytes + frame.length > maxQueuedBytes) {
        this.dropped++;
        totals.dropped++;
        return;
      }
      this.queue.push(frame);
      this.queuedBytes += frame.length;
    }

    waiting(): number {
      return this.queue.length - this.head;
    }

    private write(frame: string): void {
      if (!this.res.write(frame)) this.blocked = true;
    }

    private flush(): void {
      this.blocked = false;
      while (this.head < this.queue.length && !this.blocked) {
        const frame = this.queue[this.head] as string;
        this.queue[this.head++] = '';
        this.queuedBytes -= frame.length;
        this.write(frame);
      }
      if (this.head >= this.queue.length) {
        this.queue = [];
        this.head = 0;
      }
      if (!this.blocked && this.dropped > 0) {
        const n = this.dropped;
        this.dropped = 0;
        this.write(`event: dropped\ndata: ${JSON.stringify({ count: n })}\n\n`);
      }
    }

    /** Shutdown: a reading client gets a last frame and the end; one that is behind is cut at once. */
    end(): void {
      if (this.done) return;
      if (this.blocked) {
        this.res.destroy();
        return;
      }
      this.res.end('event: shutdown\ndata: {}\n\n');
      setTimeout(() => this.res.destroy(), 1000).unref();
    }

    detach(): void {
      if (this.done) return;
      this.done = true;
      clearInterval(this.heartbeat);
      this.queue = [];
      this.queuedBytes = 0;
      const set = byTenant.get(this.tenantId);
      set?.delete(this);
      if (set?.size === 0) byTenant.delete(this.tenantId);
      count--;
    }
  }

  function publish(rows: readonly TallyEvent[]): void {
    // One frame per row, made when the first client wants it and shared by the rest.
    for (const e of rows) {
      const log = e.name === REQUEST_LOG_EVENT;
      const record = log ? (e.properties as unknown as RequestLogRecord) : undefined;
      const tenantId = record ? record.tenantId : e.tenantId;
      const clients = byTenant.get(tenantId);
      if (!clients) continue;
      const userId = record ? record.userId : e.userId;
      let frame: string | undefined;
      for (const c of clients) {
        const f = c.filter;
        if (!f.kinds.has(log ? 'logs' : 'events')) continue;
        if (f.userId !== undefined && f.userId !== userId) continue;
        if (!log && f.names !== undefined && !f.names.has(e.name)) continue;
        frame ??= record ? logFrame(record, e.receivedAt) : eventFrame(e);
        c.send(frame);
      }
    }
  }

  return {
    stored(batch, outcome) {
      if (count === 0) return;
      try {
        const rows = storedRows(batch, outcome);
        if (rows === undefined) {
          totals.unresolved += outcome.stored;
          return;
        }
        publish(rows);
      } catch {
        // A live stream is a convenience: whatever goes wrong here must not fail the write it follows.
      }
    },

    canAttach: () => !closed && count < options.maxClients,

    attach(tenantId, filter, res) {
      if (closed || count >= options.maxClients) return false;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
      });
      const client = new Client(tenantId, filter, res);
      count++;
      let set = byTenant.get(tenantId);
      if (!set) byTenant.set(tenantId, (set = new Set()));
      set.add(client);
      const ready = {
        tenantId,
        kinds: [...filter.kinds],
        ...(filter.names ? { names: [...filter.names] } : {}),
        ...(filter.userId !== undefined ? { userId: filter.userId } : {}),
      };
      client.send(`retry: 5000\nevent: ready\ndata: ${JSON.stringify(ready)}\n\n`);
      return true;
    },

    stats() {
      let queued = 0;
      for (const set of byTenant.values()) for (const c of set) queued += c.waiting();
      return { clients: count, queued, ...totals };
    },

    closeAll() {
      closed = true;
      for (const set of [...byTenant.values()]) for (const c of [...set]) c.end();
    },
  };
}

/**
 * The rows of `batch` a write stored: all but the rejected and the duplicates (both named by position).
 * Undefined when that does not add up to the stored count: rows a closing writer spooled are stored at
 * the next start, not now, and the answer does not say which they were.
 */
export function storedRows(batch: readonly TallyEvent[], outcome: StoredOutcome): TallyEvent[] | undefined {
  if (outcome.stored === 0) return [];
  const skip = new Set([...outcome.duplicateIndexes, ...outcome.rejected.map((r) => r.index)]);
  const fresh = batch.filter((_, i) => !skip.has(i));
  return fresh.length === outcome.stored ? fresh : undefined;
}

function eventFrame(e: TallyEvent): string {
  const data = {
    id: e.id,
    name: e.name,
    userId: e.userId ?? null,
    anonymousId: e.anonymousId ?? null,
    properties: e.properties,
    context: e.context,
    timestamp: e.timestamp,
    receivedAt: e.receivedAt ?? null,
  };
  return `id: ${e.id}\nevent: event\ndata: ${JSON.stringify(data)}\n\n`;
}

function logFrame(r: RequestLogRecord, receivedAt: string | undefined): string {
  const data = {
    id: r.id,
    requestId: r.requestId ?? null,
    method: r.method,
    route: r.route ?? null,
    url: r.url,
    status: r.status,
    durationMs: r.durationMs,
    requestBytes: r.requestBytes ?? null,
    responseBytes: r.responseBytes ?? null,
    userId: r.userId ?? null,
    apiKeyId: r.apiKeyId ?? null,
    aborted: r.aborted ?? false,
    error: r.error ?? null,
    timestamp: r.timestamp,
    receivedAt: receivedAt ?? null,
  };
  return `id: ${r.id}\nevent: log\ndata: ${JSON.stringify(data)}\n\n`;
}
