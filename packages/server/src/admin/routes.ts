/**
 * The admin API under `/v1/admin`, on the server's own port: the same operations as the CLI (AdminOps),
 * for the CLI while `tally serve` holds the database and for scripts with an admin key.
 *
 * Who may call: the data directory's admin token (`Authorization: Bearer <admin-token>`), only from a
 * loopback address, since the token is a file on this machine; or an API key of scope `admin`, from
 * anywhere. A server-wide admin key (no tenant) may do everything; a tenant's admin key manages its own
 * tenant's keys and nothing else. Keys of scope write or read are refused (403) on every route.
 *
 * Long operations answer NDJSON: `{"progress": "…"}` lines as they go, then one `{"result": …}` or
 * `{"error": {"code", "message"}}` line (the status is sent before the outcome is known).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ErrorCodes, isTallyError, TallyError, UNPLANNED_POLICIES } from '@tally/core';
import { KEY_SCOPES, type KeyScope } from '@tally/store';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { KeyCache } from '../key-cache.js';
import type { AdminOps, Progress, RejectedFilter, TenantSettings } from './ops.js';
import { isLoopback } from './state.js';
import type { SystemStatus } from './system.js';

export interface AdminStatus {
  pid: number;
  version: string;
  startedAt: string;
  /** `PGlite at …` / `Postgres host, schema s`. */
  store: string;
  /** Which database (see databaseOf), for the CLI to check it found the server of its own. */
  database: string;
}

export interface AdminRoutesOptions {
  ops: AdminOps;
  /** The data directory's admin token. */
  token: string;
  keys: KeyCache;
  status: AdminStatus;
  /** Where an uploaded replay file is kept while it is replayed. */
  spoolDir: string;
  /** Seconds between keep-alive lines on a streamed answer. Default 10. */
  heartbeatS?: number;
  /** The running server's ingestion state (GET /system); absent, the route answers 404. */
  system?: () => Promise<SystemStatus>;
}

/** Who is calling: the admin token, or an admin key (of one tenant, or server-wide when tenant is null). */
type Caller = { kind: 'token' } | { kind: 'key'; keyId: string; tenant: string | null };

const callers = new WeakMap<FastifyRequest, Caller>();

