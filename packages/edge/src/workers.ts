/**
 * Request logging for a Cloudflare Workers app (or any `fetch(request, env, ctx)` handler), as the Fastify
 * plugin logs a Node app: method, route, status, duration, sizes, redacted headers and URL, bodies cut to
 * `bodyLimit` and redacted, the error of a handler that throws. The response goes back untouched; its
 * body (streamed ones too) is read from a clone after it is sent, inside `ctx.waitUntil`, which then
 * flushes the tracker, so the app's own events travel in the same flush.
 */
import {
  DEFAULT_EXCLUDED_ROUTES,
  DEFAULT_PII_KEYS,
  errorText,
  formatId,
  headerRedaction,
  type IpPolicy,
  isoTime,
  maskIp,
  Redactor,
  type RequestLogPolicy,
  type RequestLogRecord,
  reserveId,
  TallyConfigError,
  withheld,
  type BodyParts,
} from '@tally/core';
import { captureStream } from './body.js';
import type { EdgeTracker } from './tracker.js';

/** What the middleware needs of the runtime's context: Workers' `ExecutionContext` fits. */
export interface WaitUntil {
  waitUntil(promise: Promise<unknown>): void;
}

export type FetchHandler<Env, Ctx extends WaitUntil> = (
  request: Request,
  env: Env,
  ctx: Ctx,
) => Response | Promise<Response>;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any catalog: the middleware tracks only `$request`
type AnyEdgeTracker = EdgeTracker<any>;

export interface RequestLogOptions<Env> extends Omit<RequestLogPolicy, 'ip'> {
  /** The tracker the logs go through, or how to make it from `env` (where Workers keep secrets). */
  tracker: AnyEdgeTracker | ((env: Env) => AnyEdgeTracker);
  /**
   * The route template of a request (`/users/:id`): what the history and the route table group by. A
   * Worker has no router of its own to ask; without it, logs carry no route (keeping its cardinality low),
   * and `exclude` and `include` match the path.
   */
  route?: (request: Request) => string | undefined;
  /** Who made the request. */
  identify?: (request: Request, env: Env) => { userId?: string; apiKeyId?: string; tenantId?: string } | undefined;
  /** What is kept of the client IP (`CF-Connecting-IP`): `hash` needs a synchronous SHA-256, which Workers lack. */
  ip?: Exclude<IpPolicy, 'hash'>;
}

const NO_BODY = new Set(['GET', 'HEAD']);

