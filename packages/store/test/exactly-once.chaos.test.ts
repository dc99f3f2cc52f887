/**
 * Chaos against the real Postgres server: the database restarted under load, and the writer process
 * killed with SIGKILL mid-stream. These stop services or processes, so they run alone (vitest.chaos.config.ts)
 * and always bring Postgres back, whatever happens.
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { createWriter, type EventRow, type WriteResult } from '../src/index.js';
import { tempDir } from '../../node/test/support/helpers.js';
import { needs, Requirement } from '../../node/test/support/service-gate.js';
import { eventRows, freshSchema, openStore, PG_URL, pg, postgresUp } from './support/stores.js';

// Restarting the server needs the Debian cluster tools and root, as CI has: elsewhere that test is skipped,
// in CI it fails rather than skip.
const canRestart = existsSync('/usr/bin/pg_ctlcluster') && existsSync('/etc/postgresql') && process.getuid?.() === 0;
const restartable = new Requirement(
  'a Postgres it can restart',
  canRestart,
  'Restarting Postgres needs root and the Debian cluster tools (/usr/bin/pg_ctlcluster, /etc/postgresql)',
  'run the tests as root on a machine with postgresql-common',
);
const version = canRestart ? (readdirSync('/etc/postgresql')[0] ?? '15') : '15';
function pgctl(action: 'restart' | 'start'): void {
  execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', action, '-m', 'fast'], {
    stdio: 'ignore',
  });
}

async function ensurePostgresUp(): Promise<void> {
  for (let i = 0; i < 50 && !(await postgresUp()); i++) {
    if (i % 10 === 0) {
      try {
        pgctl('start');
      } catch {
        // Already starting: wait for the port.
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

afterAll(async () => {
  if (canRestart) await ensurePostgresUp();
});

needs(pg).describe('exactly once under chaos (Postgres)', () => {
  needs(restartable).it(
    'Postgres restarted while 100 000 events stream in: all stored, none twice, rollups equal detail',
    async () => {
      const { store, dispose } = await openStore('postgres');
      const spool = tempDir('tally-chaos-');
      const writer = createWriter({ store, spoolDir: spool.dir, retry: { initialMs: 50, maxMs: 1000 } });
      try {
        const rows = eventRows(100_000);
        const results: Promise<WriteResult>[] = [];
        let restart: Promise<void> | undefined;
        for (let i = 0; i < rows.length; i += 500) {
          if (i === 20_000) {
            restart = new Promise<void>((resolve, reject) => {
              // Restart in the background while the stream goes on.
              setImmediate(() => {
                try {
                  pgctl('restart');
                  resolve();
                } catch (e) {
                  reject(e);
                }
              });
            });
          }
          results.push(writer.writeEvents(rows.slice(i, i + 500)));
          if (results.length % 8 === 0) await Promise.all(results.slice(-8));
        }
        const settled = await Promise.all(results);
        await restart;
        for (const r of settled) {
          expect(r.ok).toBe(true);
          // A commit whose reply was lost in the restart comes back as duplicates on retry: still exactly once.
          expect(r.stored + r.duplicates).toBe(500);
          expect(r.rejected).toEqual([]);
        }
        expect(writer.stats().retries).toBeGreaterThan(0);
        const totals = await store.totals();
        expect(totals.events).toBe(100_000);
        expect(totals.eventRollup).toBe(100_000);
      } finally {
        await ensurePostgresUp();
        await writer.close();
        await dispose();
        spool.cleanup();
      }
    },
    180_000,
  );

  it('writer killed with SIGKILL mid-stream, restarted; the producer resends what was not acknowledged', async () => {
    const schema = freshSchema();
    const { store, dispose } = await openStore('postgres', schema);
    const spool = tempDir('tally-chaos-');
    const child = fileURLToPath(new URL('./support/writer-child.ts', import.meta.url));
    const batches: EventRow[][] = [];
    const all = eventRows(50_000);
    for (let i = 0; i < all.length; i += 500) batches.push(all.slice(i, i + 500));
    const acked = new Set<number>();
    let kills = 0;

    const start = (): Promise<ChildProcess> =>
      new Promise((resolve) => {
        const proc = fork(child, [PG_URL, schema, spool.dir], {
          execArgv: ['--conditions=source', '--import', 'tsx'],
          stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
        });
        proc.on('message', (m: { ready?: boolean; ack?: number }) => {
          if (m.ready) resolve(proc);
          if (m.ack !== undefined) acked.add(m.ack);
        });
      });

    const until = async (cond: () => boolean, ms = 30_000) => {
      for (const end = Date.now() + ms; !cond() && Date.now() < end;) await new Promise((r) => setTimeout(r, 2));
    };
    let proc = await start();
    try {
      while (acked.size < batches.length) {
        if (!proc.connected) proc = await start();
        // One life of the writer: send what is unacknowledged, at most 8 batches unacknowledged at once.
        const sent = new Set<number>();
        const open = () => [...sent].filter((s) => !acked.has(s)).length;
        for (const seq of batches.keys()) {
          if (acked.has(seq)) continue;
          await until(() => open() < 8 || !proc.connected);
          if (!proc.connected) break;
          proc.send({ seq, rows: batches[seq] });
          sent.add(seq);
          if (kills === 0 && acked.size >= 40) {
            // Mid-stream, with batches in flight: no chance to flush or spool anything.
            const exited = new Promise((r) => proc.once('exit', r));
            proc.kill('SIGKILL');
            await exited;
            kills++;
            break;
          }
        }
        await until(() => open() === 0 || !proc.connected);
      }
      expect(kills).toBe(1);
      const totals = await store.totals();
      expect(totals.events).toBe(50_000);
      expect(totals.eventRollup).toBe(50_000);
      const [row] = await store.sql.query<{ n: string }>('SELECT count(DISTINCT id) AS n FROM events');
      expect(Number(row?.n)).toBe(50_000);
    } finally {
      proc.kill('SIGKILL');
      await dispose();
      spool.cleanup();
    }
  }, 180_000);
});
