/**
 * `tally serve` as a process: SIGTERM while batches are in flight stops intake, drains, exits 0, and
 * every batch it acknowledged is in the database afterwards.
 */
import { once } from 'node:events';
import { join } from 'node:path';
import { isoTime, uuidv7 } from '@tally/core';
import { createStore } from '@tally/store';
import { expect, it } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { spawnServe } from './support/child-process.js';

it('SIGTERM with batches in flight: exit 0, every acknowledged event stored', async () => {
  const data = tempDir('tally-serve-sigterm-');
  const s = await spawnServe(['--data-dir', data.dir]);
  try {
    expect(s.key).toMatch(/^tk_/);
    const acked: string[] = [];
    let stop = false;
    const senders = Array.from({ length: 8 }, async () => {
      while (!stop) {
        const batch = Array.from({ length: 200 }, () => ({
          id: uuidv7(),
          name: 'waitlist_joined',
          properties: { source: 'sigterm' },
          timestamp: isoTime(Date.now()),
        }));
        try {
          const res = await fetch(`${s.url}/v1/events`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${s.key}` },
            body: JSON.stringify({ batch }),
          });
          const body = (await res.json()) as { accepted?: number };
          if (res.status === 200) {
            expect(body.accepted).toBe(200);
            acked.push(...batch.map((e) => e.id));
          }
        } catch {
          // Connection refused or reset once the server stops: not acknowledged, the client would resend.
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    });
    await new Promise((r) => setTimeout(r, 1500));
    const exited = once(s.proc, 'exit');
    s.proc.kill('SIGTERM');
    const [code] = await exited;
    stop = true;
    await Promise.all(senders);
    expect(code, s.output()).toBe(0);
    expect(s.output()).toMatch(/SIGTERM: draining/);
    expect(acked.length).toBeGreaterThan(0);

    const store = await createStore({ kind: 'pglite', dataDir: join(data.dir, 'pglite'), schema: 'tally' });
    try {
      const rows = await store.sql.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM events WHERE id = ANY($1::uuid[])',
        [acked],
      );
      expect(Number(rows[0]?.n)).toBe(acked.length);
      const totals = await store.totals();
      expect(totals.eventRollup).toBe(totals.events);
    } finally {
      await store.close();
    }
  } finally {
    s.proc.kill('SIGKILL');
    data.cleanup();
  }
}, 120_000);
