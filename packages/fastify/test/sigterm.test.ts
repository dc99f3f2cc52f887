/** SIGTERM while requests are in flight: every request that completed has its log stored. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { createStore } from '@tally/store';
import { expect, it } from 'vitest';
import { tempDir, waitFor } from '../../node/test/support/helpers.js';

const child = fileURLToPath(new URL('./support/server-child.ts', import.meta.url));

it.each(['in-process', 'worker'])(
  'SIGTERM with 40 requests in flight: each completed request is logged in the store (PGlite %s)',
  async (mode) => {
    const data = tempDir('tally-sigterm-');
    const proc = spawn(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', child, `${data.dir}/db`, `${data.dir}/spool`, mode],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      let out = '';
      proc.stdout?.on('data', (d) => (out += d));
      // Starting takes PGlite's open (and tsx compiling the worker's sources): slow on a busy machine.
      await waitFor(() => /listening \d+/.test(out), 60_000, 'server to listen');
      const port = Number(/listening (\d+)/.exec(out)?.[1]);
      const responses = Array.from(
        { length: 40 },
        () =>
          new Promise<string | undefined>((resolve) => {
            request({ port, host: '127.0.0.1', path: '/slow', agent: false }, (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode === 200 ? String(res.headers['x-request-id']) : undefined));
            })
              .on('error', () => resolve(undefined))
              .end();
          }),
      );
      // All 40 inside their handler (a fixed pause was too short when the machine is busy).
      await waitFor(() => out.includes('in flight 40\n'), 30_000, 'all requests in flight');
      const exited = once(proc, 'exit');
      proc.kill('SIGTERM');
      const completed = (await Promise.all(responses)).filter((id): id is string => id !== undefined);
      const [code] = await exited;
      expect(code).toBe(0);
      expect(completed.length).toBe(40);

      const store = await createStore({ kind: 'pglite', dataDir: `${data.dir}/db` });
      const rows = await store.sql.query<{ request_id: string }>(`SELECT request_id FROM request_logs`);
      await store.close();
      expect(new Set(rows.map((r) => r.request_id))).toEqual(new Set(completed));
    } finally {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      data.cleanup();
    }
  },
  120_000,
);
