/**
 * `tally serve` as a process, the way a new user runs it: the refused-gzip request that used to kill it
 * leaves it serving with a clean log; and its last line of defence — an unhandled rejection is logged
 * with its stack, counted, and the server goes on; an uncaught exception is logged, counted, the server
 * drains (what it acknowledged is stored) and exits 70.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { ErrorCodes } from '@tally/core';
import { createStore } from '@tally/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, waitFor } from '../../node/test/support/helpers.js';
import { EXIT_INTERNAL_ERROR } from '../src/process-guard.js';
import { type IpcServeProcess, spawnServeIpc, UNHANDLED } from './support/child-process-ipc.js';
import { curlNotGzip, goodBody } from './support/collector-requests.js';
import { RawConnection } from './support/raw-http.js';

async function postGood(url: string, key: string, tag: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify(goodBody('/v1/events', tag)),
  });
  return { status: res.status, body: await res.json() };
}

describe('tally serve, one process for the whole block', () => {
  const data = tempDir('tally-robust-process-');
  let s: IpcServeProcess;
  beforeAll(async () => {
    s = await spawnServeIpc(['--data-dir', data.dir]);
  }, 90_000);
  afterAll(async () => {
    await s?.stop();
    data.cleanup();
  });

  it('the crash of a refused gzip request (curl --data-binary, form type, no key): 415, still serving, a clean log', async () => {
    const body = randomBytes(4096);
    const c = new RawConnection(s.port);
    const outcome = await c.send(curlNotGzip(s.port, body));
    c.close();
    expect(outcome).toMatchObject({ kind: 'response', response: { status: 415 } });
    if (outcome.kind === 'response') {
      expect(JSON.parse(outcome.response.body.toString())).toMatchObject({
        error: { code: ErrorCodes.UNSUPPORTED_MEDIA_TYPE },
      });
    }
    await new Promise((r) => setTimeout(r, 500));
    expect(s.proc.exitCode, s.output()).toBeNull();
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    expect(await postGood(s.url, s.key, 'after-curl')).toMatchObject({ status: 200, body: { accepted: 1 } });
    expect(s.output()).not.toMatch(UNHANDLED);
  });

  it('an unhandled rejection is logged with its stack and counted; the server goes on serving', async () => {
    s.inject('reject');
    await waitFor(() => /injected rejection/.test(s.output()), 10_000, 'the rejection in the log');
    const line = s
      .output()
      .split('\n')
      .find((l) => l.includes('injected rejection')) as string;
    const logged = JSON.parse(line) as { level: number; msg: string; kind: string; err: { stack: string } };
    expect(logged).toMatchObject({ level: 50, kind: 'unhandledRejection' });
    expect(logged.msg).toMatch(/unhandled rejection/);
    expect(logged.err.stack).toMatch(/^Error: injected rejection[^\n]*\n\s+at /);

    expect(s.proc.exitCode).toBeNull();
    expect(await postGood(s.url, s.key, 'after-rejection')).toMatchObject({ status: 200, body: { accepted: 1 } });
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toMatch(/^tally_internal_errors_total\{kind="unhandledRejection"\} 1$/m);
  });

  it('SIGTERM still drains and exits 0 after it', async () => {
    const code = await s.stop();
    expect(code, s.output()).toBe(0);
    expect(s.output()).toMatch(/SIGTERM: draining/);
  });
});

describe('tally serve after an uncaught exception', () => {
  it('logs it with its stack, counts it, drains (acknowledged events stored) and exits 70', async () => {
    const data = tempDir('tally-robust-uncaught-');
    const s = await spawnServeIpc(['--data-dir', data.dir]);
    try {
      const tag = `uncaught-${randomBytes(3).toString('hex')}`;
      let acked = 0;
      for (let i = 0; i < 20; i++) {
        const r = await postGood(s.url, s.key, tag);
        if (r.status === 200) acked++;
      }
      expect(acked).toBe(20);

      const exited = once(s.proc, 'exit');
      s.inject('throw');
      const [code] = (await exited) as [number | null];
      const out = s.output();
      expect(code, out).toBe(EXIT_INTERNAL_ERROR);
      expect(out).toMatch(/^tally: uncaught exception \(injected exception[^\n]*draining, then exiting 70$/m);
      const line = out.split('\n').find((l) => l.startsWith('{') && l.includes('injected exception')) as string;
      const logged = JSON.parse(line) as { level: number; msg: string; kind: string; err: { stack: string } };
      expect(logged).toMatchObject({ level: 60, kind: 'uncaughtException' });
      expect(logged.msg).toMatch(/uncaught exception.*draining/);
      expect(logged.err.stack).toMatch(/^Error: injected exception[^\n]*\n\s+at /);

      const store = await createStore({ kind: 'pglite', dataDir: join(data.dir, 'pglite'), schema: 'tally' });
      try {
        const rows = await store.sql.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM events WHERE properties->>'source' = $1`,
          [tag],
        );
        expect(Number(rows[0]?.n)).toBe(acked);
      } finally {
        await store.close();
      }
    } finally {
      s.proc.kill('SIGKILL');
      data.cleanup();
    }
  }, 120_000);
});
