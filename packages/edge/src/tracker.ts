/**
 * The edge tracker: the SDK for runtimes where a request is all the time there is (Cloudflare Workers,
 * Next.js route handlers and server actions, Vercel's edge). No timers between requests, no disk, no
 * `node:` modules: `track()` records the call in a bounded in-memory queue and returns; `flush()` does the
 * work, and the app hands it to what keeps the request alive after the response (`ctx.waitUntil` on
 * Workers, `after` on Next.js).
 *
 *   track() ─▶ queue (bounded) ─▶ flush(): finish (catalog, PII, ids; core) ─▶ deliverBatch (core) ─▶ sink
 *                                              ▲                                    │
 *                                              └──── kept: undelivered, for the next flush ◀──┘
 *
 * What a flush cannot deliver in its time (collector down, out of retries, past its deadline) stays in
 * memory, counted as undelivered, and goes first in the next flush of the same isolate; ids are reserved
 * at the call, so a resend after a late answer dedupes at the collector. The isolate can still be
 * evicted with them: that is what the undelivered count in every flush report and in `stats()` is for.
 */
import {
  type Catalog,
  deliverBatch,
  type DeliveryOutcomes,
  DropReporter,
  type ErrorCode,
  ErrorCodes,
  EventFinisher,
  type EventName,
  type EventProps,
  type PiiPolicy,
  positiveOption as positive,
  REQUEST_LOG_EVENT,
  type RequestLogRecord,
  reserveIdInto,
  samplingRates,
  type RetryPolicy,
  type Sink,
  TallyConfigError,
  TallyError,
  type TallyEvent,
  timestampMs,
  type TrackContext,
  type TrackedCall,
} from '@tally/core';
import { createFetchSink, type FetchLike } from './fetch-sink.js';
import { VERSION } from './version.js';

export const EDGE_LIBRARY_NAME = '@tally/edge';

export interface EdgeTrackOptions {
  tenantId?: string;
  userId?: string;
  anonymousId?: string;
  /** When the event happened, if not now. */
  timestamp?: Date | number | string;
  /** Extra context for this event only, merged over the tracker's and the scope's. */
  context?: TrackContext;
}

export interface EdgeTrackerOptions<C extends Catalog> {
  catalog: C;
  /** The collector's batch endpoint, e.g. `https://tally.example.com/v1/events` (or give `sink`). */
  url?: string;
  /** The tenant's write key, sent as `Authorization: Bearer …`. */
  writeKey?: string;
  /** Another `fetch` (a Workers service binding's, a test's). */
  fetch?: FetchLike;
  /** Per-request timeout of the default sink, in ms. Default 5 000. */
  requestTimeoutMs?: number;
  /** Any sink instead of `url` (core's `Sink` interface). */
  sink?: Sink;
  /** Context every event carries (service, tenantId…). */
  context?: TrackContext;
  /** Sampling rate per event name in (0, 1]; overrides the catalog's `sampleRate`. */
  sampling?: Partial<Record<EventName<C>, number>>;
  /** Events held in memory at most, queued and undelivered together; beyond it the oldest go. Default 1 000. */
  maxQueueEvents?: number;
  /** Largest batch in events. Default 500. */
  maxBatchEvents?: number;
  /** Batches one flush sends at once. Default 2. */
  maxInFlight?: number;
  /** Largest serialized properties object. Default 2048 bytes. */
  maxPropertiesBytes?: number;
  /** PII deny-list policy. Default: redact core's DEFAULT_PII_POLICY keys. */
  pii?: Partial<PiiPolicy>;
  /** Retries within one flush. Default 100 ms doubling to 2 s, 4 attempts. */
  retry?: Partial<RetryPolicy>;
  /** How long one flush may take, in ms: its share of `waitUntil`'s or `after`'s time. Default 10 000. */
  flushTimeoutMs?: number;
  /** Called for every dropped or undelivered event and delivery failure; never on the caller's stack. */
  onError?: (error: TallyError, event?: { name: string; id?: string }) => void;
}

