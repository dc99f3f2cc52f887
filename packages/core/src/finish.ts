/**
 * Finishing: what turns a `track()` call, kept as cheaply as possible until batch time, into the envelope
 * the wire carries. The Node SDK and the edge SDK both queue calls and finish them off the caller's stack;
 * this is the one place that validates them against the catalog, applies the PII policy, formats the id
 * reserved at the call and builds the context (the tracker's, the scope's and the call's own).
 */
import { createValidator, type Catalog, type Validator } from './catalog.js';
import type { EventContext, TallyEvent } from './envelope.js';
import { ErrorCodes, TallyConfigError, TallyError } from './errors.js';
import { DEFAULT_PII_POLICY, type PiiPolicy } from './pii.js';
import { checkRequestLog, REQUEST_LOG_EVENT, type RequestLogRecord } from './request-log.js';
import { isoTime } from './time.js';
import type { JsonValue } from './schema.js';
import { formatId, type IdSeed } from './uuidv7.js';

/** Who and what an event belongs to: the tracker's base, a scope's (`withContext`) and a call's own. */
export interface TrackContext {
  tenantId?: string;
  userId?: string;
  anonymousId?: string;
  service?: string;
  requestId?: string;
  taskId?: string;
  sessionId?: string;
  [key: string]: JsonValue | undefined;
}

/** A `track()` call as the queue kept it. */
export interface TrackedCall extends IdSeed {
  name: string;
  props: Record<string, unknown> | undefined;
  /** A request log, built at batch time (`$request` envelopes only). */
  build: (() => RequestLogRecord) | undefined;
  /** When the event happened (Unix ms). */
  ts: number;
  /** The scope's context, if the call was made in one. */
  frame: Readonly<TrackContext> | undefined;
  /** From the call's options: they win over the frame's and the tracker's. */
  tenantId: string | undefined;
  userId: string | undefined;
  anonymousId: string | undefined;
  /** The call's own extra context. */
  extra: TrackContext | undefined;
  /** The sampling rate the event survived. */
  rate: number;
}

export interface FinisherOptions {
  catalog: Catalog;
  /** Largest serialized properties object, in bytes. */
  maxPropertiesBytes: number;
  pii?: Partial<PiiPolicy>;
  /** The tracker's context: `tenantId` (default `default`), `userId`, `anonymousId` and the rest. */
  context?: TrackContext;
  /** Stamped on every event as `context.library`. */
  library: { name: string; version: string };
}

const TOP_LEVEL = new Set(['tenantId', 'userId', 'anonymousId']);

export class EventFinisher {
  private readonly validate: Validator;
  private readonly base: { tenantId: string; userId?: string; anonymousId?: string };
  private readonly baseContext: EventContext;
  /** The context of every event with no scope, no extra context and no sampling: one frozen object. */
  readonly sharedContext: Readonly<EventContext>;
  private readonly frameContexts = new WeakMap<object, Readonly<EventContext>>();

  constructor(options: FinisherOptions) {
    const pii: PiiPolicy = { ...DEFAULT_PII_POLICY, ...options.pii };
    if (!['redact', 'reject', 'off'].includes(pii.mode)) {
      throw new TallyConfigError(`pii.mode must be redact, reject or off; got ${String(pii.mode)}`);
    }
    // reuseInput: what reaches the validator is the tracker's own copy of the properties, so a clean one
    // becomes the event's properties as it is, without a second copy at batch time.
    this.validate = createValidator(options.catalog, {
      maxPropertiesBytes: options.maxPropertiesBytes,
      pii,
      reuseInput: true,
    });
    const { tenantId, userId, anonymousId, ...rest } = options.context ?? {};
    this.base = { tenantId: tenantId ?? 'default', userId, anonymousId };
    this.baseContext = { ...rest, library: options.library };
    this.sharedContext = Object.freeze(this.buildContext(undefined, undefined, 1));
  }

  /** The finished event, or the error that refuses it (its code is what the tracker counts). */
  finish(call: TrackedCall): TallyEvent | TallyError {
    if (call.build) return this.finishRequest(call.build);
    const v = this.validate(call.name, call.props);
    if (!v.ok) return v.error;
    const frame = call.frame;
    const event: TallyEvent = {
      id: formatId(call),
      name: call.name,
      tenantId: call.tenantId ?? frame?.tenantId ?? this.base.tenantId,
      properties: v.properties,
      context: this.contextOf(frame, call.extra, call.rate),
      timestamp: isoTime(call.ts),
    };
    const userId = call.userId ?? frame?.userId ?? this.base.userId;
    if (userId !== undefined) event.userId = userId;
    const anonymousId = call.anonymousId ?? frame?.anonymousId ?? this.base.anonymousId;
    if (anonymousId !== undefined) event.anonymousId = anonymousId;
    return event;
  }

