/** The history API on real stores: paging under concurrent inserts, scoping, filters and bad input. */
import { isoTime, uuidv7 } from '@tally/core';
import { createWriter, type RequestLogRow } from '@tally/store';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { engines, openStore } from '../../store/test/support/stores.js';
import { historyRoutes } from '../src/index.js';

const base = Date.UTC(2026, 10, 20, 12);
function log(userId: string, minute: number, overrides: Partial<RequestLogRow> = {}): RequestLogRow {
  const at = isoTime(base + minute * 60_000);
  return {
    id: uuidv7(base + minute * 60_000),
    tenantId: 't',
    userId,
    method: 'GET',
    route: '/items/:id',
    url: `/items/${minute}`,
    status: 200,
    durationMs: 5,
    headers: { 'user-agent': 'x', authorization: '[REDACTED]' },
    requestBody: 'req',
    responseBody: 'secret-body',
    apiKeyId: 'key_app',
    ip: '198.51.100.4',
    timestamp: at,
    receivedAt: at,
    ...overrides,
  };
}

describe.each(engines)('history API on %s', (engine) => {
  it('pages newest first with a stable cursor, scoped to the caller, with filters and typed errors', async () => {
    const { store, dispose } = await openStore(engine);
    const spool = tempDir('tally-history-');
    const writer = createWriter({ store, spoolDir: spool.dir });
    const app = Fastify();
    try {
      const mine = Array.from({ length: 25 }, (_, i) => log('ana', i));
      await writer.writeRequestLogs([
        ...mine,
        ...Array.from({ length: 5 }, (_, i) => log('bob', i)),
        log('ana', 0, { id: uuidv7(base), tenantId: 'other-tenant' }),
      ]);
      historyRoutes(app, {
        source: store,
        authenticate: (request) => {
          const user = request.headers['x-user'];
          return typeof user === 'string' ? { tenantId: 't', userId: user } : undefined;
        },
      });
      const get = async (url: string, user = 'ana') => app.inject({ method: 'GET', url, headers: { 'x-user': user } });

      // Three pages, with newer requests arriving between them: no item repeated or skipped.
      const seen: string[] = [];
      let res = await get('/api/history?limit=10');
      let body = res.json() as { items: { id: string; url: string }[]; nextCursor: string | null };
      seen.push(...body.items.map((i) => i.id));
      await writer.writeRequestLogs([log('ana', 100), log('ana', 101)]);
      res = await get(`/api/history?limit=10&cursor=${body.nextCursor}`);
      body = res.json();
      seen.push(...body.items.map((i) => i.id));
      await writer.writeRequestLogs([log('ana', 102)]);
      res = await get(`/api/history?limit=10&cursor=${body.nextCursor}`);
      body = res.json();
      seen.push(...body.items.map((i) => i.id));
      expect(body.nextCursor).toBeNull();
      expect(seen).toEqual(mine.map((m) => m.id).reverse());

      // Summaries only: no bodies or headers in the list.
      const first = (await get('/api/history?limit=1')).json() as { items: Record<string, unknown>[] };
      expect(Object.keys(first.items[0] ?? {})).not.toEqual(expect.arrayContaining(['responseBody']));
      expect(JSON.stringify(first)).not.toContain('secret-body');

      // One record, with bodies, to its owner only.
      const own = await get(`/api/history/${mine[3]?.id}`);
      expect(own.statusCode).toBe(200);
      expect(own.json()).toMatchObject({ id: mine[3]?.id, responseBody: 'secret-body', url: '/items/3' });
      // The history detail's fields only: not the app's key id or the address the request came from.
      expect(Object.keys(own.json() as object)).not.toEqual(expect.arrayContaining(['apiKeyId']));
      expect(JSON.stringify(own.json())).not.toContain('198.51.100.4');
      expect((await get(`/api/history/${mine[3]?.id}`, 'bob')).statusCode).toBe(404);
      expect((await get(`/api/history/${uuidv7()}`)).json()).toMatchObject({ error: { code: 'TALLY_NOT_FOUND' } });
      expect((await get('/api/history/not-a-uuid')).statusCode).toBe(404);
      const bobs = (await get('/api/history?limit=200', 'bob')).json() as { items: unknown[] };
      expect(bobs.items).toHaveLength(5);

      // Filters.
      await writer.writeRequestLogs([
        log('ana', 200, { status: 503, route: '/pay' }),
        log('ana', 201, { status: 404 }),
      ]);
      const errors = (await get('/api/history?status=5xx')).json() as { items: { status: number; route: string }[] };
      expect(errors.items.map((i) => [i.status, i.route])).toEqual([[503, '/pay']]);
      const paid = (await get('/api/history?route=/pay')).json() as { items: unknown[] };
      expect(paid.items).toHaveLength(1);
      const from = isoTime(base + 10 * 60_000);
      const to = isoTime(base + 15 * 60_000);
      const range = (await get(`/api/history?from=${from}&to=${to}&limit=200`)).json() as { items: { url: string }[] };
      expect(range.items.map((i) => i.url)).toEqual(['/items/14', '/items/13', '/items/12', '/items/11', '/items/10']);

      // No caller: 401. Bad parameters: 400 with a code that names the problem.
      const anon = await app.inject({ method: 'GET', url: '/api/history' });
      expect(anon.statusCode).toBe(401);
      expect(anon.json()).toMatchObject({ error: { code: 'TALLY_UNAUTHORIZED' } });
      for (const q of [
        'limit=0',
        'limit=201',
        'limit=abc',
        'status=6xx',
        'from=yesterday',
        `from=${to}&to=${from}`,
        'cursor=bm9wZQ',
        'limit=1&limit=2',
      ]) {
        const bad = await get(`/api/history?${q}`);
        expect(bad.statusCode, q).toBe(400);
        expect(bad.json(), q).toMatchObject({ error: { code: 'TALLY_BAD_QUERY' } });
      }
    } finally {
      await app.close();
      await writer.close();
      await dispose();
      spool.cleanup();
    }
  });
});