export interface EdgeTrackerStats {
  /** `track()` and `trackRequest()` calls. */
  tracked: number;
  /** Calls waiting for a flush. */
  queued: number;
  /** Events a flush could not deliver, waiting for the next one. */
  undelivered: number;
  /** Events in batches being sent. */
  inFlight: number;
  delivered: number;
  /** Batch send attempts that were retried. */
  retries: number;
  sampledOut: number;
  /** Dropped events by error code. */
  dropped: Partial<Record<ErrorCode, number>>;
}

/** What one flush did. */
export interface FlushReport {
  delivered: number;
  dropped: Partial<Record<ErrorCode, number>>;
  /** Events this flush could not deliver: kept in memory for the next flush of this isolate. */
  undelivered: number;
  /** Events held after the flush (tracked meanwhile, or undelivered). */
  pending: number;
  timedOut: boolean;
}

type TrackArgs<P> = {} extends P
  ? [properties?: P, options?: EdgeTrackOptions]
  : [properties: P, options?: EdgeTrackOptions];

export interface EdgeTracker<C extends Catalog> {
  /** Records an event. O(1), never throws, never awaits, sends nothing: `flush()` does. */
  track<N extends EventName<C>>(name: N, ...args: TrackArgs<EventProps<C, N>>): void;
  /** Records an HTTP request log; `build` runs at flush time (the Workers middleware calls this). */
  trackRequest(build: () => RequestLogRecord): void;
  /** The same tracker (same queue) whose events carry `context` too: a request's id, its user. */
  withContext(context: TrackContext): EdgeTracker<C>;
  /**
   * Sends everything held now; resolves (never rejects) when each event is delivered, dropped with a
   * count, or kept as undelivered. Hand it to `ctx.waitUntil(...)` or Next.js's `after(...)`.
   */
  flush(): Promise<FlushReport>;
  stats(): EdgeTrackerStats;
}

export function createEdgeTracker<C extends Catalog>(options: EdgeTrackerOptions<C>): EdgeTracker<C> {
  const core = new EdgeTrackerCore(options);
  return scoped(core, undefined) as unknown as EdgeTracker<C>;
}

/** The tracker as the app sees it: the shared core and a scope's context (frozen, so events share it). */
function scoped(core: EdgeTrackerCore, frame: Readonly<TrackContext> | undefined) {
  return {
    track: (name: string, props?: Record<string, unknown>, opts?: EdgeTrackOptions) =>
      core.track(name, props, opts, frame),
    trackRequest: (build: () => RequestLogRecord) => core.trackRequest(build),
    withContext: (context: TrackContext) => scoped(core, Object.freeze({ ...frame, ...context })),
    flush: () => core.flush(),
    stats: () => core.stats(),
  };
}

class EdgeTrackerCore {
  private readonly sink: Sink;
  private readonly finisher: EventFinisher;
  private readonly rates: Map<string, number>;
  private readonly maxPropertiesBytes: number;
  private readonly maxQueueEvents: number;
  private readonly maxBatchEvents: number;
  private readonly maxInFlight: number;
  private readonly flushTimeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly reporter: DropReporter;
  private queue: TrackedCall[] = [];
  /** Finished events a flush could not deliver, oldest first. */
  private held: TallyEvent[] = [];
  private inFlight = 0;
  private readonly counts = {
    tracked: 0,
    delivered: 0,
    retries: 0,
    sampledOut: 0,
  };

