/**
 * One process at a time on embedded PGlite: the state file `<data-dir>/server.json` names who holds the
 * database. A command working directly holds it while it works; a live holder the CLI cannot reach (a
 * server starting, another command) makes it wait, then refuse; a server does not start under a holder.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { openAdminOps } from '../src/admin/connect.js';
import { loadConfig } from '../src/config.js';
import { startServer } from '../src/serve.js';

describe('server.json guards embedded PGlite', () => {
  // A live process that is no tally: stands in for a holder.
  let other: ChildProcess;
  beforeAll(() => {
    other = spawn('sleep', ['120'], { stdio: 'ignore' });
  });
  afterAll(() => {
    other.kill('SIGKILL');
  });

  const holder = (dir: string, command: string, url?: string) =>
    writeFileSync(
      join(dir, 'server.json'),
      JSON.stringify({ pid: other.pid, command, url, startedAt: new Date().toISOString(), version: '0' }),
    );

  it('a command working directly holds the file while it works, and lets go', async () => {
    const tmp = tempDir('tally-hold-');
    try {
      const config = loadConfig({ 'data-dir': tmp.dir }, {});
      const ops = await openAdminOps(config, { command: 'keys list' });
      expect(ops.target.server).toBeUndefined();
      expect(JSON.parse(readFileSync(join(tmp.dir, 'server.json'), 'utf8'))).toMatchObject({
        pid: process.pid,
        command: 'keys list',
      });
      expect(await ops.listKeys({})).toEqual([]);
      await ops.close();
      expect(existsSync(join(tmp.dir, 'server.json'))).toBe(false);
    } finally {
      tmp.cleanup();
    }
  });

  it('another command or a starting server: the CLI says it waits, then refuses', async () => {
    const tmp = tempDir('tally-hold-');
    try {
      const config = loadConfig({ 'data-dir': tmp.dir }, {});
      for (const [command, said] of [
        ['archive run', /^waiting: tally archive run \(pid \d+\) has the database in \S+ open…$/],
        ['serve', /^waiting: tally serve \(pid \d+\) is starting on \S+…$/],
      ] as const) {
        holder(tmp.dir, command);
        const notices: string[] = [];
        const started = Date.now();
        const opening = openAdminOps(config, { waitMs: 800, notice: (l) => notices.push(l) });
        await expect(opening).rejects.toMatchObject({ code: 'TALLY_UNAVAILABLE' });
        await expect(opening).rejects.toThrow(/Embedded PGlite takes one process at a time/);
        expect(Date.now() - started).toBeGreaterThanOrEqual(700);
        expect(notices).toHaveLength(1);
        expect(notices[0]).toMatch(said);
      }
      // Nothing was opened meanwhile.
      expect(existsSync(join(tmp.dir, 'pglite'))).toBe(false);
    } finally {
      tmp.cleanup();
    }
  });

  it('a server that does not answer at its URL is waited for, not opened under', async () => {
    const tmp = tempDir('tally-hold-');
    try {
      writeFileSync(join(tmp.dir, 'admin-token'), 'x'.repeat(43), { mode: 0o600 });
      holder(tmp.dir, 'serve', 'http://127.0.0.1:1');
      const opening = openAdminOps(loadConfig({ 'data-dir': tmp.dir }, {}), { waitMs: 800 });
      await expect(opening).rejects.toThrow(
        /tally serve \(pid \d+\) holds \S+ but does not answer at http:\/\/127\.0\.0\.1:1/,
      );
      expect(existsSync(join(tmp.dir, 'pglite'))).toBe(false);
    } finally {
      tmp.cleanup();
    }
  });

  it('when the holder lets go while the CLI waits, the CLI goes on', async () => {
    const tmp = tempDir('tally-hold-');
    try {
      holder(tmp.dir, 'cleanup');
      setTimeout(() => void rm(join(tmp.dir, 'server.json')), 400);
      const ops = await openAdminOps(loadConfig({ 'data-dir': tmp.dir }, {}), { waitMs: 20_000 });
      expect(await ops.listTenants()).toEqual([]);
      await ops.close();
    } finally {
      tmp.cleanup();
    }
  });

  it('tally serve does not start while a command holds the database', async () => {
    const tmp = tempDir('tally-hold-');
    try {
      holder(tmp.dir, 'keys create');
      const starting = startServer(loadConfig({ 'data-dir': tmp.dir, port: '0' }, {}));
      await expect(starting).rejects.toMatchObject({ code: 'TALLY_CONFIG' });
      await expect(starting).rejects.toThrow(
        /is in use by tally keys create \(pid \d+\): embedded PGlite takes one process\. Wait for that command to finish/,
      );
      // The holder's file is left alone.
      expect(JSON.parse(readFileSync(join(tmp.dir, 'server.json'), 'utf8')).pid).toBe(other.pid);
      expect(existsSync(join(tmp.dir, 'pglite'))).toBe(false);
    } finally {
      tmp.cleanup();
    }
  });
});
