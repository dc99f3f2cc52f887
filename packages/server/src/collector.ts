/**
 * The collector: HTTP ingestion in Tally's own format, Segment's and PostHog's. Every route does the
 * same five steps: read the body (gzip allowed, size-limited after decompression), find the write key's
 * tenant, charge the tenant's token bucket, check each event, publish the good ones and answer once
 * they are durable. A bad event is rejected alone; a bad request never disturbs other tenants.
 */
import { createGunzip, createInflate } from 'node:zlib';
import {
  type BatchRejection,
  type Catalog,
  ErrorCodes,
  isTallyError,
  type PiiPolicy,
  type Transport,
} from '@tally/core';
import type { KeyOwner } from '@tally/store';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { KeyCache } from './key-cache.js';
import { type Acceptor, createAcceptor } from './ingest/accept.js';
import { type ParseResult, parsePosthog, parseSegment, parseTally, SEGMENT_TYPES } from './ingest/formats.js';
import type { Snapshot } from './lifecycle/snapshots.js';
import type { Metrics } from './metrics.js';
import type { RateLimiter } from './rate-limit.js';

export interface CollectorOptions {
  transport: Transport;
  keys: KeyCache;
  limiter: RateLimiter;
  metrics: Metrics;
  catalog: Catalog;
  maxPropertiesBytes: number;
  pii: PiiPolicy;
  maxBodyBytes: number;
  /** Default events/s per tenant (0: unlimited); a tenant's own setting wins. */
  rateLimit: number;
  /** Default for tenants without their own setting. */
  acceptUnlisted: boolean;
  /** Is the service ready to take traffic (store and transport up)? */
  ready: () => boolean;
  /** The newest hot-path snapshot, held in memory. */
  snapshot?: () => Snapshot | undefined;
  /** Structured logs (faults, refusals worth a look); default: none. */
  logger?: FastifyBaseLogger;
}

type Format =
  { kind: 'tally' } | { kind: 'segment'; type?: (typeof SEGMENT_TYPES)[number] } | { kind: 'posthog'; batch: boolean };

const STATUS: Partial<Record<string, number>> = {
  [ErrorCodes.UNAUTHORIZED]: 401,
  [ErrorCodes.MALFORMED_BODY]: 400,
  [ErrorCodes.PAYLOAD_TOO_LARGE]: 413,
  [ErrorCodes.RATE_LIMITED]: 429,
  [ErrorCodes.OVERLOADED]: 503,
  [ErrorCodes.UNAVAILABLE]: 503,
  [ErrorCodes.SHUTDOWN]: 503,
  [ErrorCodes.NOT_FOUND]: 404,
};