  constructor(options: EdgeTrackerOptions<Catalog>) {
    if (!options.catalog || typeof options.catalog.has !== 'function') {
      throw new TallyConfigError('createEdgeTracker: `catalog` is required (see defineCatalog)');
    }
    if (options.sink) this.sink = options.sink;
    else if (options.url) {
      this.sink = createFetchSink({
        url: options.url,
        writeKey: options.writeKey,
        fetch: options.fetch,
        timeoutMs: positive('requestTimeoutMs', options.requestTimeoutMs, 5000),
      });
    } else {
      throw new TallyConfigError('createEdgeTracker: give `url` (the collector, e.g. https://…/v1/events) or `sink`');
    }
    this.maxPropertiesBytes = positive('maxPropertiesBytes', options.maxPropertiesBytes, 2048);
    this.finisher = new EventFinisher({
      catalog: options.catalog,
      maxPropertiesBytes: this.maxPropertiesBytes,
      pii: options.pii,
      context: options.context,
      library: { name: EDGE_LIBRARY_NAME, version: VERSION },
    });
    this.rates = samplingRates(options.catalog, options.sampling);
    this.maxQueueEvents = positive('maxQueueEvents', options.maxQueueEvents, 1000);
    this.maxBatchEvents = positive('maxBatchEvents', options.maxBatchEvents, 500);
    this.maxInFlight = positive('maxInFlight', options.maxInFlight, 2);
    this.flushTimeoutMs = positive('flushTimeoutMs', options.flushTimeoutMs, 10_000);
    this.retry = {
      initialMs: positive('retry.initialMs', options.retry?.initialMs, 100),
      maxMs: positive('retry.maxMs', options.retry?.maxMs, 2000),
      maxAttempts: positive('retry.maxAttempts', options.retry?.maxAttempts, 4),
    };
    this.reporter = new DropReporter({
      onError: options.onError,
      warn: (error, message) => console.warn(`[tally] ${error.code}: ${message}`),
    });
  }

  // ---------------------------------------------------------------- intake

  track(
    name: string,
    props: Record<string, unknown> | undefined,
    opts: EdgeTrackOptions | undefined,
    frame: Readonly<TrackContext> | undefined,
  ): void {
    try {
      this.counts.tracked++;
      if (typeof name !== 'string') {
        const shown = String(name);
        this.drop(new TallyError(ErrorCodes.UNKNOWN_EVENT, `unknown event ${shown}`), shown);
        return;
      }
      const rate = this.rates.get(name) ?? 1;
      if (rate < 1 && Math.random() >= rate) {
        this.counts.sampledOut++;
        return;
      }
      // A shallow copy, so a caller reusing its object does not change what was tracked; its size (a
      // lower bound of the JSON's) refuses an event over the limit before it takes queue memory.
      let copy: Record<string, unknown> | undefined;
      let bytes = 0;
      if (props !== undefined && props !== null && typeof props === 'object') {
        copy = { ...props };
        for (const key in copy) {
          const v = copy[key];
          bytes += key.length + (typeof v === 'string' ? v.length : 8);
        }
      }
      if (bytes > this.maxPropertiesBytes) {
        this.drop(
          new TallyError(ErrorCodes.PAYLOAD_TOO_LARGE, `${name}: properties exceed ${this.maxPropertiesBytes} bytes`, {
            event: name,
          }),
          name,
        );
        return;
      }
      const now = Date.now();
      this.push(
        reserveIdInto(
          {
            ms: 0,
            a: 0,
            b: 0,
            name,
            props: copy ?? (props as Record<string, unknown> | undefined),
            build: undefined,
            ts: opts?.timestamp === undefined ? now : timestampMs(opts.timestamp),
            frame,
            tenantId: opts?.tenantId,
            userId: opts?.userId,
            anonymousId: opts?.anonymousId,
            extra: opts?.context,
            rate,
          },
          now,
        ),
      );
    } catch (e) {
      const shown = String(name);
      this.drop(
        new TallyError(ErrorCodes.CALLBACK_FAILED, `track("${shown}") failed: ${(e as Error)?.message}`, {
          event: shown,
        }),
        shown,
      );
    }
  }

  trackRequest(build: () => RequestLogRecord): void {
    this.counts.tracked++;
    // The log carries its own id, born when the request arrived: the call's seed is unused.
    this.push({
      ms: 0,
      a: 0,
      b: 0,
      name: REQUEST_LOG_EVENT,
      props: undefined,
      build,
      ts: Date.now(),
      frame: undefined,
      tenantId: undefined,
      userId: undefined,
      anonymousId: undefined,
      extra: undefined,
      rate: 1,
    });
  }

  /** Queues a call; a full tracker gives up its oldest event (undelivered ones first), with a count. */
  private push(call: TrackedCall): void {
    if (this.queue.length + this.held.length >= this.maxQueueEvents) {
      const old = this.held.length > 0 ? this.held.shift() : this.queue.shift();
      if (old) {
        this.drop(
          new TallyError(
            ErrorCodes.QUEUE_OVERFLOW,
            `tracker full (${this.maxQueueEvents} events held): dropped the oldest; is flush() called for every request?`,
            { event: old.name },
          ),
          old.name,
          'id' in old ? old.id : undefined,
        );
      }
    }
    this.queue.push(call);
  }

