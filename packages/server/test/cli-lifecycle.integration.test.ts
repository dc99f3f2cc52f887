/** The lifecycle CLI on embedded PGlite and a local archive directory, and the jobs inside `tally serve`. */
import { isoTime, uuidv7 } from '@tally/core';
import { createApiKey, createStore, listJobRuns } from '@tally/store';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { eventRow, requestLog } from '../../store/test/support/stores.js';
import { tally as run } from './support/cli.js';
import { serveFor } from './support/services.js';

describe('tally archive / cleanup / stats / jobs', () => {
  it('archive run → list → cleanup --dry-run → cleanup → stats → restore, with progress', async () => {
    const tmp = tempDir('tally-cli-life-');
    const dir = ['--data-dir', tmp.dir];
    try {
      const store = await createStore({ kind: 'pglite', dataDir: `${tmp.dir}/pglite` });
      await store.migrate();
      const old = Date.now() - 6 * 86_400_000;
      await store.insertEvents(
        Array.from({ length: 40 }, (_, i) =>
          eventRow({ id: uuidv7(old + i), tenantId: 'acme', timestamp: isoTime(old + i) }),
        ),
      );
      await store.insertEvents(Array.from({ length: 10 }, () => eventRow({ tenantId: 'acme' })));
      await store.insertRequestLogs([requestLog({ id: uuidv7(old), tenantId: 'acme', timestamp: isoTime(old) })]);
      await store.close();

      const archived = await run(['archive', 'run', ...dir]);
      expect(archived.code, archived.err).toBe(0);
      expect(archived.out).toMatch(/archive events acme \d{4}-\d\d-\d\d: 40 rows → events\/acme\/.*\.part1\.jsonl\.gz/);
      expect(archived.out).toMatch(/done: 2 files, 41 rows/);
      const day = isoTime(old).slice(0, 10);
      expect((await run(['archive', 'list', ...dir])).out).toMatch(new RegExp(`${day}\\s+acme\\s+events\\s+1\\s+40`));
      expect((await run(['cleanup', '--dry-run', ...dir])).out).toMatch(/dry run: 41 rows would be deleted/);
      expect((await run(['cleanup', ...dir])).out).toMatch(/done: deleted 41 rows of 2 archive parts/);
      const stats = await run(['stats', ...dir]);
      expect(stats.out).toMatch(/^events\s+10\s/m);
      expect(stats.out).toMatch(/archive: 2 files, 41 rows \(41 cleaned/);
      expect(JSON.parse((await run(['stats', '--json', ...dir])).out).archive.files).toBe(2);
      const restored = await run(['archive', 'restore', '--tenant', 'acme', '--day', day, ...dir]);
      expect(restored.out).toMatch(/restored 41 rows of acme/);
      const jobs = await run(['jobs', ...dir]);
      expect(jobs.out).toMatch(/cleanup\s+ok/);
      expect(jobs.out).toMatch(/archive\s+ok/);
      expect((await run(['archive', 'restore', '--tenant', 'acme', ...dir])).code).toBe(2);
      expect((await run(['archive', 'fly', ...dir])).code).toBe(2);
    } finally {
      tmp.cleanup();
    }
  }, 120_000);
});

describe('lifecycle inside tally serve', () => {
  it('missed jobs catch up at start; snapshots every K batches served by GET /v1/snapshots/latest', async () => {
    const s = await serveFor('pglite', { 'snapshot-every': '1' });
    try {
      // First start: every job's previous slot was missed, so each ran once.
      const deadline = Date.now() + 30_000;
      let runs = await listJobRuns(s.server.store.sql);
      while (runs.length < 5 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        runs = await listJobRuns(s.server.store.sql);
      }
      expect(runs.map((r) => `${r.job}:${r.outcome}`).sort()).toEqual([
        'archive:ok',
        'cleanup:ok',
        'rollups:ok',
        'snapshot-prune:ok',
        'stats:ok',
      ]);

      // Snapshots are read with a key of scope read; the first key writes.
      const reader = (await createApiKey(s.server.store.sql, 'default', { scope: 'read' })).key;
      const none = await fetch(`${s.server.url}/v1/snapshots/latest`, {
        headers: { authorization: `Bearer ${reader}` },
      });
      expect(none.status).toBe(404);
      const batch = Array.from({ length: 20 }, (_, i) => ({
        id: uuidv7(),
        name: i < 15 ? 'task_created' : 'waitlist_joined',
        properties: i < 15 ? { taskId: `t${i}`, taskType: 'x' } : { source: 'y' },
        timestamp: isoTime(Date.now()),
      }));
      const posted = await fetch(`${s.server.url}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${s.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ batch }),
      });
      expect(posted.status).toBe(200);
      let snap: { version?: number; events?: { name: string; count: number }[] } = {};
      const until = Date.now() + 15_000;
      while (!snap.version && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 200));
        const res = await fetch(`${s.server.url}/v1/snapshots/latest`, {
          headers: { authorization: `Bearer ${reader}` },
        });
        if (res.status === 200) snap = (await res.json()) as typeof snap;
      }
      expect(snap.events).toEqual([
        { name: 'task_created', count: 15 },
        { name: 'waitlist_joined', count: 5 },
      ]);
      expect((await fetch(`${s.server.url}/v1/snapshots/latest`)).status).toBe(401);
      const metrics = await (await fetch(`${s.server.url}/metrics`)).text();
      expect(metrics).toMatch(/^tally_job_runs_total\{job="archive",outcome="ok"\} 1/m);
    } finally {
      await s.dispose();
    }
  }, 120_000);
});