/** A whole-request refusal: status, code, message and maybe a Retry-After. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

export async function buildCollector(options: CollectorOptions): Promise<FastifyInstance> {
  const app = Fastify({
    bodyLimit: options.maxBodyBytes,
    loggerInstance: options.logger,
    // Access logs of a collector under load would be the biggest thing it writes; metrics count requests.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
  });
  const accept: Acceptor = createAcceptor({
    catalog: options.catalog,
    maxPropertiesBytes: options.maxPropertiesBytes,
    pii: options.pii,
  });

  // Compressed bodies: the size limit applies to what they inflate to (a small gzip can be a bomb), so
  // the compressed Content-Length must not be checked against it.
  app.addHook('preParsing', async (request, _reply, payload) => {
    const encoding = request.headers['content-encoding']?.toLowerCase();
    if (encoding === undefined || encoding === 'identity') return payload;
    if (encoding !== 'gzip' && encoding !== 'deflate') {
      throw new Refusal(400, ErrorCodes.MALFORMED_BODY, `unsupported Content-Encoding "${encoding}" (gzip or deflate)`);
    }
    delete request.headers['content-length'];
    const inflate = encoding === 'gzip' ? createGunzip() : createInflate();
    payload.on('error', (e) => inflate.destroy(e));
    return payload.pipe(inflate);
  });
  // Browsers' sendBeacon and some Segment libraries post JSON as text/plain.
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, app.getDefaultJsonParser('error', 'ignore'));

  app.setErrorHandler((error: Error & { code?: string; statusCode?: number }, request, reply) => {
    let status: number;
    let code: string;
    let message = error.message;
    if (error instanceof Refusal) {
      status = error.status;
      code = error.code;
      if (error.retryAfterS !== undefined) void reply.header('retry-after', String(error.retryAfterS));
    } else if (isTallyError(error)) {
      code = error.code;
      status = STATUS[code] ?? 500;
      if (status === 503) void reply.header('retry-after', '1');
    } else if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      status = 413;
      code = ErrorCodes.PAYLOAD_TOO_LARGE;
      message = `request body over ${options.maxBodyBytes} bytes (after decompression); send smaller batches`;
    } else if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      status = 415;
      code = ErrorCodes.MALFORMED_BODY;
      message = 'send JSON (Content-Type: application/json)';
    } else if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
      // Fastify's JSON parse errors, a gzip stream that is not gzip, an empty body.
      status = error.statusCode;
      code = ErrorCodes.MALFORMED_BODY;
      message = `unreadable body: ${error.message}`;
    } else {
      status = 500;
      code = ErrorCodes.INTERNAL;
      request.log.error({ err: error }, 'collector fault');
      message = `internal error (request ${request.id})`;
    }
    options.metrics.refused(code);
    void reply.code(status).send({ error: { code, message } });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .send({ error: { code: ErrorCodes.NOT_FOUND, message: `no route ${request.method} ${request.url}` } });
  });

  async function ingest(request: FastifyRequest, reply: FastifyReply, format: Format) {
    const now = Date.now();
    const body = request.body;
    const owner = await authenticate(request, body);
    const parsed = parse(format, body, owner.tenant.id, now);
    if ('error' in parsed) throw new Refusal(400, ErrorCodes.MALFORMED_BODY, parsed.error);

    const rate = owner.tenant.rateLimit ?? options.rateLimit;
    const charge = options.limiter.take(owner.tenant.id, Math.max(1, parsed.items.length), rate);
    if (!charge.ok) {
      const s = Math.max(1, Math.ceil(charge.retryAfterMs / 1000));
      throw new Refusal(429, ErrorCodes.RATE_LIMITED, `tenant "${owner.tenant.id}" is over ${rate} events/s`, s);
    }

    const tenant = { tenantId: owner.tenant.id, acceptUnlisted: owner.tenant.acceptUnlisted ?? options.acceptUnlisted };
    const accepted = accept(parsed.items, parsed.sentAt, tenant, now);
    // The answer lists both kinds of rejection; the metric counts only the collector's own here, since
    // the writer's dead letters are counted where they are stored (metrics.batchWritten).
    const rejected: BatchRejection[] = [...accepted.rejected];
    let duplicates: number | undefined;
    if (accepted.events.length > 0) {
      const published = await options.transport.publish(accepted.events);
      for (const r of published.rejected) rejected.push({ ...r, index: accepted.positions[r.index] as number });
      duplicates = published.duplicates;
    }
    for (const r of accepted.rejected) options.metrics.rejected(r.code);
    const taken = parsed.items.length - rejected.length;
    options.metrics.accepted(taken);
    rejected.sort((a, b) => a.index - b.index);
    const answer: Record<string, unknown> = { accepted: taken, rejected };
    if (duplicates !== undefined) answer.duplicates = duplicates;
    if (format.kind === 'segment') answer.success = true;
    if (format.kind === 'posthog') answer.status = 1;
    return reply.code(200).send(answer);
  }

  async function authenticate(request: FastifyRequest, body: unknown): Promise<KeyOwner> {
    const key = headerKey(request) ?? bodyKey(body);
    if (key === undefined) {
      throw new Refusal(
        401,
        ErrorCodes.UNAUTHORIZED,
        'no write key: send "Authorization: Bearer <key>" (or Basic with the key as user, Segment-style)',
      );
    }
    let owner: KeyOwner | undefined;
    try {
      owner = await options.keys.resolve(key);
    } catch (e) {
      request.log.error({ err: e }, 'write key lookup failed');
      throw new Refusal(503, ErrorCodes.UNAVAILABLE, 'cannot check the write key now (database unreachable)', 1);
    }
    if (!owner) throw new Refusal(401, ErrorCodes.UNAUTHORIZED, 'unknown or revoked write key');
    return owner;
  }

  const route = (url: string, format: Format) => app.post(url, (request, reply) => ingest(request, reply, format));
  route('/v1/events', { kind: 'tally' });
  route('/v1/batch', { kind: 'segment' });
  for (const type of SEGMENT_TYPES) route(`/v1/${type}`, { kind: 'segment', type });
  for (const url of ['/batch', '/batch/']) route(url, { kind: 'posthog', batch: true });
  for (const url of ['/capture', '/capture/', '/i/v0/e', '/i/v0/e/']) route(url, { kind: 'posthog', batch: false });

  // The newest snapshot of the caller's tenant, from memory: O(1), no query. Read with the write key
  // until read-only keys exist.
  app.get('/v1/snapshots/latest', async (request) => {
    const owner = await authenticate(request, undefined);
    const s = options.snapshot?.();
    if (!s)
      throw new Refusal(
        404,
        ErrorCodes.NOT_FOUND,
        'no snapshot yet (one is taken every --snapshot-every writer batches)',
      );
    const mine = s.tenants[owner.tenant.id] ?? { events: [], paths: [] };
    return { version: s.version, createdAt: s.createdAt, tenantId: owner.tenant.id, ...mine };
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) =>
    options.ready() ? { status: 'ready' } : reply.code(503).send({ status: 'not ready' }),
  );
  app.get('/metrics', async (_request, reply) =>
    reply.type(options.metrics.registry.contentType).send(await options.metrics.registry.metrics()),
  );
  return app;
}

function parse(format: Format, body: unknown, tenantId: string, now: number): ParseResult {
  switch (format.kind) {
    case 'tally':
      return parseTally(body);
    case 'segment':
      return parseSegment(body, tenantId, now, format.type);
    case 'posthog':
      return parsePosthog(body, format.batch, now);
  }
}

function headerKey(request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization;
  if (auth) {
    const [scheme, value] = auth.split(' ', 2);
    if (scheme?.toLowerCase() === 'bearer' && value) return value.trim();
    if (scheme?.toLowerCase() === 'basic' && value) {
      // Segment: the write key is the user name, the password empty.
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const user = decoded.split(':', 1)[0];
      if (user) return user;
    }
  }
  const header = request.headers['x-tally-key'];
  return typeof header === 'string' && header !== '' ? header : undefined;
}

function bodyKey(body: unknown): string | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const b = body as Record<string, unknown>;
  for (const k of ['writeKey', 'api_key', 'token']) if (typeof b[k] === 'string' && b[k] !== '') return b[k];
  return undefined;
}
