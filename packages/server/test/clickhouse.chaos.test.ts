/**
 * Exactly once into ClickHouse when things break:
 * - ClickHouse killed (SIGKILL) and restarted while `tally serve` stores a stream of batches: the
 *   writer retries, and every event sent is stored once (a server of the test's own, so the shared one
 *   at 127.0.0.1:8123 is never touched);
 * - `tally serve` killed with SIGKILL mid-stream (NATS JetStream → ClickHouse) and started again: every
 *   event JetStream acknowledged to the producer is stored once, in detail and in every query's answer.
 */
import { createTracker } from '@tally/node';
import { productCatalog } from '@tally/core';
import { createNatsSink } from '@tally/nats';
import { createClickHouseStore, createServerClient } from '@tally/clickhouse';
import { afterAll, expect } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { needs, probeClickHouse, Requirement } from '../../node/test/support/service-gate.js';
import { dropSchema, freshSchema } from '../../store/test/support/stores.js';
import { hasClickHouseServer, privateClickHouse } from '../../clickhouse/test/support/private-server.js';
import { spawnServe } from './support/child-process.js';
import { event } from './support/read-api.js';
import { NATS_URL, nats, natsNamespace, PG_URL, pg, serveFor } from './support/services.js';

const clickhouse = await probeClickHouse();
const binary = new Requirement(
  'clickhouse-server',
  hasClickHouseServer(),
  'Debian clickhouse-server is not installed',
  'install it with `apt-get install -y clickhouse-server` (.ci/run does it)',
);
const dirs: { cleanup(): void }[] = [];
afterAll(() => {
  for (const d of dirs) d.cleanup();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

needs(pg, binary).it(
  'ClickHouse killed and restarted under load: every event sent is stored once',
  async () => {
    const dir = tempDir('tally-ch-chaos-');
    dirs.push(dir);
    const ch = await privateClickHouse(`${dir.dir}/clickhouse`);
    await ch.start();
    const database = 'tally_chaos';
    const s = await serveFor('postgres', {
      'clickhouse-url': ch.url,
      'clickhouse-database': database,
      'clickhouse-flush-ms': '20',
    });
    try {
      const N = 10_000;
      const BATCH = 100;
      let sent = 0;
      const sender = (async () => {
        for (let i = 0; i < N; i += BATCH) {
          const batch = Array.from({ length: BATCH }, (_, j) =>
            event('task_created', { taskId: `t-${i + j}`, taskType: 'chaos' }, { userId: `u${(i + j) % 97}` }),
          );
          // As an SDK does: the same batch again until it is answered 200 (ids dedupe the retries).
          for (;;) {
            const res = await fetch(`${s.server.url}/v1/events`, {
              method: 'POST',
              headers: { authorization: `Bearer ${s.key}`, 'content-type': 'application/json' },
              body: JSON.stringify({ batch }),
            }).catch(() => undefined);
            if (res?.status === 200) break;
            await sleep(100);
          }
          sent += BATCH;
        }
      })();
      while (sent < N / 4) await sleep(20);
      await ch.kill();
      await sleep(2000);
      await ch.start();
      await sender;
      const store = s.server.clickhouse!;
      const deadline = Date.now() + 60_000;
      while ((await store.totals()).events < N && Date.now() < deadline) await sleep(200);
      await sleep(500);
      expect((await store.totals()).events).toBe(N);
      expect(await store.duplicates()).toEqual({ events: 0, requestLogs: 0 });
      expect(s.server.writer.stats().retries).toBeGreaterThan(0);
      const answer = await store.query('default', {
        kind: 'trends',
        range: { last: '2d' },
        tz: 'UTC',
        explain: false,
        interval: 'day',
        series: [{ event: 'task_created', filters: [], measure: 'count' }],
      });
      const total = answer.rows.reduce((sum, row) => sum + Number(row[row.length - 1] ?? 0), 0);
      expect(total).toBe(N);
    } finally {
      await s.server.clickhouse?.client.command(`DROP DATABASE IF EXISTS ${database}`).catch(() => undefined);
      await s.dispose();
      await ch.dispose();
    }
  },
  180_000,
);

const ns = natsNamespace();
const schema = freshSchema();
afterAll(async () => {
  if (nats.met) await ns.cleanup();
  if (pg.met) await dropSchema(schema);
});

needs(nats, pg, clickhouse).it(
  'tally serve killed with SIGKILL mid-stream into ClickHouse, restarted: every acknowledged event stored once',
  async () => {
    const data = tempDir('tally-ch-crash-');
    dirs.push(data);
    const database = `tally_crash_${Math.random().toString(36).slice(2, 8)}`;
    const args = [
      '--database-url',
      PG_URL,
      '--schema',
      schema,
      '--data-dir',
      data.dir,
      '--nats-url',
      NATS_URL,
      '--nats-stream',
      ns.stream,
      '--nats-prefix',
      ns.prefix,
      '--clickhouse-url',
      'http://127.0.0.1:8123',
      '--clickhouse-database',
      database,
      '--clickhouse-flush-ms',
      '20',
    ];
    const store = createClickHouseStore({ client: createServerClient({ url: 'http://127.0.0.1:8123' }), database });
    const count = async () => (await store.totals().catch(() => ({ events: 0 }))).events;
    const spool = tempDir();
    const tracker = createTracker({
      catalog: productCatalog,
      sink: createNatsSink({ servers: NATS_URL, prefix: ns.prefix }),
      spool: spool.dir,
      maxBatchEvents: 200,
      flushIntervalMs: 20,
    });
    const N = 40_000;
    let serve = await spawnServe(args);
    try {
      const producing = (async () => {
        for (let i = 0; i < N; i += 500) {
          for (let j = i; j < i + 500; j++) tracker.track('task_created', { taskId: `t-${j}`, taskType: 'crash' });
          await sleep(50);
        }
      })();
      let atKill = 0;
      const deadline = Date.now() + 30_000;
      while ((atKill = await count()) < 4000 && Date.now() < deadline) await sleep(50);
      serve.proc.kill('SIGKILL');
      await new Promise((r) => serve.proc.once('exit', r));
      expect(atKill).toBeGreaterThan(0);
      expect(atKill).toBeLessThan(N);
      await producing;
      expect(await tracker.shutdown({ timeoutMs: 20_000 })).toMatchObject({ spooled: 0, pending: 0 });
      expect(tracker.stats()).toMatchObject({ delivered: N, spooled: 0, dropped: {} });

      serve = await spawnServe(args);
      const until = Date.now() + 90_000;
      while ((await count()) < N && Date.now() < until) await sleep(200);
      await sleep(1000); // anything extra would show up now
      expect(await count()).toBe(N);
      expect(await store.duplicates()).toEqual({ events: 0, requestLogs: 0 });
    } finally {
      serve.proc.kill('SIGKILL');
      spool.cleanup();
      await store.client.command(`DROP DATABASE IF EXISTS ${database}`).catch(() => undefined);
      await store.close();
    }
  },
  180_000,
);
