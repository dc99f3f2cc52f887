/**
 * What runs behind the collector fails without an unhandled rejection or an uncaught exception (vitest
 * fails this file on either), and without hanging: lifecycle jobs on a database that is gone, calls to a
 * worker-backed store during and after its close, an error event on the HTTP server, the NATS durable
 * consumer deleted under a running server.
 */
import { ErrorCodes } from '@tally/core';
import type { NatsTransport } from '@tally/nats';
import { createStore } from '@tally/store';
import { describe, expect, it } from 'vitest';
import { tempDir, waitFor } from '../../node/test/support/helpers.js';
import type { JobName, JobOutcome } from '../src/lifecycle/jobs.js';
import { startScheduler } from '../src/lifecycle/scheduler.js';
import { createLocalTarget } from '../src/lifecycle/targets/index.js';
import { goodBody } from './support/collector-requests.js';
import { needs } from '../../node/test/support/service-gate.js';
import { nats, serveFor, type TestServer } from './support/services.js';

async function storedWithTag(s: TestServer, tag: string): Promise<number> {
  const rows = await s.server.store.sql.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM events WHERE properties->>'source' = $1`,
    [tag],
  );
  return Number(rows[0]?.n);
}

async function postGood(s: TestServer, tag: string): Promise<void> {
  const res = await fetch(`${s.server.url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${s.key}` },
    body: JSON.stringify(goodBody('/v1/events', tag)),
  });
  expect(await res.json()).toMatchObject({ accepted: 1 });
}

describe('lifecycle jobs on a database that is gone', () => {
  it('catch-up and every scheduled run report "failed"; nothing rejects unobserved; stop() returns', async () => {
    const dir = tempDir('tally-sched-');
    const store = await createStore({ kind: 'pglite', dataDir: dir.dir, schema: 'tally' });
    await store.migrate();
    await store.close();
    const outcomes: [JobName, JobOutcome][] = [];
    const every = '* * * * * *'; // each second (croner's seconds field)
    const scheduler = startScheduler(
      { store, target: createLocalTarget(dir.dir), archiveAfterDays: 3, keepSnapshots: 5 },
      { archive: every, cleanup: every, stats: every, 'snapshot-prune': every, rollups: every },
      (name, outcome) => {
        outcomes.push([name, outcome]);
        // A throwing reporter must not stop the schedule either.
        throw new Error('the reporting callback fails too');
      },
    );
    try {
      await scheduler.caughtUp;
      await waitFor(() => outcomes.length >= 10, 10_000, 'scheduled runs');
      expect(outcomes.every(([, o]) => o.outcome === 'failed')).toBe(true);
      expect(new Set(outcomes.map(([name]) => name)).size).toBe(5);
    } finally {
      await scheduler.stop();
      dir.cleanup();
    }
  });
});

describe('a worker-backed store', () => {
  it('settles calls made while it closes and refuses calls made after, instead of hanging', async () => {
    const dir = tempDir('tally-worker-close-');
    const store = await createStore({ kind: 'pglite', dataDir: dir.dir, schema: 'tally', worker: true });
    try {
      await store.migrate();
      const during = store.sql.query('SELECT 1 AS one');
      const closing = store.close();
      const racing = store.sql.query('SELECT 2 AS two');
      await closing;
      const settled = await Promise.allSettled([during, racing]);
      expect(settled.map((r) => r.status).every((st) => st === 'fulfilled' || st === 'rejected')).toBe(true);
      const after = await Promise.race([
        store.sql.query('SELECT 3').then(
          () => 'answered',
          (e: unknown) => e,
        ),
        new Promise((r) => setTimeout(() => r('hung'), 5000)),
      ]);
      expect(after).toMatchObject({ code: ErrorCodes.STORE_UNAVAILABLE });
    } finally {
      dir.cleanup();
    }
  });
});

describe('the HTTP server', () => {
  it('an error event on the listening server (EMFILE on accept, say) is logged, not thrown; it goes on serving', async () => {
    const s = await serveFor('pglite');
    try {
      const error = Object.assign(new Error('accept EMFILE: too many open files'), { code: 'EMFILE' });
      expect(() => s.server.app.server.emit('error', error)).not.toThrow();
      await postGood(s, 'after-server-error');
      expect(await storedWithTag(s, 'after-server-error')).toBe(1);
    } finally {
      await s.dispose();
    }
  });
});

needs(nats).describe('the NATS consumer', () => {
  it('re-creates its durable consumer deleted under a running server, and storing goes on', async () => {
    const s = await serveFor('pglite+nats');
    try {
      await postGood(s, 'nats-before');
      await waitForAsync(async () => (await storedWithTag(s, 'nats-before')) === 1, 15_000, 'the first event stored');
      const { jsm } = s.server.transport as NatsTransport;
      await jsm.consumers.delete(s.flags['nats-stream'] as string, 'tally-writer');
      await postGood(s, 'nats-after');
      await waitForAsync(
        async () => (await storedWithTag(s, 'nats-after')) === 1,
        30_000,
        'the event after the deletion',
      );
    } finally {
      await s.dispose();
    }
  }, 90_000);
});

async function waitForAsync(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
