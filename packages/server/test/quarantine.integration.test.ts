/**
 * Nothing refused is lost: the official @segment/analytics-node and posthog-node clients, unchanged,
 * ignore the per-event `rejected` list of an answer. Their events that do not match the catalog are
 * kept in the quarantine with their reasons (`tally rejected list`); once the catalog and the tenant's
 * policy are fixed, `tally rejected replay` stores every one exactly once, and a second replay stores
 * nothing. The CLI runs as its own process beside the server, as a user runs it.
 */
import { fileURLToPath } from 'node:url';
import { Analytics } from '@segment/analytics-node';
import { ErrorCodes, isoTime, uuidv7 } from '@tally/core';
import { countQuarantine } from '@tally/store';
import { PostHog } from 'posthog-node';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { dropSchema, freshSchema } from '../../store/test/support/stores.js';
import { loadConfig } from '../src/config.js';
import { type Server, startServer } from '../src/serve.js';
import { tallyProcess as tally } from './support/cli.js';
import { type Backend, backends, NATS_URL, natsNamespace, PG_URL, serveFor } from './support/services.js';

const catalog = (name: string) => fileURLToPath(new URL(`./support/catalogs/${name}.ts`, import.meta.url));
const N = 1000;

async function storedSignups(server: Server): Promise<{ n: number; distinct: number }> {
  const rows = await server.store.sql.query<{ n: number; distinct: number }>(
    `SELECT count(*)::int AS n, count(DISTINCT id)::int AS distinct FROM events WHERE name = 'signup_completed'`,
  );
  return rows[0] as { n: number; distinct: number };
}

/** Through NATS a replayed event is stored by the consumer shortly after the replay answers. */
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

    // Two server starts, 2,000 events through two real client libraries and six CLI processes: ~35 s on
    // a quiet machine, past a minute on PGlite while the other test files load both cores.
    it(
      'Segment and PostHog events refused by the catalog are kept, then replayed exactly once',
      { timeout: 180_000 },
      async () => {
        const tmp = tempDir('tally-quarantine-');
        const schema = freshSchema();
        const ns = backend.endsWith('+nats') ? natsNamespace() : undefined;
        cleanups.push(async () => {
          if (backend.startsWith('postgres')) await dropSchema(schema);
          await ns?.cleanup();
          tmp.cleanup();
        });
        const base: Record<string, string> = { port: '0', 'data-dir': tmp.dir, schema, unplanned: 'reject' };
        if (backend.startsWith('postgres')) base['database-url'] = PG_URL;
        if (ns) Object.assign(base, { 'nats-url': NATS_URL, 'nats-stream': ns.stream, 'nats-prefix': ns.prefix });
        // What tells the CLI where the database is; it finds the running server there.
        const at = [
          '--data-dir',
          tmp.dir,
          '--schema',
          schema,
          ...(base['database-url'] ? ['--database-url', PG_URL] : []),
        ];
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
        await seg.closeAndFlush({ timeout: 30_000 });
        const ph = new PostHog(key, { host: strict.url, flushAt: 100, flushInterval: 0 });
        for (let i = 0; i < N; i++) {
          ph.capture({ distinctId: `p${i}`, event: 'signup_completed', properties: { plan: 'pro', coupon: 'x' } });
        }
        await ph.shutdown(30_000);
        expect(segErrors).toEqual([]); // the clients saw success: only the quarantine knows
        expect(await storedSignups(strict)).toEqual({ n: 0, distinct: 0 });

        const listed = await tally([
          'rejected',
          'list',
          '--json',
          '--limit',
          '1',
          '--code',
          ErrorCodes.UNKNOWN_PROPERTY,
          ...at,
        ]);
        expect(listed.code).toBe(0);
        const list = JSON.parse(listed.out) as { events: Record<string, unknown>[]; counts: Record<string, number> };
        expect(list.counts).toEqual({ [ErrorCodes.UNKNOWN_PROPERTY]: N });
        expect(list.events[0]).toMatchObject({ name: 'signup_completed', source: '/batch/', truncated: false });
        expect(list.events[0]?.message).toContain('coupon');
        const table = await tally(['rejected', 'list', '--tenant', 'default', ...at]);
        expect(table.out).toContain(
          `${2 * N} refused: ${N} ${ErrorCodes.MISSING_PROPERTY}, ${N} ${ErrorCodes.UNKNOWN_PROPERTY}`,
        );
        await strict.close();

        // The fix: `plan` optional in the catalog, and the tenant allows unplanned properties.
        const fixed = await start('fixed');
        expect((await tally(['tenants', 'set', 'default', '--unplanned', 'allow', ...at])).code).toBe(0);
        const dry = await tally(['rejected', 'replay', '--dry-run', ...at]);
        expect(dry.code).toBe(0);
        expect(dry.out).toContain(`dry run: ${2 * N} examined, ${2 * N} would be stored, 0 still failing`);
        expect(await storedSignups(fixed)).toEqual({ n: 0, distinct: 0 });

        const first = await tally(['rejected', 'replay', ...at]);
        expect(first.code).toBe(0);
        expect(first.out).toContain(`${2 * N} examined, ${2 * N} stored, 0 still failing`);
        await waitForSignups(fixed, 2 * N);
        expect(await storedSignups(fixed)).toEqual({ n: 2 * N, distinct: 2 * N });
        const second = await tally(['rejected', 'replay', ...at]);
        expect(second.out).toContain('0 examined, 0 stored, 0 still failing');
        expect(await countQuarantine(fixed.store.sql)).toEqual({});
        expect(await storedSignups(fixed)).toEqual({ n: 2 * N, distinct: 2 * N });

        // Each event is the one that was sent: its own user and properties.
        const sample = await fixed.store.sql.query<{ user_id: string; properties: Record<string, unknown> }>(
          `SELECT user_id, properties FROM events WHERE user_id IN ('s7', 'p7') ORDER BY user_id`,
        );
        expect(sample).toEqual([
          { user_id: 'p7', properties: { plan: 'pro', coupon: 'x' } },
          { user_id: 's7', properties: { source: 'seg' } },
        ]);
        const totals = await fixed.store.totals();
        expect(totals.eventRollup).toBe(totals.events);
      },
    );
  },
);

