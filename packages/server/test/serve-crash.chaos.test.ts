/**
 * kill -9 of `tally serve` while a NATS-fed stream is being stored, then a restart: every event
 * JetStream acknowledged to the producer is stored exactly once, and the rollups agree.
 */
import { createTracker } from '@tally/node';
import { productCatalog } from '@tally/core';
import { createNatsSink } from '@tally/nats';
import postgres from 'postgres';
import { afterAll, expect } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { dropSchema, freshSchema } from '../../store/test/support/stores.js';
import { spawnServe } from './support/child-process.js';
import { needs } from '../../node/test/support/service-gate.js';
import { NATS_URL, nats, natsNamespace, PG_URL, pg } from './support/services.js';

const ns = natsNamespace();
const schema = freshSchema();
const data = tempDir('tally-crash-');
afterAll(async () => {
  if (nats.met) await ns.cleanup();
  if (pg.met) await dropSchema(schema);
  data.cleanup();
});

needs(nats, pg).it(
  'kill -9 mid-stream, restart: every acknowledged event stored exactly once',
  async () => {
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
    ];
    const sql = postgres(PG_URL, { max: 1, onnotice: () => {} });
    const count = async () => Number((await sql.unsafe(`SELECT count(*)::int AS n FROM "${schema}".events`))[0]?.n);
    const spool = tempDir();
    const tracker = createTracker({
      catalog: productCatalog,
      sink: createNatsSink({ servers: NATS_URL, prefix: ns.prefix }),
      spool: spool.dir,
      maxBatchEvents: 200,
      flushIntervalMs: 20,
    });
    const N = 40_000;
    let first = await spawnServe(args);
    try {
      // The producer publishes over ~4 s, so the kill lands mid-stream.
      const producing = (async () => {
        for (let i = 0; i < N; i += 500) {
          for (let j = i; j < i + 500; j++) tracker.track('task_created', { taskId: `t-${j}`, taskType: 'crash' });
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      let atKill = 0;
      const deadline = Date.now() + 30_000;
      while ((atKill = await count()) < 4000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      first.proc.kill('SIGKILL');
      await new Promise((r) => first.proc.once('exit', r));
      expect(atKill).toBeGreaterThan(0);
      expect(atKill).toBeLessThan(N);
      await producing;
      const result = await tracker.shutdown({ timeoutMs: 20_000 });
      expect(result).toMatchObject({ spooled: 0, pending: 0 });
      expect(tracker.stats()).toMatchObject({ delivered: N, spooled: 0, dropped: {} }); // every event acked by JetStream

      first = await spawnServe(args);
      const until = Date.now() + 60_000;
      while ((await count()) < N && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
      await new Promise((r) => setTimeout(r, 1000)); // anything extra would show up now
      expect(await count()).toBe(N);
      const [rollup] = await sql.unsafe(
        `SELECT sum(count)::int AS n FROM "${schema}".event_counts_hourly WHERE name = 'task_created'`,
      );
      expect(Number(rollup?.n)).toBe(N);
    } finally {
      first.proc.kill('SIGKILL');
      spool.cleanup();
      await sql.end();
    }
  },
  180_000,
);
