/**
 * `POST /v1/query` and `GET /v1/query/logs/:id` over real HTTP, on PGlite and Postgres, with events and
 * request logs of two tenants sent through the collector: who may read what (read, admin, write, no key;
 * one tenant's key never sees the other's rows), bad queries naming the field, CSV with the formula
 * guard, the body limit, and (Postgres) a query cancelled by its timeout.
 */
import { createApiKey, rollupDimensions } from '@tally/store';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needs } from '../../node/test/support/service-gate.js';
import { type Answer, call, event, requestLog, send } from './support/read-api.js';
import { PG_URL, pg, serveFor, type TestServer } from './support/services.js';

const backends: ('pglite' | 'postgres')[] = ['pglite', ...(needs(pg).runs ? (['postgres'] as const) : [])];

describe.each(backends)('query API (%s)', (backend) => {
  let s: TestServer;
  let base: string;
  const keys: Record<string, string> = {};
  const ids = { logA: '', logB: '' };
  const explore = { kind: 'explore', range: { last: '24h' } };
  const logsQuery = { kind: 'logs', range: { last: '24h' } };
  const q = (body: unknown, key?: string, path = '/v1/query', headers?: Record<string, string>) =>
    call(base, 'POST', path, { key, body, headers });

  beforeAll(async () => {
    s = await serveFor(backend, {
      'max-body-bytes': '65536',
      // Long enough for any query here; the lock test below makes one wait longer.
      ...(backend === 'postgres' ? { 'query-timeout-ms': '3000' } : {}),
    });
    base = s.server.url;
    const sql = s.server.store.sql;
    keys.writeA = (await createApiKey(sql, 'acme')).key;
    keys.readA = (await createApiKey(sql, 'acme', { scope: 'read' })).key;
    keys.adminA = (await createApiKey(sql, 'acme', { scope: 'admin' })).key;
    keys.writeB = (await createApiKey(sql, 'globex')).key;
    keys.readB = (await createApiKey(sql, 'globex', { scope: 'read' })).key;
    keys.admin = (await createApiKey(sql, null, { scope: 'admin' })).key;

    const logA = requestLog({
      route: '/users/:id',
      url: '=HYPERLINK("http://evil.example","x")',
      status: 500,
      userId: 'u-a',
      requestBody: '{"secret":"[REDACTED]"}',
      responseBody: 'boom',
      headers: { 'user-agent': 'test' },
      apiKeyId: 'key_app',
      ip: '203.0.113.7',
      streamBody: 'data: one\n\ndata: two\n\n',
    });
    const logB = requestLog({ route: '/globex-only', url: '/globex-only', status: 200, userId: 'u-b' });
    ids.logA = logA.id;
    ids.logB = logB.id;
    await send(base, keys.writeA as string, [
      ...Array.from({ length: 4 }, (_, i) =>
        event(
          'conversation_started',
          { conversationId: `c${i}`, channel: i < 3 ? 'web' : 'slack' },
          { userId: `u${i}` },
        ),
      ),
      event('escalation_triggered', { conversationId: 'c1', reason: 'angry' }, { userId: 'u1' }),
      logA,
    ]);
    await send(base, keys.writeB as string, [
      event('checkout_completed', { orderId: 'o1', plan: 'pro', amountCents: 900, currency: 'EUR' }),
      event('checkout_completed', { orderId: 'o2', plan: 'pro', amountCents: 900, currency: 'EUR' }),
      logB,
    ]);
  }, 120_000);
  afterAll(() => s?.dispose());

  const error = (r: Answer) => r.json?.error as { code: string; message: string; details?: { path?: string } };

  it("the server rolls up the catalog's enum and boolean properties", async () => {
    const dims = await rollupDimensions(s.server.store.sql);
    expect([...(dims.get('conversation_started')?.keys() ?? [])]).toEqual(['channel']);
    expect([...(dims.get('message_sent')?.keys() ?? [])]).toEqual(['role']);
    expect([...(dims.get('escalation_triggered')?.keys() ?? [])]).toEqual(['automatic']);
    expect(dims.has('ingest_started')).toBe(false);
  });

  it('who may query: a read key, an admin key of the tenant, a server-wide admin key naming the tenant', async () => {
    expect((await q(explore)).status).toBe(401);
    expect(error(await q(explore))).toMatchObject({ code: 'TALLY_UNAUTHORIZED' });
    expect((await q(explore, 'tk_not_a_key')).status).toBe(401);
    const write = await q(explore, keys.writeA);
    expect(write.status).toBe(403);
    expect(error(write).message).toMatch(/read key/);

    for (const key of [keys.readA, keys.adminA]) expect((await q(explore, key)).status).toBe(200);
    const wide = await q(explore, keys.admin);
    expect(wide.status).toBe(400);
    expect(error(wide)).toMatchObject({ code: 'TALLY_BAD_QUERY', details: { path: 'tenant' } });
    expect((await q(explore, keys.admin, '/v1/query?tenant=acme')).status).toBe(200);
    // A tenant's key names its own tenant or none.
    expect((await q(explore, keys.readA, '/v1/query?tenant=acme')).status).toBe(200);
    expect((await q(explore, keys.readA, '/v1/query?tenant=globex')).status).toBe(403);
    expect((await q(explore, keys.adminA, '/v1/query?tenant=globex')).status).toBe(403);
    expect((await q(explore, keys.admin, '/v1/query?tenant=no%20such')).status).toBe(400);
  });

  it("one tenant's key sees its own rows and never the other's", async () => {
    const a = await q(explore, keys.readA);
    const b = await q(explore, keys.readB);
    expect(a.status).toBe(200);
    expect(a.json).toMatchObject({
      columns: expect.any(Array),
      rows: expect.any(Array),
      meta: { source: expect.any(String) },
    });
    const names = (r: Answer) => (r.json.rows as unknown[][]).map((row) => row[0]);
    expect(names(a)).toEqual(expect.arrayContaining(['conversation_started', 'escalation_triggered']));
    expect(names(a)).not.toContain('checkout_completed');
    // The server's catalog lists these: explore says so, to make events nobody declared stand out.
    expect((a.json.columns as { name: string }[]).map((c) => c.name)).toContain('listed');
    for (const row of a.json.rows as unknown[][]) expect(row[3]).toBe(true);
    expect(names(b)).toEqual(['checkout_completed']);
    // The server-wide admin key reads the tenant it names.
    expect(names(await q(explore, keys.admin, '/v1/query?tenant=globex'))).toEqual(['checkout_completed']);

    const logsA = JSON.stringify((await q(logsQuery, keys.readA)).json.rows);
    const logsB = JSON.stringify((await q(logsQuery, keys.readB)).json.rows);
    expect(logsA).toContain(ids.logA);
    expect(logsA).not.toContain(ids.logB);
    expect(logsA).not.toContain('globex-only');
    expect(logsB).toContain(ids.logB);
    expect(logsB).not.toContain(ids.logA);
  });

  it('a bad query is 400 TALLY_BAD_QUERY naming the field', async () => {
    const cases: [unknown, string][] = [
      [{ kind: 'trends', series: [{ event: 'a', measure: 'bogus' }] }, 'series[0].measure'],
      [{ kind: 'funnel', steps: [{ event: 'a' }, { event: 'b', window: 'soon' }] }, 'steps[1].window'],
      [{ kind: 'trends', series: [{ event: 'a' }], intreval: 'day' }, 'intreval'],
      [{ kind: 'nope' }, 'kind'],
      [{ kind: 'logs', range: { from: '2026-01-02', to: '2026-01-01' } }, 'range.to'],
      [[1, 2], 'query'],
    ];
    for (const [body, path] of cases) {
      const r = await q(body, keys.readA);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(error(r)).toMatchObject({ code: 'TALLY_BAD_QUERY', details: { path } });
      expect(error(r).message).toContain(path);
    }
    const notJson = await call(base, 'POST', '/v1/query', { key: keys.readA, raw: '{"kind":' });
    expect(notJson.status).toBe(400);
    expect(error(notJson).code).toBe('TALLY_MALFORMED_BODY');
    const big = await q({ kind: 'explore', pad: 'x'.repeat(70_000) }, keys.readA);
    expect(big.status).toBe(413);
    expect(error(big).code).toBe('TALLY_PAYLOAD_TOO_LARGE');
    const format = await q(explore, keys.readA, '/v1/query?format=xml');
    expect(error(format)).toMatchObject({ code: 'TALLY_BAD_QUERY', details: { path: 'format' } });
  });

  it('CSV: ?format=csv or Accept: text/csv; header row, RFC 4180 quoting, formula cells guarded', async () => {
    const json = await q(logsQuery, keys.readA);
    const csv = await q(logsQuery, keys.readA, '/v1/query?format=csv');
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = csv.text.split('\r\n');
    expect(lines[0]).toBe((json.json.columns as { name: string }[]).map((c) => c.name).join(','));
    expect(lines.at(-1)).toBe('');
    expect(lines).toHaveLength((json.json.rows as unknown[]).length + 2);
    // The URL a client sent as a formula is text in a spreadsheet: a leading ' and RFC 4180 quotes.
    expect(csv.text).toContain(`"'=HYPERLINK(""http://evil.example"",""x"")"`);
    expect(csv.text).toContain(ids.logA);
    const accepted = await q(logsQuery, keys.readA, '/v1/query', { accept: 'text/csv' });
    expect(accepted.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(accepted.text.split('\r\n')[0]).toBe(lines[0]);
  });

  it('one request log with its bodies, for read and admin keys of its tenant only', async () => {
    const path = (id: string) => `/v1/query/logs/${id}`;
    const mine = await call(base, 'GET', path(ids.logA), { key: keys.readA });
    expect(mine.status).toBe(200);
    expect(mine.json).toMatchObject({
      id: ids.logA,
      status: 500,
      route: '/users/:id',
      requestBody: '{"secret":"[REDACTED]"}',
      responseBody: 'boom',
      // Who sent it and the stream's capture: the tenant's readers see them (a user's own history does not).
      userId: 'u-a',
      apiKeyId: 'key_app',
      ip: '203.0.113.7',
      streamBody: 'data: one\n\ndata: two\n\n',
    });
    expect((await call(base, 'GET', path(ids.logA), { key: keys.adminA })).status).toBe(200);
    expect((await call(base, 'GET', `${path(ids.logB)}?tenant=globex`, { key: keys.admin })).status).toBe(200);
    // Another tenant's log is not found, whoever asks in this tenant's name.
    const other = await call(base, 'GET', path(ids.logB), { key: keys.readA });
    expect(other.status).toBe(404);
    expect(error(other).code).toBe('TALLY_NOT_FOUND');
    expect((await call(base, 'GET', `${path(ids.logA)}?tenant=globex`, { key: keys.admin })).status).toBe(404);
    expect((await call(base, 'GET', path(ids.logA), { key: keys.writeA })).status).toBe(403);
    expect((await call(base, 'GET', path(ids.logA))).status).toBe(401);
    for (const bad of ['not-a-uuid', '%00', "1'%20OR%20'1'='1", 'x'.repeat(5000)]) {
      const r = await call(base, 'GET', path(bad), { key: keys.readA });
      expect([400, 404], bad).toContain(r.status);
      // A URL the router cannot decode (%00) is the framework's malformed request; still a typed 400.
      expect(error(r).code).toMatch(/^TALLY_(BAD_QUERY|NOT_FOUND|MALFORMED_BODY)$/);
    }
  });

  // PGlite cannot interrupt a statement: the timeout is Postgres's.
  if (backend === 'postgres')
    it('a query past --query-timeout-ms is cancelled: 503 TALLY_QUERY_TIMEOUT', async () => {
      // Another session holds request_logs: the query waits on its lock until the statement timeout.
      const db = postgres(PG_URL, { max: 1, onnotice: () => undefined });
      try {
        const schema = s.flags.schema as string;
        let release: () => void = () => undefined;
        const held = new Promise<void>((resolve) => (release = resolve));
        let locked: () => void = () => undefined;
        const isLocked = new Promise<void>((resolve) => (locked = resolve));
        const tx = db.begin(async (t) => {
          await t.unsafe(`LOCK TABLE "${schema}".request_logs IN ACCESS EXCLUSIVE MODE`);
          locked();
          await held;
        });
        await isLocked;
        const started = Date.now();
        const r = await q(logsQuery, keys.readA);
        release();
        await tx;
        expect(r.status).toBe(503);
        expect(error(r)).toMatchObject({ code: 'TALLY_QUERY_TIMEOUT', details: { timeoutMs: 3000 } });
        expect(r.headers.get('retry-after')).not.toBeNull();
        expect(Date.now() - started).toBeLessThan(10_000);
      } finally {
        await db.end();
      }
    });
});

describe('GET /v1/whoami', () => {
  let s: TestServer;
  const keys: Record<string, { key: string; id: string }> = {};
  beforeAll(async () => {
    s = await serveFor('pglite');
    const sql = s.server.store.sql;
    for (const [name, tenant, scope] of [
      ['write', 'acme', 'write'],
      ['read', 'acme', 'read'],
      ['admin', 'acme', 'admin'],
      ['wide', null, 'admin'],
    ] as const) {
      const created = await createApiKey(sql, tenant, { scope });
      keys[name] = { key: created.key, id: created.info.id };
    }
  }, 120_000);
  afterAll(() => s?.dispose());

  const whoami = (key?: string) => call(s.server.url, 'GET', '/v1/whoami', { key });

  it("says a read or admin key's tenant, scope and id; refuses a write key as any read; 401 without a known key", async () => {
    expect((await whoami(keys.read?.key)).json).toEqual({ tenant: 'acme', scope: 'read', keyId: keys.read?.id });
    expect((await whoami(keys.admin?.key)).json).toEqual({ tenant: 'acme', scope: 'admin', keyId: keys.admin?.id });
    // A server-wide admin key belongs to no tenant (it names one per read with ?tenant=).
    expect((await whoami(keys.wide?.key)).json).toEqual({ tenant: null, scope: 'admin', keyId: keys.wide?.id });

    const write = await whoami(keys.write?.key);
    expect(write.status).toBe(403);
    expect(write.json.error.code).toBe('TALLY_FORBIDDEN');
    expect(write.json.error.message).toMatch(/a write key cannot read: use a read key/);
    for (const key of [undefined, 'tk_not_a_key']) {
      const r = await whoami(key);
      expect(r.status).toBe(401);
      expect(r.json.error.code).toBe('TALLY_UNAUTHORIZED');
    }
  });
});
