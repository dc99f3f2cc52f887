/**
 * The admin API of a running server (in-process, embedded PGlite): who may call it (the admin token from
 * loopback only; admin keys by scope and tenant), its JSON errors, the streamed long operations through
 * the HTTP client the CLI uses, and the key cache it keeps current.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isoTime, TallyError, uuidv7 } from '@tally/core';
import { createApiKey, hashKey } from '@tally/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { eventRow } from '../../store/test/support/stores.js';
import { createRemoteOps } from '../src/admin/client.js';
import { ensureAdminToken } from '../src/admin/state.js';
import type { SystemStatus } from '../src/admin/system.js';
import { createKeyCache } from '../src/key-cache.js';
import { serveFor, type TestServer } from './support/services.js';

describe('admin API', () => {
  let s: TestServer;
  let token: string;
  let url: string;

  beforeAll(async () => {
    s = await serveFor('pglite');
    url = s.server.url;
    token = readFileSync(join(s.dataDir, 'admin-token'), 'utf8').trim();
  });
  afterAll(() => s?.dispose());

  const call = async (method: string, path: string, auth?: string, body?: unknown) => {
    const res = await fetch(`${url}/v1/admin${path}`, {
      method,
      headers: {
        ...(auth ? { authorization: `Bearer ${auth}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> & { error?: { code: string } } };
  };

  it('refuses no credentials and a bad token (401), and the token from a non-loopback address (403)', async () => {
    const none = await call('GET', '/stats');
    expect(none.status).toBe(401);
    expect(none.body.error?.code).toBe('TALLY_UNAUTHORIZED');
    const bad = await call('GET', '/stats', `${token.slice(0, -2)}xx`);
    expect(bad.status).toBe(401);
    expect(bad.body.error).toEqual({ code: 'TALLY_UNAUTHORIZED', message: 'unknown or revoked key' });

    const remote = await s.server.app.inject({
      method: 'GET',
      url: '/v1/admin/stats',
      headers: { authorization: `Bearer ${token}` },
      remoteAddress: '203.0.113.5',
    });
    expect(remote.statusCode).toBe(403);
    expect(remote.json()).toEqual({
      error: {
        code: 'TALLY_FORBIDDEN',
        message: 'the admin token is accepted from loopback only; from elsewhere use a key of scope admin',
      },
    });
    for (const address of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) {
      const local = await s.server.app.inject({
        method: 'GET',
        url: '/v1/admin/status',
        headers: { authorization: `Bearer ${token}` },
        remoteAddress: address,
      });
      expect(local.statusCode, address).toBe(200);
    }
    const ok = await call('GET', '/status', token);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ pid: process.pid, database: `pglite schema ${s.flags.schema}` });
  });

  it('the token file is mode 0600, made once and reused; a loosened mode is tightened again', async () => {
    const file = join(s.dataDir, 'admin-token');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(await ensureAdminToken(s.dataDir)).toBe(token);
    chmodSync(file, 0o644);
    expect(await ensureAdminToken(s.dataDir)).toBe(token);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const fresh = tempDir('tally-token-');
    try {
      const made = await ensureAdminToken(fresh.dir);
      expect(made).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(made).not.toBe(token);
    } finally {
      fresh.cleanup();
    }
  });

  // The refusal of a non-loopback caller is tested through inject above: tests send traffic to loopback
  // addresses only. Here: a server listening on every address still tells the CLI its loopback URL.
  it('a server listening on 0.0.0.0 announces its loopback URL, where the token works', async () => {
    const wide = await serveFor('pglite', { host: '0.0.0.0' });
    try {
      const wideToken = readFileSync(join(wide.dataDir, 'admin-token'), 'utf8').trim();
      const port = new URL(wide.server.url).port;
      const state = JSON.parse(readFileSync(join(wide.dataDir, 'server.json'), 'utf8')) as { url: string };
      expect(state.url).toBe(`http://127.0.0.1:${port}`);
      expect(
        (await fetch(`${state.url}/v1/admin/status`, { headers: { authorization: `Bearer ${wideToken}` } })).status,
      ).toBe(200);
    } finally {
      await wide.dispose();
    }
  });

  it('scopes: write and read keys are refused everywhere; a tenant admin key manages its own keys only', async () => {
    const sql = s.server.store.sql;
    const write = (await createApiKey(sql, 'acme', { scope: 'write' })).key;
    const read = (await createApiKey(sql, 'acme', { scope: 'read' })).key;
    const acmeAdmin = await createApiKey(sql, 'acme', { scope: 'admin' });
    const serverAdmin = (await createApiKey(sql, null, { scope: 'admin' })).key;
    for (const key of [write, read]) {
      for (const [method, path, body] of [
        ['GET', '/stats'],
        ['GET', '/keys'],
        ['POST', '/keys', { tenant: 'acme' }],
        ['GET', '/status'],
      ] as const) {
        const r = await call(method, path, key, body);
        expect(r.status, `${method} ${path}`).toBe(403);
        expect(r.body.error?.code).toBe('TALLY_FORBIDDEN');
      }
    }

    expect((await call('GET', '/tenants', serverAdmin)).status).toBe(200);
    expect((await call('GET', '/stats', serverAdmin)).status).toBe(200);

    const a = acmeAdmin.key;
    const made = await call('POST', '/keys', a, { scope: 'read', name: 'dash' });
    expect(made.status).toBe(200);
    expect(made.body).toMatchObject({ info: { tenantId: 'acme', scope: 'read', name: 'dash' } });
    for (const body of [{ tenant: 'other' }, { tenant: null, scope: 'admin' }]) {
      const r = await call('POST', '/keys', a, body);
      expect(r.status).toBe(403);
      expect(r.body.error?.code).toBe('TALLY_FORBIDDEN');
    }
    const listed = await call('GET', '/keys', a);
    expect((listed.body.keys as { tenantId: string }[]).map((k) => k.tenantId)).toEqual(
      expect.arrayContaining(['acme']),
    );
    expect(new Set((listed.body.keys as { tenantId: string }[]).map((k) => k.tenantId))).toEqual(new Set(['acme']));
    expect((await call('GET', '/keys?tenant=default', a)).status).toBe(403);
    for (const path of ['/tenants', '/stats', '/jobs', '/archive']) {
      expect((await call('GET', path, a)).status, path).toBe(403);
    }
    // Another tenant's key is not found for a tenant's admin key, as elsewhere in the API.
    const other = await createApiKey(sql, 'other', {});
    expect((await call('DELETE', `/keys/${other.info.id}`, a)).status).toBe(404);
    const own = (made.body.info as { id: string }).id;
    expect((await call('DELETE', `/keys/${own}`, a)).body).toEqual({ revoked: own });
  });

  it('bad input answers 400 with a code; an unknown route 404', async () => {
    const scope = await call('POST', '/keys', token, { tenant: 'acme', scope: 'root' });
    expect(scope.status).toBe(400);
    expect(scope.body.error?.code).toBe('TALLY_MALFORMED_BODY');
    expect((await call('PATCH', '/tenants/acme', token, { rateLimit: -1 })).status).toBe(400);
    const tenant = await call('POST', '/keys', token, { tenant: 'bad tenant!' });
    expect(tenant.status).toBe(400);
    expect(tenant.body.error?.code).toBe('TALLY_CONFIG');
    const server = await call('POST', '/keys', token, { scope: 'write' });
    expect(server.status).toBe(400);
    expect((await call('PATCH', '/tenants/nobody', token, { rateLimit: 5 })).body.error?.code).toBe('TALLY_NOT_FOUND');
    expect((await call('GET', '/nope', token)).status).toBe(404);
  });

  it('long operations stream progress as they go; failures come back as TallyErrors with their code', async () => {
    const old = Date.now() - 6 * 86_400_000;
    await s.server.store.insertEvents(
      Array.from({ length: 40 }, (_, i) =>
        eventRow({ id: uuidv7(old + i), tenantId: 'acme', timestamp: isoTime(old + i) }),
      ),
    );
    const ops = createRemoteOps({ url, token }, { store: 'remote' });

    const raw = await fetch(`${url}/v1/admin/cleanup`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ dryRun: true }),
    });
    expect(raw.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const lines = (await raw.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.at(-1)).toEqual({
      result: { mode: 'direct', report: { parts: 0, deleted: 0, eligible: 0, refused: [] } },
    });

    const progress: string[] = [];
    const archived = await ops.runArchive({}, (line) => progress.push(line));
    expect(progress[0]).toBe(`archiving detail older than 3 days to ${join(s.dataDir, 'archive')}…`);
    expect(progress.some((l) => /^archive events acme \d{4}-\d\d-\d\d: 40 rows/.test(l))).toBe(true);
    expect(archived.outcome).toMatchObject({ outcome: 'ok', counts: { rows: 40, files: 1 } });
    const dry = await ops.cleanup({ dryRun: true }, () => undefined);
    expect(dry.report?.eligible).toBe(40);

    const missing = ops.restoreArchive({ tenant: 'nobody', day: '2020-01-01' }, () => undefined);
    await expect(missing).rejects.toBeInstanceOf(TallyError);
    await expect(missing).rejects.toMatchObject({ code: 'TALLY_NOT_FOUND' });
  });

  it('replay uploads the file (renamed first) and the server replays it through its writer', async () => {
    const now = isoTime(Date.now());
    const row = {
      id: uuidv7(),
      name: 'hit',
      tenantId: 't',
      properties: {},
      context: {},
      timestamp: now,
      receivedAt: now,
    };
    const line = JSON.stringify({ kind: 'event', code: 'TALLY_INVALID_ROW', reason: 'fixed', firstSeen: now, row });
    const work = tempDir('tally-replay-');
    try {
      const file = join(work.dir, 'letters.jsonl');
      writeFileSync(file, `${line}\nnot json\n`);
      const ops = createRemoteOps({ url, token }, { store: 'remote' });
      const r = await ops.replay({ file }, () => undefined);
      expect(r).toMatchObject({ stored: 1, duplicates: 0, stillFailing: 0, unreadable: 1 });
      expect(existsSync(file)).toBe(false);
      expect(readdirSync(work.dir).filter((n) => n.startsWith('letters.jsonl.replayed-'))).toHaveLength(1);
      expect(readdirSync(join(s.dataDir, 'spool')).filter((n) => n.includes('replay-upload'))).toEqual([]);
      const n = await s.server.store.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE id = $1', [
        row.id,
      ]);
      expect(Number(n[0]?.n)).toBe(1);
      // A server that cannot be reached: the file is put back.
      writeFileSync(file, `${line}\n`);
      const gone = createRemoteOps({ url: 'http://127.0.0.1:1', token }, { store: 'remote' });
      await expect(gone.replay({ file }, () => undefined)).rejects.toMatchObject({ code: 'TALLY_UNAVAILABLE' });
      expect(readFileSync(file, 'utf8')).toBe(`${line}\n`);
    } finally {
      work.cleanup();
    }
  });
});

describe('key cache', () => {
  it('forget() drops a cached answer: a revoked key, a key tried before it existed', async () => {
    const s = await serveFor('pglite');
    try {
      const sql = s.server.store.sql;
      const cache = createKeyCache(s.server.store);
      const { key, info } = await createApiKey(sql, 'acme', {});
      expect((await cache.resolve(key))?.keyId).toBe(info.id);
      await sql.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [info.id]);
      expect((await cache.resolve(key))?.keyId).toBe(info.id); // cached for 30 s
      cache.forget((owner) => owner?.keyId === info.id);
      expect(await cache.resolve(key)).toBeUndefined();

      const early = 'tk_tried-before-it-existed-000000000';
      expect(await cache.resolve(early)).toBeUndefined();
      await sql.query(
        `INSERT INTO api_keys (id, tenant_id, key_hash, prefix, scope) VALUES ('key_early', 'acme', $1, $2, 'write')`,
        [hashKey(early), early.slice(0, 10)],
      );
      expect(await cache.resolve(early)).toBeUndefined(); // the miss is cached
      cache.forget((owner) => owner === undefined);
      expect((await cache.resolve(early))?.keyId).toBe('key_early');
    } finally {
      await s.dispose();
    }
  });
});

describe('admin API: GET /system', () => {
  it("reports the lag, the writer's queue and counters and the spool's dead letters, to server-wide callers only", async () => {
    const s = await serveFor('pglite');
    try {
      const token = readFileSync(join(s.dataDir, 'admin-token'), 'utf8').trim();
      const get = async (auth: string) => {
        const res = await fetch(`${s.server.url}/v1/admin/system`, { headers: { authorization: `Bearer ${auth}` } });
        return { status: res.status, body: (await res.json()) as SystemStatus & { error: { code: string } } };
      };
      const sql = s.server.store.sql;
      const serverAdmin = (await createApiKey(sql, null, { scope: 'admin' })).key;
      for (const scope of ['read', 'admin'] as const) {
        const tenantKey = (await createApiKey(sql, 'default', { scope })).key;
        const r = await get(tenantKey);
        expect(r.status, scope).toBe(403);
        expect(r.body.error.code).toBe('TALLY_FORBIDDEN');
      }

      const before = await get(token);
      expect(before.status).toBe(200);
      // Nothing stored since start: no lag to speak of, and no spool directory yet.
      expect(before.body).toMatchObject({
        lagSeconds: null,
        writer: { queued: 0, inFlight: 0, stored: 0, deadLettered: 0 },
        transport: { inFlight: 0 },
        live: { clients: 0 },
        spool: { files: [], deadLetterRows: 0, pendingRows: 0 },
      });

      const ageMs = 90_000;
      const posted = await fetch(`${s.server.url}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${s.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          batch: [
            {
              id: uuidv7(),
              name: 'waitlist_joined',
              properties: { source: 'x' },
              timestamp: isoTime(Date.now() - ageMs),
            },
          ],
        }),
      });
      expect(await posted.json()).toMatchObject({ accepted: 1, rejected: [] });
      await s.server.writer.flush();

      const spool = join(s.dataDir, 'spool');
      mkdirSync(spool, { recursive: true });
      writeFileSync(join(spool, 'dead-letters.jsonl'), '{"row":1}\n{"row":2}\n{"row":3, cut by a crash');
      writeFileSync(join(spool, 'pending-1-2.jsonl'), '{"kind":"event"}\n');
      writeFileSync(join(spool, 'dead-letters.jsonl.replayed-5'), '{"row":0}\n');
      const after = await get(serverAdmin);
      expect(after.status).toBe(200);
      expect(after.body.writer).toMatchObject({ queued: 0, stored: 1 });
      expect(after.body.lagSeconds).toBeGreaterThanOrEqual(ageMs / 1000);
      expect(after.body.lagSeconds).toBeLessThan(ageMs / 1000 + 60);
      expect(after.body.spool).toMatchObject({ dir: spool, deadLetterRows: 3, pendingRows: 1 });
      expect(
        after.body.spool.files.map((f: { file: string; kind: string; rows: number }) => [f.file, f.kind, f.rows]),
      ).toEqual([
        ['dead-letters.jsonl', 'dead-letters', 3],
        ['pending-1-2.jsonl', 'pending', 1],
      ]);
    } finally {
      await s.dispose();
    }
  });
});
