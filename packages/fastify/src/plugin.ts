/**
 * Request logging for Fastify. The hot path does only cheap work: in `onRequest` it reserves the log's
 * id, reads the clock, puts one small object in a slot of the raw response and attaches two listeners
 * shared by all responses to its `finish` and `close` (`onResponse` misses client aborts; the raw events
 * see every request exactly once). No closures per request but the record's `finish`, no listener
 * removal (measured at ~2 µs a request). What costs (redacting headers, the URL and the error,
 * serializing, truncating and redacting the bodies) happens in `finish()` of the record, which the
 * consumer calls at batch time, off the response path. What is redacted is decided in redact.ts.
 */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import {
  DEFAULT_EXCLUDED_ROUTES,
  DEFAULT_PII_KEYS,
  ErrorCodes,
  errorText,
  formatId,
  headerRedaction,
  type IdSeed,
  type IpPolicy,
  isoTime,
  maskIp as maskIpWith,
  Redactor,
  type RequestLogPolicy,
  type RequestLogRecord,
  reserveId,
  TallyConfigError,
  withheld,
} from '@tally/core';
import { BodyCapture, captureResponse } from './body-capture.js';

export { DEFAULT_EXCLUDED_ROUTES, DEFAULT_REDACTED_HEADERS, type IpPolicy } from '@tally/core';

export interface RequestLogOptions extends RequestLogPolicy {
  /**
   * The tracker the logs go through (its queue, batching, retries, spool and shutdown drain): with the
   * `direct` sink into this process's store, with the http sink to a collector.
   */
  tracker?: TrackerLike;
  /** Lower level: receives every finished request instead; `record.finish()` builds the log. */
  onRecord?: (record: PendingRequestLog) => void;
  /** Who made the request. Default: `request.user?.id`, `request.user?.apiKeyId`, `request.user?.tenantId`. */
  identify?: Identify;
}

export type Identify = (
  request: FastifyRequest,
) => { userId?: string; apiKeyId?: string; tenantId?: string } | undefined;

/** What the plugin needs of a tracker (`createTracker(...)` fits). */
export interface TrackerLike {
  trackRequest(build: () => RequestLogRecord): void;
  track(name: string, properties?: object, options?: { tenantId?: string; userId?: string }): void;
}

/** The finished, redacted log of one request (the `request_logs` row without `receivedAt`). */
export type RequestLog = RequestLogRecord & {
  responseBytes: number;
  headers: Record<string, string>;
  bodyTruncated: boolean;
  aborted: boolean;
};

/** A request that completed; its details are computed on `finish()`, once. */
export interface PendingRequestLog {
  readonly aborted: boolean;
  readonly status: number;
  finish(): RequestLog;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by `quotaExceeded()`: the log records the refusal. */
    tallyError?: string;
  }
  interface FastifyInstance {
    /** The plugin's tracker and identify hook, for `quotaExceeded()` and the app's own events. */
    tally?: { tracker?: TrackerLike; identify: Identify };
  }
}

/** Where a response keeps its pending log: one symbol slot, read by the two listeners all responses share. */
const PENDING = Symbol('tally.pendingLog');

type LoggedResponse = ServerResponse & { [PENDING]?: Pending };

/**
 * One request's log in waiting: everything the hot path records, in one object. `finish` is the only
 * closure per request (the tracker calls it unbound, at batch time).
 */
class Pending implements PendingRequestLog {
  aborted = false;
  status = 0;
  durationMs = 0;
  done = false;
  capture: BodyCapture | undefined = undefined;
  /** The error Fastify's error handling saw, if any (its message is redacted at build time). */
  error: unknown = undefined;
  readonly finish: () => RequestLog;

  constructor(
    readonly request: FastifyRequest,
    readonly reply: FastifyReply,
    readonly route: string | undefined,
    readonly seed: IdSeed,
    readonly start: number,
    build: (pending: Pending) => RequestLog,
  ) {
    this.finish = () => build(this);
  }
}