/** Wraps a `fetch` handler so that every request it serves is logged and the tracker flushed after it. */
export function withRequestLog<Env, Ctx extends WaitUntil>(
  handler: FetchHandler<Env, Ctx>,
  options: RequestLogOptions<Env>,
): FetchHandler<Env, Ctx> {
  if (!options || !options.tracker) {
    throw new TallyConfigError('withRequestLog: pass `tracker` (createEdgeTracker, or a function of env)');
  }
  const sampleRate = options.sampleRate ?? 1;
  if (!(sampleRate > 0 && sampleRate <= 1)) {
    throw new TallyConfigError(`withRequestLog: sampleRate must be in (0, 1]; got ${sampleRate}`);
  }
  if ((options.ip as string | undefined) === 'hash') {
    throw new TallyConfigError(
      'withRequestLog: ip "hash" needs a synchronous SHA-256, which Workers lack; use "truncate"',
    );
  }
  const bodyLimit = options.bodyLimit ?? 4096;
  const ipPolicy = options.ip ?? 'truncate';
  const exclude = new Set(options.exclude ?? DEFAULT_EXCLUDED_ROUTES);
  const include = options.include ? new Set(options.include) : undefined;
  const redactor = new Redactor({ keys: DEFAULT_PII_KEYS, paths: options.redactBodyPaths });
  const headerValue = headerRedaction(redactor, options.redactHeaders);
  const trackerOf = (env: Env) => (typeof options.tracker === 'function' ? options.tracker(env) : options.tracker);

  return async (request, env, ctx) => {
    const tracker = trackerOf(env);
    const seed = reserveId();
    const start = Date.now();
    const url = new URL(request.url);
    const route = safe(() => options.route?.(request));
    const key = route ?? url.pathname;
    const logged =
      !exclude.has(key) && (!include || include.has(key)) && (sampleRate === 1 || Math.random() < sampleRate);
    const requestBody =
      logged && options.captureRequestBody !== false && request.body && !NO_BODY.has(request.method)
        ? captureStream(request.clone().body as ReadableStream<Uint8Array>, bodyLimit).catch(() => undefined)
        : undefined;
    let response: Response | undefined;
    let thrown: unknown;
    try {
      response = await handler(request, env, ctx);
    } catch (e) {
      thrown = e;
    }
    const durationMs = Date.now() - start;
    // 101 (WebSocket) responses have no body to clone.
    const responseBody =
      logged && response?.body && response.status !== 101 && options.captureResponseBody !== false
        ? captureStream(response.clone().body as ReadableStream<Uint8Array>, bodyLimit).catch(() => undefined)
        : undefined;
    ctx.waitUntil(
      (async () => {
        if (logged) {
          const [req, res] = await Promise.all([requestBody, responseBody]);
          tracker.trackRequest(() => build(request, env, response, thrown, { seed, url, route, durationMs, req, res }));
        }
        await tracker.flush();
      })(),
    );
    if (response === undefined) throw thrown;
    return response;
  };

  function build(
    request: Request,
    env: Env,
    response: Response | undefined,
    thrown: unknown,
    seen: {
      seed: ReturnType<typeof reserveId>;
      url: URL;
      route: string | undefined;
      durationMs: number;
      req: BodyParts | undefined;
      res: BodyParts | undefined;
    },
  ): RequestLogRecord {
    const who = safe(() => options.identify?.(request, env));
    const url = seen.url;
    const headers: Record<string, string> = {};
    request.headers.forEach((value, name) => (headers[name] = headerValue(name, value)));
    response?.headers.forEach((value, name) => (headers[`response.${name}`] = headerValue(name, value)));
    const log: RequestLogRecord = {
      id: formatId(seen.seed),
      tenantId: who?.tenantId ?? options.tenantId ?? 'default',
      method: request.method,
      url: redactor.url(url.pathname + url.search),
      status: response?.status ?? 500,
      durationMs: seen.durationMs,
      responseBytes: seen.res?.bytes ?? Number(response?.headers.get('content-length') ?? 0),
      headers,
      bodyTruncated: false,
      aborted: false,
      timestamp: isoTime(seen.seed.ms),
    };
    if (seen.route !== undefined) log.route = seen.route;
    const requestId = request.headers.get('cf-ray') ?? request.headers.get('x-request-id');
    if (requestId) log.requestId = requestId;
    const length = Number(request.headers.get('content-length') ?? Number.NaN);
    if (Number.isFinite(length)) log.requestBytes = length;
    else if (seen.req) log.requestBytes = seen.req.bytes;
    if (who?.userId !== undefined) log.userId = who.userId;
    if (who?.apiKeyId !== undefined) log.apiKeyId = who.apiKeyId;
    const ip = maskIp(request.headers.get('cf-connecting-ip') ?? undefined, ipPolicy);
    if (ip !== undefined) log.ip = ip;
    const ua = request.headers.get('user-agent');
    if (ua) log.userAgent = ua;
    if (seen.req) {
      const body = redactor.body(seen.req, request.headers.get('content-type') ?? undefined);
      log.requestBody = body.text;
      log.bodyTruncated = body.truncated;
    }
    if (seen.res && response) {
      const encoding = response.headers.get('content-encoding');
      // Compressed bytes cannot be checked, and decoded as text they are noise.
      const body =
        encoding && encoding !== 'identity'
          ? { text: withheld(seen.res, `${encoding}-encoded data`), truncated: seen.res.omittedBytes > 0 }
          : redactor.body(seen.res, response.headers.get('content-type') ?? undefined);
      log.responseBody = body.text;
      log.bodyTruncated ||= body.truncated;
    }
    const error = errorText(thrown, redactor);
    if (error !== undefined) log.error = error;
    else if (log.status >= 500) log.error = `HTTP ${log.status}`;
    return log;
  }
}

function safe<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}