export async function adminRoutes(app: FastifyInstance, options: AdminRoutesOptions): Promise<void> {
  const { ops } = options;
  const tokenDigest = digest(options.token);

  // Errors are answered by the collector's handler, which these routes inherit: the same JSON, status
  // table, Retry-After and fault logging as every other route.
  // The replay file comes as the body, streamed to disk as it arrives (it can be large).
  app.addContentTypeParser('application/x-ndjson', (_request, payload, done) => done(null, payload));

  app.addHook('onRequest', async (request) => {
    callers.set(request, await authenticate(request));
  });

  async function authenticate(request: FastifyRequest): Promise<Caller> {
    const [scheme, value] = (request.headers.authorization ?? '').split(' ', 2);
    if (scheme?.toLowerCase() !== 'bearer' || !value) {
      throw new TallyError(
        ErrorCodes.UNAUTHORIZED,
        'the admin API needs "Authorization: Bearer <admin token or admin key>"',
      );
    }
    if (timingSafeEqual(digest(value), tokenDigest)) {
      if (!isLoopback(request.socket.remoteAddress)) {
        throw new TallyError(
          ErrorCodes.FORBIDDEN,
          'the admin token is accepted from loopback only; from elsewhere use a key of scope admin',
        );
      }
      return { kind: 'token' };
    }
    let owner;
    try {
      owner = await options.keys.resolve(value);
    } catch (e) {
      request.log.error({ err: e }, 'admin key lookup failed');
      throw new TallyError(ErrorCodes.UNAVAILABLE, 'cannot check the key now (database unreachable)');
    }
    if (!owner) throw new TallyError(ErrorCodes.UNAUTHORIZED, 'unknown or revoked key');
    if (owner.scope !== 'admin') {
      throw new TallyError(
        ErrorCodes.FORBIDDEN,
        `a ${owner.scope} key cannot use the admin API (tally keys create --scope admin makes an admin key)`,
      );
    }
    return { kind: 'key', keyId: owner.keyId, tenant: owner.tenant?.id ?? null };
  }

  const callerOf = (request: FastifyRequest) => callers.get(request) as Caller;
  /** The tenant a caller is confined to, or undefined for the whole server. */
  const confinedTo = (c: Caller): string | undefined => (c.kind === 'key' && c.tenant !== null ? c.tenant : undefined);
  const who = (c: Caller) => (c.kind === 'token' ? 'admin token' : `key ${c.keyId}`);
  function serverWide(request: FastifyRequest): Caller {
    const c = callerOf(request);
    const tenant = confinedTo(c);
    if (tenant !== undefined) {
      throw new TallyError(ErrorCodes.FORBIDDEN, `an admin key of tenant "${tenant}" manages that tenant's keys only`);
    }
    return c;
  }
  function sameTenant(c: Caller, tenant: string | null | undefined): void {
    const own = confinedTo(c);
    if (own !== undefined && tenant !== undefined && tenant !== own) {
      throw new TallyError(
        ErrorCodes.FORBIDDEN,
        `an admin key of tenant "${own}" cannot manage keys of ${tenant === null ? 'the whole server' : `tenant "${tenant}"`}`,
      );
    }
  }

  app.get('/status', async () => options.status);

  app.post('/migrate', async (request) => {
    const c = serverWide(request);
    const r = await ops.migrate();
    if (r.applied.length > 0) request.log.info({ admin: 'migrate', by: who(c), applied: r.applied }, 'admin: migrated');
    return r;
  });

  app.post<{ Body: { tenant?: string | null; scope?: KeyScope; name?: string } }>(
    '/keys',
    {
      schema: {
        body: {
          type: 'object',
          properties: {
            tenant: { type: ['string', 'null'] },
            scope: { type: 'string', enum: [...KEY_SCOPES] },
            name: { type: 'string', maxLength: 200 },
          },
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const c = callerOf(request);
      const body = request.body ?? {};
      sameTenant(c, body.tenant);
      const tenant = body.tenant === undefined ? (confinedTo(c) ?? null) : body.tenant;
      const created = await ops.createKey({ tenant, scope: body.scope ?? 'write', name: body.name });
      request.log.info(
        { admin: 'keys.create', by: who(c), keyId: created.info.id, tenant, scope: created.info.scope },
        'admin: key created',
      );
      return created;
    },
  );

  app.get<{ Querystring: { tenant?: string } }>(
    '/keys',
    { schema: { querystring: { type: 'object', properties: { tenant: { type: 'string' } } } } },
    async (request) => {
      const c = callerOf(request);
      sameTenant(c, request.query.tenant);
      return { keys: await ops.listKeys({ tenant: request.query.tenant ?? confinedTo(c) }) };
    },
  );

  app.delete<{ Params: { key: string } }>('/keys/:key', async (request) => {
    const c = callerOf(request);
    // A tenant's admin key sees its own keys only: another tenant's key is "not found", as elsewhere.
    const r = await ops.revokeKey({ key: request.params.key, tenant: confinedTo(c) });
    request.log.info({ admin: 'keys.revoke', by: who(c), keyId: r.revoked }, 'admin: key revoked');
    return r;
  });

  app.get('/tenants', async (request) => {
    serverWide(request);
    return { tenants: await ops.listTenants() };
  });

  app.patch<{ Params: { id: string }; Body: TenantSettings }>(
    '/tenants/:id',
    {
      schema: {
        body: {
          type: 'object',
          properties: {
            acceptUnlisted: { type: ['boolean', 'null'] },
            rateLimit: { type: ['integer', 'null'], minimum: 0 },
            unplanned: { type: ['string', 'null'], enum: [...UNPLANNED_POLICIES, null] },
          },
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const c = serverWide(request);
      const tenant = await ops.setTenant({ id: request.params.id, settings: request.body ?? {} });
      request.log.info({ admin: 'tenants.set', by: who(c), tenant: tenant.id, ...request.body }, 'admin: tenant set');
      return { tenant };
    },
  );

  app.get('/stats', async (request) => {
    serverWide(request);
    return ops.stats();
  });

  app.get('/system', async (request) => {
    serverWide(request);
    if (!options.system)
      throw new TallyError(ErrorCodes.NOT_FOUND, 'this admin API has no running server to report on');
    return options.system();
  });

  app.get<{ Querystring: { job?: string; limit?: number } }>(
    '/jobs',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: { job: { type: 'string' }, limit: { type: 'integer', minimum: 1, maximum: 1000 } },
        },
      },
    },
    async (request) => {
      serverWide(request);
      return { runs: await ops.jobs({ job: request.query.job, limit: request.query.limit }) };
    },
  );

  app.get<{ Querystring: { tenant?: string } }>(
    '/archive',
    { schema: { querystring: { type: 'object', properties: { tenant: { type: 'string' } } } } },
    async (request) => {
      serverWide(request);
      return { parts: await ops.listArchive({ tenant: request.query.tenant }) };
    },
  );

  app.post<{ Body: { olderThanDays?: number } }>(
    '/archive/run',
    {
      schema: {
        body: {
          type: 'object',
          properties: { olderThanDays: { type: 'integer', minimum: 1 } },
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const c = serverWide(request);
      request.log.info({ admin: 'archive.run', by: who(c) }, 'admin: archive run');
      return stream(reply, (progress) => ops.runArchive({ olderThanDays: request.body?.olderThanDays }, progress));
    },
  );

  app.post<{ Body: { tenant: string; day: string } }>(
    '/archive/restore',
    {
      schema: {
        body: {
          type: 'object',
          required: ['tenant', 'day'],
          properties: { tenant: { type: 'string' }, day: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' } },
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const c = serverWide(request);
      request.log.info({ admin: 'archive.restore', by: who(c), ...request.body }, 'admin: archive restore');
      return stream(reply, (progress) => ops.restoreArchive(request.body, progress));
    },
  );

  app.post<{ Body: { dryRun?: boolean; includeRestored?: boolean } }>(
    '/cleanup',
    {
      schema: {
        body: {
          type: 'object',
          properties: { dryRun: { type: 'boolean' }, includeRestored: { type: 'boolean' } },
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const c = serverWide(request);
      request.log.info({ admin: 'cleanup', by: who(c), ...request.body }, 'admin: cleanup');
      return stream(reply, (progress) => ops.cleanup(request.body ?? {}, progress));
    },
  );

  app.post('/replay', async (request, reply) => {
    const c = serverWide(request);
    if (!request.headers['content-type']?.startsWith('application/x-ndjson')) {
      throw new TallyError(
        ErrorCodes.UNSUPPORTED_MEDIA_TYPE,
        'send the spool file as the body with Content-Type: application/x-ndjson',
      );
    }
    // The upload lands beside the spool, so the writer's rename-then-replay works on it as on any file.
    await mkdir(options.spoolDir, { recursive: true });
    const upload = join(options.spoolDir, `replay-upload-${Date.now()}-${randomBytes(4).toString('hex')}.jsonl`);
    try {
      await pipeline(request.body as Readable, createWriteStream(upload, { mode: 0o600 }));
    } catch (e) {
      await rm(upload, { force: true });
      throw new TallyError(ErrorCodes.MALFORMED_BODY, `the upload broke off: ${(e as Error).message}`);
    }
    request.log.info({ admin: 'replay', by: who(c) }, 'admin: replay');
    return stream(reply, async (progress) => {
      try {
        return await ops.replay({ file: upload }, progress);
      } finally {
        await removeReplayed(upload);
      }
    });
  });

  const rejectedProperties = {
    tenant: { type: 'string' },
    code: { type: 'string' },
    name: { type: 'string' },
    since: { type: 'string' },
  } as const;
  /** A tenant's admin key sees and replays its own tenant's refused events only. */
  function ownRejected<F extends { tenant?: string }>(request: FastifyRequest, filter: F): F {
    const own = confinedTo(callerOf(request));
    if (own === undefined) return filter;
    if (filter.tenant !== undefined && filter.tenant !== own) {
      throw new TallyError(ErrorCodes.FORBIDDEN, `an admin key of tenant "${own}" sees that tenant's events only`);
    }
    return { ...filter, tenant: own };
  }

  app.get<{ Querystring: RejectedFilter & { limit?: number } }>(
    '/rejected',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: { ...rejectedProperties, limit: { type: 'integer', minimum: 1, maximum: 10_000 } },
        },
      },
    },
    async (request) => ops.listRejected(ownRejected(request, request.query)),
  );

  app.post<{ Body: RejectedFilter & { dryRun?: boolean } }>(
    '/rejected/replay',
    {
      schema: {
        body: {
          type: 'object',
          properties: { ...rejectedProperties, dryRun: { type: 'boolean' } },
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const filter = ownRejected(request, request.body ?? {});
      request.log.info({ admin: 'rejected.replay', by: who(callerOf(request)), ...filter }, 'admin: rejected replay');
      return stream(reply, (progress) => ops.replayRejected(filter, progress));
    },
  );

  app.post<{ Body: { tenant: string; query: unknown } }>(
    '/query',
    {
      schema: {
        body: {
          type: 'object',
          required: ['tenant', 'query'],
          properties: { tenant: { type: 'string' }, query: {} },
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const c = callerOf(request);
      const own = confinedTo(c);
      if (own !== undefined && request.body.tenant !== own) {
        throw new TallyError(ErrorCodes.FORBIDDEN, `an admin key of tenant "${own}" reads that tenant only`);
      }
      return ops.query(request.body);
    },
  );

  app.post<{ Body: { from?: string; to?: string } }>(
    '/rollups/rebuild',
    {
      schema: {
        body: {
          type: 'object',
          properties: { from: { type: 'string', maxLength: 40 }, to: { type: 'string', maxLength: 40 } },
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const c = serverWide(request);
      request.log.info({ admin: 'rollups.rebuild', by: who(c), ...request.body }, 'admin: rollups rebuild');
      return stream(reply, (progress) => ops.rebuildRollups(request.body ?? {}, progress));
    },
  );

  function stream(reply: FastifyReply, run: (progress: Progress) => Promise<unknown>): FastifyReply {
    const out = new PassThrough();
    // The caller may hang up; the operation runs to its end regardless (it is recorded in job_runs).
    out.on('error', () => undefined);
    const line = (value: unknown) => {
      if (!out.writableEnded) out.write(`${JSON.stringify(value)}\n`);
    };
    const heartbeat = setInterval(() => line({ heartbeat: true }), (options.heartbeatS ?? 10) * 1000);
    heartbeat.unref();
    void run((text) => line({ progress: text })).then(
      (result) => {
        clearInterval(heartbeat);
        out.end(`${JSON.stringify({ result })}\n`);
      },
      (e: unknown) => {
        clearInterval(heartbeat);
        const error = isTallyError(e)
          ? { code: e.code, message: e.message }
          : { code: ErrorCodes.INTERNAL, message: (e as Error).message };
        if (!isTallyError(e)) reply.log.error({ err: e }, 'admin operation failed');
        out.end(`${JSON.stringify({ error })}\n`);
      },
    );
    return reply.type('application/x-ndjson').header('cache-control', 'no-store').send(out);
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** The writer renames a replayed file to `<file>.replayed-<ms>`; the uploaded copy is not worth keeping. */
async function removeReplayed(upload: string): Promise<void> {
  const dir = dirname(upload);
  const base = basename(upload);
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name === base || name.startsWith(`${base}.replayed-`)) await rm(join(dir, name), { force: true });
  }
}