const plugin: FastifyPluginCallback<RequestLogOptions> = (app: FastifyInstance, options, done) => {
  const onRecord =
    options.onRecord ?? (options.tracker && ((r: PendingRequestLog) => options.tracker?.trackRequest(r.finish)));
  if (!onRecord) {
    done(new TallyConfigError('@tally/fastify: pass `tracker` (createTracker with a sink) or `onRecord`'));
    return;
  }
  const identify = options.identify ?? defaultIdentify;
  app.decorate('tally', { tracker: options.tracker, identify });
  const bodyLimit = options.bodyLimit ?? 4096;
  const exclude = new Set(options.exclude ?? DEFAULT_EXCLUDED_ROUTES);
  const include = options.include ? new Set(options.include) : undefined;
  const sampleRate = options.sampleRate ?? 1;
  if (!(sampleRate > 0 && sampleRate <= 1)) {
    done(new TallyConfigError(`@tally/fastify: sampleRate must be in (0, 1]; got ${sampleRate}`));
    return;
  }
  const ipPolicy = options.ip ?? 'truncate';
  const redactor = new Redactor({ keys: DEFAULT_PII_KEYS, paths: options.redactBodyPaths });
  const headerValue = headerRedaction(redactor, options.redactHeaders);
  const captureBodies = options.captureResponseBody !== false;

  /** Completion, seen once per request: `finish` (sent in full) or `close` first (the client went away). */
  function complete(res: LoggedResponse, aborted: boolean): void {
    const pending = res[PENDING];
    if (pending === undefined || pending.done) return;
    pending.done = true;
    pending.durationMs = performance.now() - pending.start;
    pending.aborted = aborted;
    pending.status = aborted && !res.headersSent ? 499 : res.statusCode;
    try {
      onRecord?.(pending);
    } catch {
      // This runs in a `finish` listener, where a throw would crash the app: a broken consumer loses
      // its own log, nothing more (the tracker's trackRequest never throws).
    }
  }
  // Shared by every response; the state is in the response's slot. They stay attached after firing
  // (the response is dropped after `close`): cheaper than removing them, and `done` makes them inert.
  function onFinish(this: LoggedResponse): void {
    complete(this, false);
  }
  function onClose(this: LoggedResponse): void {
    complete(this, !this.writableFinished);
  }

  app.addHook('onRequest', (request, reply, next) => {
    // routeOptions builds a fresh object on every read: read once, keep the template.
    const route = request.routeOptions.url;
    if ((route !== undefined && exclude.has(route)) || (include && (route === undefined || !include.has(route)))) {
      return next();
    }
    if (sampleRate < 1 && Math.random() >= sampleRate) return next();
    const res = reply.raw as LoggedResponse;
    const pending = new Pending(request, reply, route, reserveId(), performance.now(), build);
    if (captureBodies) pending.capture = captureResponse(res, bodyLimit);
    res[PENDING] = pending;
    res.on('finish', onFinish);
    res.on('close', onClose);
    next();
  });

  // Runs only for requests that fail: the success path pays nothing for it.
  app.addHook('onError', (_request, reply, error, next) => {
    const pending = (reply.raw as LoggedResponse)[PENDING];
    if (pending !== undefined) pending.error = error;
    next();
  });

  function build(pending: Pending): RequestLog {
    const { request, reply } = pending;
    let who: ReturnType<Identify>;
    try {
      who = identify(request);
    } catch {
      who = undefined;
    }
    const headers: Record<string, string> = {};
    const requestHeaders = request.headers;
    for (const name in requestHeaders) {
      const value = requestHeaders[name];
      if (value === undefined) continue;
      headers[name] = headerValue(name, Array.isArray(value) ? value.join(', ') : value);
    }
    const responseHeaders = reply.getHeaders();
    for (const name in responseHeaders) {
      const value = responseHeaders[name];
      if (value === undefined) continue;
      headers[responseKey(name)] = headerValue(
        name.toLowerCase(),
        Array.isArray(value) ? value.join(', ') : String(value),
      );
    }
    const log: RequestLog = {
      id: formatId(pending.seed),
      tenantId: who?.tenantId ?? options.tenantId ?? 'default',
      requestId: String(request.id),
      method: request.method,
      route: pending.route,
      url: redactor.url(request.url),
      status: pending.status,
      durationMs: pending.durationMs,
      responseBytes: pending.capture?.total ?? Number(reply.getHeader('content-length') ?? 0),
      headers,
      bodyTruncated: false,
      aborted: pending.aborted,
      timestamp: isoTime(Number(pending.seed.ms)),
    };
    const length = Number(requestHeaders['content-length']);
    if (Number.isFinite(length)) log.requestBytes = length;
    if (who?.userId !== undefined) log.userId = who.userId;
    if (who?.apiKeyId !== undefined) log.apiKeyId = who.apiKeyId;
    const ip = maskIp(request.ip, ipPolicy);
    if (ip !== undefined) log.ip = ip;
    const ua = requestHeaders['user-agent'];
    if (ua) log.userAgent = ua;
    if (options.captureRequestBody !== false && request.body !== undefined) {
      const body = requestBody(request.body, requestHeaders['content-type']);
      log.requestBody = body.text;
      log.bodyTruncated = body.truncated;
    }
    if (pending.capture) {
      const type = reply.getHeader('content-type');
      const encoding = reply.getHeader('content-encoding');
      const parts = pending.capture.parts();
      // Compressed bytes cannot be checked, and decoded as text they are noise that might still inflate.
      const body =
        typeof encoding === 'string' && encoding !== 'identity'
          ? { text: withheld(parts, `${encoding}-encoded data`), truncated: parts.omittedBytes > 0 }
          : redactor.body(parts, typeof type === 'string' ? type : undefined);
      log.responseBody = body.text;
      log.bodyTruncated ||= body.truncated;
    }
    const error = errorText(request.tallyError ?? pending.error, redactor);
    if (error !== undefined) log.error = error;
    else if (pending.status >= 500) log.error = `HTTP ${pending.status}`;
    return log;
  }

  /** The request body as text, cut to `bodyLimit` and redacted knowing where the cut is (see redact.ts). */
  function requestBody(body: unknown, contentType: string | undefined): { text: string; truncated: boolean } {
    let text: string;
    let type = contentType;
    if (typeof body === 'string' || Buffer.isBuffer(body)) text = body.toString();
    else {
      // A parsed body (JSON, or a form a parser turned into an object) is logged as JSON.
      type = 'application/json';
      try {
        text = JSON.stringify(body) ?? '';
      } catch {
        return { text: '[unserializable body]', truncated: false };
      }
    }
    const capture = new BodyCapture(bodyLimit);
    capture.add(text);
    return redactor.body(capture.parts(), type);
  }

  done();
};