  // ---------------------------------------------------------------- flush

  async flush(): Promise<FlushReport> {
    // Counted for this flush alone: two flushes at once (two requests of one isolate) report apart.
    const report: FlushReport = { delivered: 0, dropped: {}, undelivered: 0, pending: 0, timedOut: false };
    const refuse = (error: TallyError, name?: string, id?: string) => {
      report.dropped[error.code] = (report.dropped[error.code] ?? 0) + 1;
      this.drop(error, name, id);
    };
    try {
      // Undelivered events first: they are the oldest. Each flush takes what is held at its call, so
      // two flushes at once never send the same event.
      const events = this.held;
      this.held = [];
      const calls = this.queue;
      this.queue = [];
      for (const call of calls) {
        const e = this.finisher.finish(call);
        if (e instanceof TallyError) refuse(e, call.name);
        else events.push(e);
      }
      if (events.length > 0) await this.send(events, report, refuse);
    } catch (e) {
      // flush() is handed to waitUntil/after, where a rejection is only logged: report it, never reject.
      this.reporter.report(new TallyError(ErrorCodes.CALLBACK_FAILED, `flush failed: ${(e as Error)?.message}`));
    }
    report.pending = this.queue.length + this.held.length;
    return report;
  }

  /** Delivers `events` in batches, `maxInFlight` at a time, within the flush's deadline. */
  private async send(
    events: TallyEvent[],
    report: FlushReport,
    refuse: (error: TallyError, name?: string, id?: string) => void,
  ): Promise<void> {
    const controller = new AbortController();
    const deadline = setTimeout(() => {
      report.timedOut = true;
      controller.abort();
    }, this.flushTimeoutMs);
    const outcomes: DeliveryOutcomes = {
      delivered: (n) => {
        this.counts.delivered += n;
        report.delivered += n;
      },
      refused: (e, error) => refuse(error, e?.name, e?.id),
      retrying: () => this.counts.retries++,
      keep: (kept, error) => {
        report.undelivered += kept.length;
        this.keep(kept, error);
      },
    };
    const batches: TallyEvent[][] = [];
    for (let i = 0; i < events.length; i += this.maxBatchEvents) batches.push(events.slice(i, i + this.maxBatchEvents));
    const worker = async (): Promise<void> => {
      for (let batch = batches.shift(); batch; batch = batches.shift()) {
        this.inFlight += batch.length;
        try {
          await deliverBatch(this.sink, batch, this.retry, controller.signal, outcomes);
        } finally {
          this.inFlight -= batch.length;
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.maxInFlight, batches.length) }, worker));
    } finally {
      // Nothing outlives the flush: the runtime may freeze the isolate as soon as it resolves.
      clearTimeout(deadline);
    }
  }

  /** Holds events a flush could not deliver, for the next one; the bound still applies. */
  private keep(events: TallyEvent[], reason: TallyError): void {
    this.held.push(...events);
    const over = this.queue.length + this.held.length - this.maxQueueEvents;
    for (const old of over > 0 ? this.held.splice(0, over) : []) {
      this.drop(
        new TallyError(ErrorCodes.QUEUE_OVERFLOW, `undelivered events over the tracker's bound; dropped the oldest`, {
          event: old.name,
        }),
        old.name,
        old.id,
      );
    }
    this.reporter.report(
      new TallyError(reason.code, `${events.length} events undelivered, kept for the next flush: ${reason.message}`, {
        events: events.length,
      }),
    );
  }

  // ---------------------------------------------------------------- accounting

  private drop(error: TallyError, name?: string, id?: string): void {
    this.reporter.drop(error, name, id);
  }

  stats(): EdgeTrackerStats {
    return {
      tracked: this.counts.tracked,
      queued: this.queue.length,
      undelivered: this.held.length,
      inFlight: this.inFlight,
      delivered: this.counts.delivered,
      retries: this.counts.retries,
      sampledOut: this.counts.sampledOut,
      dropped: { ...this.reporter.dropped },
    };
  }
}
