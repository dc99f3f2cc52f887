/**
 * The collector: HTTP ingestion in Tally's own format (JSON or protobuf), Segment's and PostHog's. Every
 * route does the same steps: read the body (gzip allowed, size-limited while it inflates), find the tenant
 * of the key (which must be a write key), charge the tenant's token bucket, check each event, keep the
 * refused ones in the quarantine, publish the good ones and answer once they are durable. A bad event is
 * refused alone; a bad request never disturbs other tenants.
 */
import {
  type BatchRejection,
  type Catalog,
  ErrorCodes,
  httpStatusOf,
  type PiiPolicy,
  TallyError,
  type Transport,
  type UnplannedPolicy,
} from '@tally/core';
import type { KeyOwner, KeyScope, Tenant } from '@tally/store';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { type DecodedBatch, decodeBatch, PROTOBUF_CONTENT_TYPES, ProtobufError } from '@tally/core/protobuf';
import { answerClientError, answerOf, requestError } from './http-errors.js';
import { bodyEncoding, inflatingBody } from './ingest/inflate.js';
import type { HttpLimits } from './config.js';
import { drainOnClose } from './http-drain.js';
import { type KeyCache, keyOwner } from './key-cache.js';
import { type Acceptor, createAcceptor } from './ingest/accept.js';
import { type ParseResult, parsePosthog, parseSegment, parseTally, SEGMENT_TYPES } from './ingest/formats.js';
import type { Snapshot } from './lifecycle/snapshots.js';
import type { Metrics } from './metrics.js';
import type { Quarantine } from './quarantine.js';
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
  /** Default for tenants without their own setting. */
  unplanned: UnplannedPolicy;
  /** Where refused events are kept before the request is answered. */
  quarantine: Quarantine;
  /** Is the service ready to take traffic (store and transport up)? */
  ready: () => boolean;
  /** The newest hot-path snapshot, held in memory. */
  snapshot?: () => Snapshot | undefined;
  /** Structured logs (faults, refusals worth a look); default: none. */
  logger?: FastifyBaseLogger;
  /** Timeouts and the connection cap of the HTTP server; default: Node's and Fastify's. */
  http?: HttpLimits;
}

type ParserDone = (err: Error | null, body?: unknown) => void;
/** Fastify's default JSON parser, in the callback form it has. */
type JsonParser = (request: FastifyRequest, body: string, done: ParserDone) => void;

type Format =
  { kind: 'tally' } | { kind: 'segment'; type?: (typeof SEGMENT_TYPES)[number] } | { kind: 'posthog'; batch: boolean };