/** `response.<name>` keys, made once per header name rather than once per log (names repeat). */
const responseKeys = new Map<string, string>();
function responseKey(name: string): string {
  let key = responseKeys.get(name);
  if (key === undefined) {
    key = `response.${name}`;
    // Bounded: an app that invents header names per response must not grow this forever.
    if (responseKeys.size < 1024) responseKeys.set(name, key);
  }
  return key;
}

/** The Fastify plugin (encapsulation skipped, so it sees every route of the app). */
export const tallyRequestLog = fp(plugin, { fastify: '5.x', name: '@tally/fastify' });

function defaultIdentify(
  request: FastifyRequest,
): { userId?: string; apiKeyId?: string; tenantId?: string } | undefined {
  const user = (request as FastifyRequest & { user?: { id?: unknown; apiKeyId?: unknown; tenantId?: unknown } }).user;
  if (!user || typeof user !== 'object') return undefined;
  const str = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined);
  return { userId: str(user.id), apiKeyId: str(user.apiKeyId), tenantId: str(user.tenantId) };
}

function safe<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

/** IPv4 keeps its /24, IPv6 its /48; `hash` is a SHA-256 prefix (stable, not reversible by lookup of a few IPs). */
export function maskIp(ip: string | undefined, policy: IpPolicy): string | undefined {
  return maskIpWith(ip, policy, sha256Hex);
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * For a preHandler that refuses a request for quota: answers 429 with a JSON code (and Retry-After),
 * marks the request log, and tracks a `quota_exceeded` event (tenant, user, quota, limit, usage) through
 * the plugin's tracker; its catalog needs that event (the support-bot catalog has it).
 */
export function quotaExceeded(
  request: FastifyRequest,
  reply: FastifyReply,
  details: { quota: string; limit: number; usage: number; retryAfterSeconds?: number; period?: string },
): FastifyReply {
  request.tallyError = `${ErrorCodes.QUOTA_EXCEEDED}: ${details.quota} ${details.usage}/${details.limit}`;
  const tally = request.server.tally;
  const who = tally && safe(() => tally.identify(request));
  tally?.tracker?.track(
    'quota_exceeded',
    {
      quota: details.quota,
      limit: details.limit,
      usage: details.usage,
      ...(details.period ? { period: details.period } : {}),
      ...(request.routeOptions.url ? { route: request.routeOptions.url } : {}),
    },
    { ...(who?.tenantId ? { tenantId: who.tenantId } : {}), ...(who?.userId ? { userId: who.userId } : {}) },
  );
  if (details.retryAfterSeconds !== undefined) reply.header('retry-after', String(details.retryAfterSeconds));
  return reply.code(429).send({
    error: {
      code: ErrorCodes.QUOTA_EXCEEDED,
      message: `quota "${details.quota}" used up (${details.usage}/${details.limit})`,
    },
  });
}
