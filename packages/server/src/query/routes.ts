/**
 * The read side of the HTTP API, on the collector's app (its error answers, body limit and shutdown
 * refusal apply): `POST /v1/query` (any query kind, JSON or CSV), `GET /v1/query/logs/:id` (one request
 * log with its bodies), `GET /v1/live` (server-sent events of what this server stores),
 * `GET /v1/export` (a range of detail rows, streamed) and `GET /v1/whoami` (the key's tenant and scope).
 *
 * Who may read: a read key reads its tenant; an admin key of a tenant reads that tenant; a server-wide
 * admin key reads the tenant named by `?tenant=`. Write keys, which ship inside apps, never read.
 */
import { createGzip } from 'node:zlib';
import { pipeline } from 'node:stream';
import type { Readable } from 'node:stream';
import { csvTable, ErrorCodes, isUuid, parseQuery, TallyError } from '@tally/core';
import type { Store } from '@tally/store';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { headerKey } from '../collector.js';
import { type KeyCache, keyOwner } from '../key-cache.js';
import { type ExportRegistry, type ExportRequest, exportStream, parseExportParams } from './export.js';
import type { LiveFilter, LiveHub, LiveKind } from './live.js';

export interface QueryRoutesOptions {
  store: Store;
  keys: KeyCache;
  live: LiveHub;
  exports: ExportRegistry;
  /** Statement timeout of one query, ms. */
  timeoutMs: number;
  /** Most rows one answer holds. */
  maxRows: number;
  /** The catalog's event names: an explore of events marks each listed or not. */
  listedEvents?: readonly string[];
  /** Rows per page of an export. Default 5000. */
  exportPageRows?: number;
}

const TENANT_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const MAX_NAMES = 50;

export async function queryRoutes(app: FastifyInstance, options: QueryRoutesOptions): Promise<void> {
  const { store, live, exports } = options;

  app.addHook('preClose', async () => {
    // Streams would hold the server's drain open: live clients get a last frame and are let go; an export
    // in progress is cut (its client sees a broken transfer, not a short file that looks whole).
    live.closeAll();
    exports.abortAll();
  });

  /** The tenant the caller may read (see the module comment). */
  async function readerOf(request: FastifyRequest): Promise<string> {
    const key = headerKey(request);
    if (key === undefined) {
      throw new TallyError(ErrorCodes.UNAUTHORIZED, 'no read key: send "Authorization: Bearer <read key>"');
    }
    const owner = await keyOwner(options.keys, key, request.log);
    if (owner.scope === 'write') throw writeKeyCannotRead();
    const asked = (request.query as Record<string, unknown>).tenant;
    if (asked !== undefined && (typeof asked !== 'string' || !TENANT_ID.test(asked))) {
      throw new TallyError(ErrorCodes.BAD_QUERY, 'tenant: must be a tenant id', { path: 'tenant' });
    }
    if (owner.tenant === null) {
      if (asked === undefined) {
        throw new TallyError(
          ErrorCodes.BAD_QUERY,
          'tenant: a server-wide admin key reads one tenant at a time: add ?tenant=<id>',
          { path: 'tenant' },
        );
      }
      return asked;
    }
    if (asked !== undefined && asked !== owner.tenant.id) {
      throw new TallyError(ErrorCodes.FORBIDDEN, `this key reads tenant "${owner.tenant.id}" only`);
    }
    return owner.tenant.id;
  }

  // Who a key is, for a client deciding what to show (the dashboard's sign-in): refused as any read is,
  // so a write key learns here that it cannot read.
  app.get('/v1/whoami', async (request) => {
    const key = headerKey(request);
    if (key === undefined) {
      throw new TallyError(ErrorCodes.UNAUTHORIZED, 'no read key: send "Authorization: Bearer <read key>"');
    }
    const owner = await keyOwner(options.keys, key, request.log);
    if (owner.scope === 'write') throw writeKeyCannotRead();
    return { tenant: owner.tenant?.id ?? null, scope: owner.scope, keyId: owner.keyId };
  });

  app.post('/v1/query', async (request, reply) => {
    const tenant = await readerOf(request);
    const format = answerFormat(request);
    const parsed = parseQuery(request.body);
    if (!parsed.ok) throw parsed.error;
    const result = await store.query(tenant, parsed.query, {
      timeoutMs: options.timeoutMs,
      maxRows: options.maxRows,
      listedEvents: options.listedEvents,
    });
    if (format === 'csv') {
      return reply
        .type('text/csv; charset=utf-8; header=present')
        .header('x-tally-truncated', String(result.meta.truncated))
        .send(
          csvTable(
            result.columns.map((c) => c.name),
            result.rows,
          ),
        );
    }
    return { columns: result.columns, rows: result.rows, meta: result.meta };
  });

  app.get<{ Params: { id: string } }>('/v1/query/logs/:id', async (request) => {
    const tenant = await readerOf(request);
    const { id } = request.params;
    if (!isUuid(id))
      throw new TallyError(ErrorCodes.BAD_QUERY, 'id: must be a request log id (a UUID)', { path: 'id' });
    const log = await store.requestLog(tenant, null, id.toLowerCase());
    if (!log) throw new TallyError(ErrorCodes.NOT_FOUND, `no request log ${id} in tenant "${tenant}"`);
    return log;
  });

  app.get('/v1/live', async (request, reply) => {
    const tenant = await readerOf(request);
    const filter = liveFilter(request.query as Record<string, unknown>);
    if (!live.canAttach()) {
      throw new TallyError(ErrorCodes.UNAVAILABLE, 'too many live streams open on this server; try again later', {
        retryAfterS: 5,
      });
    }
    reply.hijack();
    live.attach(tenant, filter, reply.raw);
  });

  app.get('/v1/export', async (request, reply) => {
    const tenant = await readerOf(request);
    const query = request.query as Record<string, unknown>;
    const req = parseExportParams(query);
    const gzipParam = query.gzip;
    if (gzipParam !== undefined && gzipParam !== '1' && gzipParam !== '0') {
      throw new TallyError(ErrorCodes.BAD_QUERY, 'gzip: must be 1 or 0', { path: 'gzip' });
    }
    const acceptsGzip = /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''));
    return sendExport(request, reply, tenant, req, {
      file: gzipParam === '1',
      encoding: !(gzipParam === '1') && gzipParam !== '0' && acceptsGzip,
    });
  });

  async function sendExport(
    request: FastifyRequest,
    reply: FastifyReply,
    tenant: string,
    req: ExportRequest,
    gzip: { file: boolean; encoding: boolean },
  ): Promise<FastifyReply> {
    const abort = new AbortController();
    const tracked = exports.start(() => abort.abort());
    const done = () => {
      tracked.done();
      abort.abort();
    };
    reply.raw.once('close', done);
    const source = exportStream(store, tenant, req, { pageRows: options.exportPageRows, signal: abort.signal });
    // The first chunk is read before the status is sent: a failure there (the database unreachable) is
    // answered with its status and JSON, not as a broken 200.
    let first: unknown;
    try {
      first = await firstChunk(source);
    } catch (e) {
      done();
      source.destroy();
      throw e;
    }
    if (first !== null) source.unshift(first as Buffer);
    let body: Readable = source;
    if (gzip.file || gzip.encoding) {
      const gz = createGzip();
      body = pipeline(source, gz, (e) => {
        if (e && !abort.signal.aborted) request.log.warn({ err: e }, 'export stopped');
      });
    }
    abort.signal.addEventListener('abort', () => {
      // Shutdown or a client gone: stop reading pages and cut the response.
      if (!reply.raw.writableFinished) reply.raw.destroy();
      source.destroy();
    });
    const ext = `${req.format}${gzip.file ? '.gz' : ''}`;
    const name = `tally-${tenant}-${req.kind}-${new Date(req.from).toISOString().slice(0, 10)}-${new Date(req.to).toISOString().slice(0, 10)}.${ext}`;
    void reply
      .header('content-disposition', `attachment; filename="${name}"`)
      .header('cache-control', 'no-store')
      .type(
        gzip.file
          ? 'application/gzip'
          : req.format === 'csv'
            ? 'text/csv; charset=utf-8; header=present'
            : 'application/x-ndjson; charset=utf-8',
      );
    if (gzip.encoding) void reply.header('content-encoding', 'gzip').header('vary', 'accept-encoding');
    return reply.send(body);
  }
}