  private finishRequest(build: () => RequestLogRecord): TallyEvent | TallyError {
    let log: RequestLogRecord;
    try {
      log = build();
    } catch (e) {
      return new TallyError(ErrorCodes.CALLBACK_FAILED, `building a request log failed: ${(e as Error)?.message}`, {
        event: REQUEST_LOG_EVENT,
      });
    }
    const invalid = checkRequestLog(log);
    if (invalid) return invalid;
    const event: TallyEvent = {
      // The log carries its own id, born when the request arrived.
      id: log.id,
      name: REQUEST_LOG_EVENT,
      tenantId: log.tenantId,
      properties: log as unknown as TallyEvent['properties'],
      context: this.sharedContext,
      timestamp: log.timestamp,
    };
    if (log.userId !== undefined) event.userId = log.userId;
    return event;
  }

  /**
   * The context of an event. Events born in the same scope (or none) share one frozen object: no
   * allocation per event, and sinks can cache its serialization by identity.
   */
  private contextOf(frame: Readonly<TrackContext> | undefined, extra: TrackContext | undefined, rate: number) {
    if (extra === undefined && rate === 1) {
      if (frame === undefined) return this.sharedContext;
      let shared = this.frameContexts.get(frame);
      if (shared === undefined) {
        shared = Object.freeze(this.buildContext(frame, undefined, 1));
        this.frameContexts.set(frame, shared);
      }
      return shared;
    }
    return this.buildContext(frame, extra, rate);
  }

  private buildContext(frame: Readonly<TrackContext> | undefined, extra: TrackContext | undefined, rate: number) {
    // Built key by key: a spread followed by more keys drops V8 into a slow path (~1 µs an event).
    const context: EventContext = {};
    for (const key in this.baseContext) context[key] = this.baseContext[key];
    if (frame) for (const key in frame) if (!TOP_LEVEL.has(key)) setKey(context, key, frame[key]);
    if (extra) for (const key in extra) if (!TOP_LEVEL.has(key)) setKey(context, key, extra[key]);
    if (rate < 1) context.sampleRate = rate;
    return context;
  }
}

/** Each event's sampling rate below 1: the catalog's `sampleRate`, overridden by the tracker's `sampling`. */
export function samplingRates(
  catalog: Catalog,
  overrides: Record<string, number | undefined> = {},
): Map<string, number> {
  const rates = new Map<string, number>();
  for (const name of catalog.names) {
    const rate = catalog.events[name]?.sampleRate;
    if (rate !== undefined && rate < 1) rates.set(name, rate);
  }
  for (const [name, rate] of Object.entries(overrides)) {
    if (!catalog.has(name)) throw new TallyConfigError(`sampling: "${name}" is not in the catalog`);
    if (!(typeof rate === 'number' && rate > 0 && rate <= 1)) {
      throw new TallyConfigError(`sampling.${name} must be in (0, 1]; got ${rate}`);
    }
    rates.set(name, rate);
  }
  return rates;
}

/** Reads a tracker option that must be a positive number, with its default. */
export function positiveOption(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(typeof value === 'number' && value > 0 && Number.isFinite(value))) {
    throw new TallyConfigError(`${name} must be a positive number; got ${String(value)}`);
  }
  return value;
}

/** An event's time from a call's option; a bad one is the caller's bug, but losing the event would be worse. */
export function timestampMs(t: Date | number | string): number {
  const ms = t instanceof Date ? t.getTime() : typeof t === 'number' ? t : Date.parse(t);
  return Number.isFinite(ms) ? ms : Date.now();
}

/**
 * `context[key] = value`, except that a key named `__proto__` (an own key of a scope parsed from JSON) is
 * defined as an own key, as JSON.parse makes it, instead of setting the context's prototype.
 */
function setKey(context: EventContext, key: string, value: EventContext[string]): void {
  if (key === '__proto__') {
    Object.defineProperty(context, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    context[key] = value;
  }
}
