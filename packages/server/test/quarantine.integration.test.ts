/**
 * Nothing refused is lost: the official @segment/analytics-node and posthog-node clients, unchanged,
 * ignore the per-event `rejected` list of an answer. Their events that do not match the catalog are
 * kept in the quarantine with their reasons; once the catalog (and the tenant's policy) is fixed, a
 * replay stores every one of them exactly once, and a second replay stores nothing.
 */
import { fileURLToPath } from 'node:url';
import { Analytics } from '@segment/analytics-node';
import { ErrorCodes } from '@tally/core';
import { countQuarantine, listQuarantine, updateTenant } from '@tally/store';
import { PostHog } from 'posthog-node';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { loadConfig } from '../src/config.js';
import { type Server, startServer } from '../src/serve.js';
import { dropSchema, freshSchema } from '../../store/test/support/stores.js';
import { type Backend, backends, NATS_URL, natsNamespace, PG_URL } from './support/services.js';

const catalog = (name: string) => fileURLToPath(new URL(`./support/catalogs/${name}.ts`, import.meta.url));
const N = 1000;

async function storedSignups(server: Server): Promise<{ n: number; distinct: number }> {
  const rows = await server.store.sql.query<{ n: number; distinct: number }>(
    `SELECT count(*)::int AS n, count(DISTINCT id)::int AS distinct FROM events WHERE name = 'signup_completed'`,
  );
  return rows[0] as { n: number; distinct: number };
}

async function waitForSignups(server: Server, n: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await storedSignups(server)).n < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}

describe.each(backends.filter((b) => b === 'pglite' || b === 'postgres+nats'))(
  'quarantine on %s',
  (backend: Backend) => {
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
      cleanups.length = 0;
    });

    it('Segment and PostHog events refused by the catalog are kept, then replayed exactly once', async () => {
      const tmp = tempDir('tally-quarantine-');
      const schema = freshSchema();
      const ns = backend.endsWith('+nats') ? natsNamespace() : undefined;
      cleanups.push(async () => {
        if (backend.startsWith('postgres')) await dropSchema(schema);
        await ns?.cleanup();
        tmp.cleanup();
      });
      const base = { port: '0', 'data-dir': tmp.dir, schema, unplanned: 'reject' };
      if (backend.startsWith('postgres')) Object.assign(base, { 'database-url': PG_URL });
      if (ns) Object.assign(base, { 'nats-url': NATS_URL, 'nats-stream': ns.stream, 'nats-prefix': ns.prefix });
      const start = async (name: string) => {
        const server = await startServer(loadConfig({ ...base, catalog: catalog(name) }, {}));
        cleanups.push(() => server.close());
        return server;
      };

      const strict = await start('strict');
      const key = strict.firstKey as string;
      // Segment: `plan` is required and missing. PostHog: `coupon` is not in the catalog (policy: reject).
      const seg = new Analytics({ writeKey: key, host: strict.url, flushAt: 100, maxEventsInBatch: 100 });
      const segErrors: unknown[] = [];
      seg.on('error', (e) => segErrors.push(e));
      for (let i = 0; i < N; i++)
        seg.track({ userId: `s${i}`, event: 'signup_completed', properties: { source: 'seg' } });
      console.time('seg');
      await seg.closeAndFlush({ timeout: 30_000 });
      console.timeEnd('seg');
      const ph = new PostHog(key, { host: strict.url, flushAt: 100, flushInterval: 0 });
      for (let i = 0; i < N; i++) {
        ph.capture({ distinctId: `p${i}`, event: 'signup_completed', properties: { plan: 'pro', coupon: 'x' } });
      }
      console.time('ph');
      await ph.shutdown(30_000);
      console.timeEnd('ph');
      expect(segErrors).toEqual([]); // the SDK saw success: only the quarantine knows

      expect(await storedSignups(strict)).toEqual({ n: 0, distinct: 0 });
      expect(await countQuarantine(strict.store.sql, { tenantId: 'default' })).toEqual({
        [ErrorCodes.MISSING_PROPERTY]: N,
        [ErrorCodes.UNKNOWN_PROPERTY]: N,
      });
      const [one] = await listQuarantine(strict.store.sql, { code: ErrorCodes.UNKNOWN_PROPERTY, limit: 1 });
      expect(one).toMatchObject({ name: 'signup_completed', source: '/batch/', truncated: false });
      expect(one?.message).toContain('coupon');
      console.log('conns', await new Promise((r) => strict.app.server.getConnections((_e, n) => r(n))));
      console.time('appclose');
      await strict.app.close();
      console.timeEnd('appclose');
      console.time('close');
      await strict.close();
      console.timeEnd('close');

      // The fix: `plan` optional in the catalog, and the tenant allows unplanned properties.
      const fixed = await start('fixed');
      await updateTenant(fixed.store.sql, 'default', { unplanned: 'allow' });
      const dry = await fixed.replayRejected({}, { dryRun: true });
      expect(dry).toMatchObject({ examined: 2 * N, stored: 2 * N, stillFailing: 0 });
      expect(await storedSignups(fixed)).toEqual({ n: 0, distinct: 0 });

      const first = await fixed.replayRejected({});
      expect(first).toMatchObject({ examined: 2 * N, stillFailing: 0 });
      expect(first.stored + first.duplicates).toBe(2 * N);
      await waitForSignups(fixed, 2 * N);
      expect(await storedSignups(fixed)).toEqual({ n: 2 * N, distinct: 2 * N });
      const second = await fixed.replayRejected({});
      expect(second).toMatchObject({ examined: 0, stored: 0 });
      expect(await countQuarantine(fixed.store.sql)).toEqual({});
      // Each event is the one that was sent: its own id, user and properties.
      const sample = await fixed.store.sql.query<{ user_id: string; properties: Record<string, unknown> }>(
        `SELECT user_id, properties FROM events WHERE user_id IN ('s7', 'p7') ORDER BY user_id`,
      );
      expect(sample).toEqual([
        { user_id: 'p7', properties: { plan: 'pro', coupon: 'x' } },
        { user_id: 's7', properties: { source: 'seg' } },
      ]);
      const totals = await fixed.store.totals();
      expect(totals.eventRollup).toBe(totals.events);
    });
  },
);