function writeKeyCannotRead(): TallyError {
  return new TallyError(
    ErrorCodes.FORBIDDEN,
    'a write key cannot read: use a read key of the tenant (tally keys create --tenant <id> --scope read)',
  );
}

/** Waits for the stream's first chunk (null at its end without one); rejects with its error. */
function firstChunk(stream: Readable): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      stream.off('readable', onReadable);
      stream.off('error', onError);
      stream.off('end', onEnd);
    };
    const onReadable = () => {
      const chunk = stream.read();
      if (chunk === null) return;
      cleanup();
      resolve(chunk);
    };
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    const onEnd = () => {
      cleanup();
      resolve(null);
    };
    stream.on('readable', onReadable);
    stream.on('error', onError);
    stream.on('end', onEnd);
  });
}

/** `?format=csv` or `Accept: text/csv`; JSON otherwise. */
function answerFormat(request: FastifyRequest): 'json' | 'csv' {
  const format = (request.query as Record<string, unknown>).format;
  if (format !== undefined) {
    if (format !== 'json' && format !== 'csv') {
      throw new TallyError(ErrorCodes.BAD_QUERY, 'format: must be "json" or "csv"', { path: 'format' });
    }
    return format;
  }
  return /\btext\/csv\b/.test(String(request.headers.accept ?? '')) ? 'csv' : 'json';
}

function liveFilter(q: Record<string, unknown>): LiveFilter {
  const one = (name: string): string | undefined => {
    const v = q[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') {
      throw new TallyError(ErrorCodes.BAD_QUERY, `${name}: give it once (a list is comma-separated)`, { path: name });
    }
    return v;
  };
  const list = (name: string) =>
    one(name)
      ?.split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
  const kinds = list('kind') ?? ['events', 'logs'];
  for (const k of kinds) {
    if (k !== 'events' && k !== 'logs') {
      throw new TallyError(ErrorCodes.BAD_QUERY, 'kind: must be events, logs or events,logs', { path: 'kind' });
    }
  }
  if (kinds.length === 0) {
    throw new TallyError(ErrorCodes.BAD_QUERY, 'kind: must be events, logs or events,logs', { path: 'kind' });
  }
  const filter: LiveFilter = { kinds: new Set(kinds as LiveKind[]) };
  const names = list('name');
  if (names !== undefined) {
    if (names.length === 0 || names.length > MAX_NAMES || names.some((n) => n.length > 200)) {
      throw new TallyError(
        ErrorCodes.BAD_QUERY,
        `name: 1 to ${MAX_NAMES} comma-separated event names of at most 200 characters`,
        { path: 'name' },
      );
    }
    filter.names = new Set(names);
  }
  const userId = one('userId');
  if (userId !== undefined) {
    if (userId === '' || userId.length > 200) {
      throw new TallyError(ErrorCodes.BAD_QUERY, 'userId: 1 to 200 characters', { path: 'userId' });
    }
    filter.userId = userId;
  }
  return filter;
}