export async function buildCollector(options: CollectorOptions): Promise<FastifyInstance> {
  const app = Fastify({
    bodyLimit: options.maxBodyBytes,
    loggerInstance: options.logger,
    // Access logs of a collector under load would be the biggest thing it writes; metrics count requests.
    logController: new LogController({ disableRequestLogging: true }),
    // Refused in the onRequest hook below instead, in the collector's JSON and with a Retry-After.
    return503OnClosing: false,
    ...serverLimits(options.http),
    // Malformed HTTP and requests that time out never reach a route: they are answered in the same JSON,
    // and so are the URLs Fastify's router cannot read.
    clientErrorHandler(error, socket) {
      const code = answerClientError(error, socket);
      if (code !== undefined) options.metrics.refused(code);
    },
    frameworkErrors: (error, request, reply) => answerError(error, request, reply),
  });
  if (options.http) app.server.maxConnections = options.http.maxConnections;
  // Node answers an Expect it cannot meet with a bare 417; this says why, in JSON.
  app.server.on('checkExpectation', (_req, res) => {
    options.metrics.refused(ErrorCodes.MALFORMED_BODY);
    const body = JSON.stringify({
      error: { code: ErrorCodes.MALFORMED_BODY, message: 'unsupported Expect header (only 100-continue)' },
    });
    res.writeHead(httpStatusOf(ErrorCodes.MALFORMED_BODY), {
      'content-type': 'application/json; charset=utf-8',
      connection: 'close',
    });
    res.end(body);
  });
  // Connections over the cap are closed on accept, before they cost more than a file descriptor.
  app.server.on('drop', () => options.metrics.connectionDropped());
  drainOnClose(app);
  // After listen(), Fastify no longer listens for server errors (EMFILE on accept, for one): without a
  // listener each would be an uncaught exception.
  app.server.on('error', (e) => app.log.error({ err: e }, 'HTTP server error'));
  const accept: Acceptor = createAcceptor({
    catalog: options.catalog,
    maxPropertiesBytes: options.maxPropertiesBytes,
    pii: options.pii,
  });

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (request) => {
    if (closing) throw new TallyError(ErrorCodes.SHUTDOWN, 'the server is shutting down: send again in a moment');
    // RFC 9112: a server must refuse an HTTP/1.1 request without Host (Node would, but with an empty body).
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      throw new TallyError(ErrorCodes.MALFORMED_BODY, 'an HTTP/1.1 request needs a Host header');
    }
  });

  // Compressed bodies are inflated as they are read, the size limit applying to what they inflate to (a
  // small gzip can be a bomb). The inflating stream is lazy and dies with the response, so a request
  // answered before or without reading its body leaves nothing running (see ingest/inflate.ts).
  app.addHook('preParsing', async (request, reply, payload) => {
    const headers = request.headers;
    const hasBody =
      (headers['content-length'] !== undefined && headers['content-length'] !== '0') ||
      headers['transfer-encoding'] !== undefined;
    if (!hasBody) return payload;
    const encoding = bodyEncoding(headers['content-encoding']);
    if (encoding === undefined) return payload;
    const body = inflatingBody(payload, encoding, options.maxBodyBytes);
    reply.raw.once('close', () => body.destroy());
    return body;
  });
  // JSON bodies are read as bytes and parsed by Fastify's own JSON parser, the bytes kept beside the
  // parsed body: a batch accepted as it came is published as those bytes (see BatchSource), not
  // serialized again. Browsers' sendBeacon and some Segment libraries post JSON as text/plain.
  const rawBodies = new WeakMap<object, Buffer>();
  const keepingBytes = (json: JsonParser) => (request: FastifyRequest, body: Buffer, done: ParserDone) =>
    json(request, body.toString('utf8'), (err, parsed) => {
      if (err === null && typeof parsed === 'object' && parsed !== null) rawBodies.set(parsed, body);
      done(err, parsed);
    });
  app.removeContentTypeParser('application/json');
  // Fastify's defaults for JSON: both kinds of prototype poisoning refused.
  const json = app.getDefaultJsonParser('error', 'error') as JsonParser;
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, keepingBytes(json));
  const plain = app.getDefaultJsonParser('error', 'ignore') as JsonParser;
  app.addContentTypeParser('text/plain', { parseAs: 'buffer' }, keepingBytes(plain));
  // Protobuf batches (proto/tally/v1/batch.proto), read into the batch a JSON body parses to: from there
  // the same checks, quarantine and dedupe. Only `POST /v1/events` speaks it (see ingest).
  const protobufBodies = new WeakSet<object>();
  for (const type of PROTOBUF_CONTENT_TYPES) {
    app.addContentTypeParser(type, { parseAs: 'buffer' }, (_request, body: Buffer, done: ParserDone) => {
      let decoded: DecodedBatch;
      try {
        decoded = decodeBatch(body);
      } catch (e) {
        if (!(e instanceof ProtobufError)) throw e;
        done(new TallyError(ErrorCodes.MALFORMED_BODY, `unreadable protobuf batch: ${e.message}`));
        return;
      }
      protobufBodies.add(decoded);
      done(null, decoded);
    });
  }

  app.setErrorHandler(answerError);
  function answerError(error: Error, request: FastifyRequest, reply: FastifyReply): void {
    let refusal = requestError(error, request, options.maxBodyBytes);
    if (refusal === undefined || refusal.status === 500) {
      // A bug (or an error with no HTTP meaning): the stack goes to the log, the client gets the request id.
      options.metrics.internalError('request');
      request.log.error({ err: error, reqId: request.id }, 'collector fault');
      refusal = new TallyError(ErrorCodes.INTERNAL, `internal error (request ${request.id})`);
    }
    const { status, retryAfterS } = answerOf(refusal);
    if (retryAfterS !== undefined) void reply.header('retry-after', String(retryAfterS));
    // A body left unread (refused before or while it was read) is read to its end and dropped by Node
    // after the answer, within the request timeout. Fastify asks to close the connection instead, but
    // closing under a client still sending resets the connection: the client never sees the answer
    // (an SDK would take a 413 for a network error and send the same oversized batch again).
    reply.removeHeader('connection');
    options.metrics.refused(refusal.code);
    void reply.code(status).send({ error: errorBody(refusal) });
  }
  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .send({ error: { code: ErrorCodes.NOT_FOUND, message: `no route ${request.method} ${request.url}` } });
  });

  async function ingest(request: FastifyRequest, reply: FastifyReply, format: Format) {
    const now = Date.now();
    const body = request.body;
    if (format.kind !== 'tally' && typeof body === 'object' && body !== null && protobufBodies.has(body)) {
      throw new TallyError(
        ErrorCodes.UNSUPPORTED_MEDIA_TYPE,
        `${request.url} takes JSON only: send protobuf batches to POST /v1/events`,
      );
    }
    const owner = await authenticate(request, body, 'write');
    const parsed = parse(format, body, owner.tenant.id, now);
    if ('error' in parsed) throw new TallyError(ErrorCodes.MALFORMED_BODY, parsed.error);

    const rate = owner.tenant.rateLimit ?? options.rateLimit;
    const charge = options.limiter.take(owner.tenant.id, Math.max(1, parsed.items.length), rate);
    if (!charge.ok) {
      const s = Math.max(1, Math.ceil(charge.retryAfterMs / 1000));
      throw new TallyError(ErrorCodes.RATE_LIMITED, `tenant "${owner.tenant.id}" is over ${rate} events/s`, {
        retryAfterS: s,
      });
    }

    const tenant = {
      tenantId: owner.tenant.id,
      acceptUnlisted: owner.tenant.acceptUnlisted ?? options.acceptUnlisted,
      unplanned: owner.tenant.unplanned ?? options.unplanned,
    };
    const accepted = accept(parsed.items, parsed.sentAt, tenant, now);
    // Refused events are kept before anything is published: when they cannot be, the request fails as a
    // whole (503) and the client's retry sends the accepted ones again, which dedupe by id.
    try {
      await options.quarantine.keep({
        tenantId: owner.tenant.id,
        keyId: owner.keyId,
        source: request.routeOptions.url ?? request.url,
        items: parsed.items,
        rejected: accepted.rejected,
        sentAt: parsed.sentAt,
        receivedAt: now,
      });
    } catch (e) {
      request.log.error({ err: e }, 'quarantine unavailable');
      throw new TallyError(ErrorCodes.UNAVAILABLE, 'cannot keep the refused events of this batch now', {
        retryAfterS: 1,
      });
    }
    // The answer lists both kinds of rejection; the metric counts only the collector's own here, since
    // the writer's dead letters are counted where they are stored (metrics.batchWritten).
    const rejected: BatchRejection[] = [...accepted.rejected];
    let duplicates: number | undefined;
    if (accepted.events.length > 0) {
      const raw = format.kind === 'tally' && accepted.verbatim ? rawBodies.get(body as object) : undefined;
      const published = await options.transport.publish(
        accepted.events,
        raw && { body: raw, tenantId: tenant.tenantId, receivedAt: accepted.receivedAt },
      );
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

  /**
   * The key's owner, refused unless its scope allows `need`: ingest takes `write` keys only, so a key
   * that ships inside an app can never read; reads take `read` keys and the tenant's `admin` keys.
   */
  async function authenticate(
    request: FastifyRequest,
    body: unknown,
    need: 'write' | 'read',
  ): Promise<KeyOwner & { tenant: Tenant }> {
    const key = headerKey(request) ?? bodyKey(body);
    if (key === undefined) {
      throw new TallyError(
        ErrorCodes.UNAUTHORIZED,
        `no ${need} key: send "Authorization: Bearer <key>" (or Basic with the key as user, Segment-style)`,
      );
    }
    const owner = await keyOwner(options.keys, key, request.log);
    if (!SCOPES_FOR[need].includes(owner.scope) || owner.tenant === null) {
      throw new TallyError(
        ErrorCodes.FORBIDDEN,
        need === 'write'
          ? `a ${owner.scope} key cannot send events: use a write key (tally keys create --tenant <id>)`
          : `a ${owner.scope} key cannot read: use a read key of the tenant (tally keys create --tenant <id> --scope read)`,
      );
    }
    return owner as KeyOwner & { tenant: Tenant };
  }

  const route = (url: string, format: Format) => app.post(url, (request, reply) => ingest(request, reply, format));
  route('/v1/events', { kind: 'tally' });
  route('/v1/batch', { kind: 'segment' });
  for (const type of SEGMENT_TYPES) route(`/v1/${type}`, { kind: 'segment', type });
  for (const url of ['/batch', '/batch/']) route(url, { kind: 'posthog', batch: true });
  for (const url of ['/capture', '/capture/', '/i/v0/e', '/i/v0/e/']) route(url, { kind: 'posthog', batch: false });

  // The newest snapshot of the caller's tenant, from memory: O(1), no query.
  app.get('/v1/snapshots/latest', async (request) => {
    const owner = await authenticate(request, undefined, 'read');
    const s = options.snapshot?.();
    if (!s)
      throw new TallyError(
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

/**
 * The error object of an answer: code and message, and the details a client acts on (which field of a
 * query is wrong, the timeout it ran into). Other details stay in the server: they may be internal.
 */
export function errorBody(error: TallyError): { code: string; message: string; details?: Record<string, unknown> } {
  const body: { code: string; message: string; details?: Record<string, unknown> } = {
    code: error.code,
    message: error.message,
  };
  const details: Record<string, unknown> = {};
  for (const key of ['path', 'timeoutMs'] as const) {
    if (error.details[key] !== undefined) details[key] = error.details[key];
  }
  if (Object.keys(details).length > 0) body.details = details;
  return body;
}

const SCOPES_FOR: Record<'write' | 'read', readonly KeyScope[]> = { write: ['write'], read: ['read', 'admin'] };

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

/** The API key a request carries: `Authorization: Bearer`, Basic (the key as user) or `X-Tally-Key`. */
export function headerKey(request: FastifyRequest): string | undefined {
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

/** Fastify and node:http options for the limits (config.ts SETTINGS says what each one bounds). */
function serverLimits(limits: HttpLimits | undefined) {
  // The collector refuses a Host-less HTTP/1.1 request itself, in JSON (see the onRequest hook).
  if (!limits) return { http: { requireHostHeader: false } };
  const shortest = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  return {
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    http: {
      requireHostHeader: false,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node enforces the headers and request timeouts in a sweep over all connections at this interval
      // (30 s by default, which would stretch a 10 s timeout to 40 s).
      connectionsCheckingInterval: Math.max(25, Math.min(1000, Math.floor(shortest / 4))),
    },
  };
}
