/**
 * Request logs end to end: Fastify → plugin → tracker (direct sink) → exactly-once writer → PGlite and
 * Postgres. Checks what is stored, that secrets are not, and that path rollups match the detail.
 */
import { defineCatalog } from '@tally/core';
import { createTracker } from '@tally/node';
import { createDirectSink, createWriter } from '@tally/store';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { engines, openStore } from '../../store/test/support/stores.js';
import { tallyRequestLog } from '../src/index.js';

// The test opens its store itself: PGlite alone has taken over 20 s to open on a busy 2-core machine.
describe.each(engines)('request logs stored in %s', { timeout: 60_000 }, (engine) => {
  it('every request once, redacted, with path stats equal to the detail', async () => {
    const { store, dispose } = await openStore(engine);
    const spool = tempDir('tally-fastify-');
    const writer = createWriter({ store, spoolDir: spool.dir });
    const tracker = createTracker({
      catalog: defineCatalog({}),
      sink: createDirectSink(writer),
      spool: spool.dir,
      context: { service: 'api' },
    });
    const app = Fastify();
    try {
      await app.register(tallyRequestLog, { tracker, tenantId: 'shop' });
      app.get('/items/:id', async (request) => ({ id: (request.params as { id: string }).id }));
      app.get('/fail', async () => {
        throw new Error('nope');
      });
      for (let i = 0; i < 30; i++) {
        await app.inject({ method: 'GET', url: `/items/${i}`, headers: { authorization: `Bearer secret-${i}` } });
      }
      await app.inject({ method: 'GET', url: '/fail' });
      expect(await tracker.flush()).toMatchObject({ delivered: 31, dropped: {} });

      // Several requests share a millisecond: the id (UUIDv7, monotonic in this process) breaks the tie.
      const rows = await store.sql.query<Record<string, unknown>>(
        `SELECT route, status, headers, response_body, tenant_id FROM request_logs WHERE tenant_id = 'shop' ORDER BY ts, id`,
      );
      expect(rows).toHaveLength(31);
      expect(rows[0]).toMatchObject({ route: '/items/:id', status: 200, response_body: '{"id":"0"}' });
      expect((rows[0]?.headers as Record<string, string>).authorization).toBe('[REDACTED]');
      expect(JSON.stringify(rows)).not.toContain('secret-');
      const stats = await store.sql.query<{ route: string; count: string; status_5xx: string }>(
        `SELECT route, count, status_5xx FROM path_stats_hourly WHERE tenant_id = 'shop' ORDER BY route`,
      );
      expect(stats.map((s) => [s.route, Number(s.count), Number(s.status_5xx)])).toEqual([
        ['/fail', 1, 1],
        ['/items/:id', 30, 0],
      ]);
      const totals = await store.totals();
      expect(totals.pathRollup).toBe(totals.requestLogs);
    } finally {
      await app.close();
      await tracker.shutdown();
      await writer.close();
      await dispose();
      spool.cleanup();
    }
  });
});