describe('quarantine bounds', () => {
  it('a tenant keeps at most --quarantine-max-rows refused events: the oldest go, counted', async () => {
    const s = await serveFor('pglite', { 'quarantine-max-rows': '100' });
    try {
      const bad = (i: number) => ({
        id: uuidv7(),
        name: 'no_such_event',
        properties: { i },
        timestamp: isoTime(Date.now()),
      });
      for (let round = 0; round < 5; round++) {
        const res = await fetch(`${s.server.url}/v1/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${s.key}` },
          body: JSON.stringify({ batch: Array.from({ length: 60 }, (_, i) => bad(round * 60 + i)) }),
        });
        expect(res.status).toBe(200);
      }
      const kept = await s.server.store.sql.query<{ n: number; oldest: number }>(
        `SELECT count(*)::int AS n, min((item::jsonb->'properties'->>'i')::int) AS oldest FROM quarantine`,
      );
      // Trimmed back to 100 whenever 100 more were kept: never more than twice the cap, the newest kept.
      expect(kept[0]?.n).toBeLessThan(200);
      expect(kept[0]?.oldest).toBeGreaterThan(0);
      const metrics = await (await fetch(`${s.server.url}/metrics`)).text();
      const dropped = Number(/^tally_quarantine_dropped_total (\d+)/m.exec(metrics)?.[1]);
      expect(dropped + (kept[0]?.n ?? 0)).toBe(300);
      expect(metrics).toMatch(/^tally_events_quarantined_total\{code="TALLY_UNKNOWN_EVENT"\} 300$/m);
    } finally {
      await s.dispose();
    }
  });
});
