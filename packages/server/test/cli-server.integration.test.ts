/**
 * The CLI beside a running `tally serve` on embedded PGlite: while the server holds the database and
 * ingests, `keys create`, `tenants set`, `stats`, `jobs`, `archive list`, `rejected list` and `rejected
 * replay` go through its admin API, and what they change applies at once (the new key is accepted, the new
 * rate limit enforced, a revoked key refused). With the server stopped, the same commands open the database themselves. On Postgres the CLI
 * uses the server of its data directory when it serves the same database, and connects directly otherwise.
 */
import { once } from 'node:events';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isoTime, uuidv7 } from '@tally/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { dropSchema, freshSchema } from '../../store/test/support/stores.js';
import { needs } from '../../node/test/support/service-gate.js';
import { tally as run, tallyProcess } from './support/cli.js';
import { type ServeProcess, spawnServe } from './support/child-process.js';
import { PG_URL, pg } from './support/services.js';

const runProcess = (args: string[]) => tallyProcess(args, { timeoutMs: 45_000 });

function batch(n: number, source: string) {
  return {
    batch: Array.from({ length: n }, () => ({
      id: uuidv7(),
      name: 'waitlist_joined',
      properties: { source },
      timestamp: isoTime(Date.now()),
    })),
  };
}

async function post(url: string, key: string, n = 20, source = 'cli-test') {
  const res = await fetch(`${url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify(batch(n, source)),
  });
  return { status: res.status, body: (await res.json()) as { accepted?: number; error?: { code: string } } };
}

describe('the CLI beside a running tally serve (embedded PGlite)', () => {
  const data = tempDir('tally-cli-server-');
  const dir = ['--data-dir', data.dir];
  let s: ServeProcess;
  let stop = false;
  const statuses: number[] = [];
  let senders: Promise<void>[] = [];

  beforeAll(async () => {
    s = await spawnServe(['--data-dir', data.dir]);
    // Ingestion runs for the whole file, as in production while someone manages keys.
    senders = Array.from({ length: 3 }, async () => {
      while (!stop) {
        const r = await post(s.url, s.key as string, 100, 'background').catch(() => ({ status: -1 }));
        statuses.push(r.status);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    });
  }, 90_000);

  afterAll(async () => {
    stop = true;
    await Promise.all(senders);
    s?.proc.kill('SIGKILL');
    data.cleanup();
  });

  it('the server announces itself: server.json (pid, loopback URL) and a 0600 admin token', () => {
    const state = JSON.parse(readFileSync(join(data.dir, 'server.json'), 'utf8')) as Record<string, unknown>;
    expect(state.pid).toBe(s.proc.pid);
    expect(state.command).toBe('serve');
    expect(state.url).toBe(s.url);
    expect(statSync(join(data.dir, 'admin-token')).mode & 0o777).toBe(0o600);
    // The first start's banner says where the dashboard is and which key signs in.
    expect(s.output()).toContain(
      `Dashboard:    ${s.url}/   (sign in with a read key: npx tally keys create --tenant default --scope read)`,
    );
    expect(s.output()).toMatch(/listening on \S+ \(.*GET \/ \(dashboard\), /);
  });

  it('keys create (a separate process) goes through the server, and the new key works at once', async () => {
    const created = await runProcess(['keys', 'create', '--tenant', 'acme', '--name', 'ci', ...dir]);
    expect(created.code, created.err).toBe(0);
    expect(created.err).toBe('');
    expect(created.out).toMatch(/^created key_[0-9a-f]+ \(write\) for tenant "acme"/);
    const key = /(tk_\S+)/.exec(created.out)?.[1] as string;
    const sent = await post(s.url, key);
    expect(sent.status).toBe(200);
    expect(sent.body.accepted).toBe(20);
    // The server logs who did it.
    expect(s.output()).toMatch(/"admin":"keys.create","by":"admin token".*"tenant":"acme"/);
  }, 60_000);

  it('tenants set applies at once; keys list shows scopes; revoke refuses the key at once', async () => {
    const created = await run(['keys', 'create', '--tenant', 'slow', ...dir]);
    const key = /(tk_\S+)/.exec(created.out)?.[1] as string;
    const id = /created (key_[0-9a-f]+)/.exec(created.out)?.[1] as string;
    expect((await post(s.url, key, 50)).status).toBe(200);

    const set = await run(['tenants', 'set', 'slow', '--rate-limit', '1', ...dir]);
    expect(set.code, set.err).toBe(0);
    expect(set.out).toContain('tenant slow: unlisted default, rate limit 1');
    // A bucket of 5 tokens: the first batch may pass on a full bucket, the next cannot.
    await post(s.url, key, 50);
    expect((await post(s.url, key, 50)).status).toBe(429);
    expect((await run(['tenants', 'list', ...dir])).out).toMatch(/^slow\s+slow\s+default\s+1\s+default$/m);

    const admin = await run(['keys', 'create', '--scope', 'admin', '--name', 'ops', ...dir]);
    expect(admin.code, admin.err).toBe(0);
    expect(admin.out).toMatch(/\(admin\) for the whole server/);
    const listed = await run(['keys', 'list', ...dir]);
    expect(listed.out).toMatch(/^id\s+tenant\s+scope\s+prefix\s+name\s+created\s+revoked$/m);
    expect(listed.out).toMatch(/key_[0-9a-f]+\s+\(server\)\s+admin\s+tk_\S+…\s+ops/);
    expect(listed.out).toMatch(new RegExp(`${id}\\s+slow\\s+write\\s+tk_`));

    const revoked = await run(['keys', 'revoke', id, ...dir]);
    expect(revoked.code, revoked.err).toBe(0);
    expect((await post(s.url, key)).status).toBe(401);
    const again = await run(['keys', 'revoke', id, ...dir]);
    expect(again.code).toBe(1);
    expect(again.err).toContain(`TALLY_NOT_FOUND: no live key with id or prefix "${id}"`);
  });

  it('stats, jobs, archive list, migrate and doctor work through the server while it ingests', async () => {
    const stats = await run(['stats', ...dir]);
    expect(stats.code, stats.err).toBe(0);
    const events = Number(/^events\s+(\d+)\s/m.exec(stats.out)?.[1]);
    expect(events).toBeGreaterThan(0);
    const json = JSON.parse((await run(['stats', '--json', ...dir])).out) as { tables: { table: string }[] };
    expect(json.tables.map((t) => t.table)).toContain('events');

    const jobs = await run(['jobs', ...dir]);
    expect(jobs.code, jobs.err).toBe(0);
    // First start: every job ran once, in the server.
    expect(jobs.out).toMatch(/archive\s+ok/);
    expect((await run(['jobs', '--job', 'stats', ...dir])).out).not.toMatch(/archive\s+ok/);

    const archive = await run(['archive', 'list', ...dir]);
    expect(archive.code, archive.err).toBe(0);
    expect(archive.out).toMatch(/^day\s+tenant\s+table/);

    const run2 = await run(['archive', 'run', '--archive-target', '/elsewhere', ...dir]);
    expect(run2.code, run2.err).toBe(0);
    expect(run2.err).toMatch(/--archive-target ignored: the running tally serve \(pid \d+\) uses its own settings/);
    expect(run2.out).toMatch(new RegExp(`archiving detail older than 3 days to ${data.dir}/archive…\\ndone: 0 files`));

    expect((await run(['migrate', ...dir])).out).toMatch(/PGlite at .*: schema up to date/);
    const doctor = await run(['doctor', ...dir]);
    expect(doctor.code, doctor.out).toBe(0);
    expect(doctor.out).toMatch(
      new RegExp(
        `database\\s+pass\\s+PGlite is held by the server on port ${new URL(s.url).port}; its /readyz says ready`,
      ),
    );
  });

  it('rejected list and rejected replay work through the server while it ingests', async () => {
    // One event the built-in catalog does not know, sent by the tenant's write key.
    const res = await fetch(`${s.url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${s.key}` },
      body: JSON.stringify({
        batch: [{ id: uuidv7(), name: 'no_such_event', properties: { a: 1 }, timestamp: isoTime(Date.now()) }],
      }),
    });
    expect(res.status).toBe(200);
    const listed = await runProcess(['rejected', 'list', ...dir]);
    expect(listed.code, listed.err).toBe(0);
    expect(listed.out).toMatch(/^1 refused: 1 TALLY_UNKNOWN_EVENT/);
    expect(listed.out).toMatch(
      /default\s+no_such_event\s+TALLY_UNKNOWN_EVENT\s+unknown event "no_such_event"\s+\/v1\/events/,
    );
    // Still unknown to the catalog: it stays, and the command says so with exit 1.
    const replayed = await runProcess(['rejected', 'replay', ...dir]);
    expect(replayed.code).toBe(1);
    expect(replayed.out).toContain('1 examined, 0 stored, 1 still failing (1 TALLY_UNKNOWN_EVENT)');
  });

  it('another tally serve on the same data directory refuses to start', async () => {
    const second = await runProcess(['serve', '--port', '0', ...dir]);
    expect(second.code).toBe(1);
    expect(second.err).toMatch(/is in use by tally serve \(pid \d+, http:\S+\): embedded PGlite takes one process/);
  }, 60_000);

  it('ingestion never stumbled; after a clean stop the CLI opens the database itself', async () => {
    stop = true;
    await Promise.all(senders);
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.filter((x) => x !== 200)).toEqual([]);

    const exited = once(s.proc, 'exit');
    s.proc.kill('SIGTERM');
    expect((await exited)[0], s.output()).toBe(0);
    expect(existsSync(join(data.dir, 'server.json'))).toBe(false);

    const listed = await run(['keys', 'list', ...dir]);
    expect(listed.code, listed.err).toBe(0);
    expect(listed.err).toBe('');
    expect(listed.out).toMatch(/\(server\)\s+admin/);

    // A server killed without cleaning up leaves its file: the CLI says so and carries on.
    writeFileSync(
      join(data.dir, 'server.json'),
      JSON.stringify({ pid: 2 ** 22 + 17, command: 'serve', url: 'http://127.0.0.1:1', startedAt: '', version: '' }),
    );
    const stale = await run(['tenants', 'list', ...dir]);
    expect(stale.code, stale.err).toBe(0);
    expect(stale.err).toMatch(/server\.json is stale \(pid \d+ is not running/);
    expect(stale.out).toMatch(/^slow\s+slow/m);
  }, 60_000);
});

describe('the CLI beside a running tally serve on Postgres', () => {
  needs(pg).it(
    'goes through the server of the same database (changes apply at once), directly to another schema',
    async () => {
      pg.assertMet();
      const data = tempDir('tally-cli-pg-');
      const schema = freshSchema();
      const other = freshSchema();
      const s = await spawnServe(['--data-dir', data.dir, '--database-url', PG_URL, '--schema', schema]);
      try {
        const flags = ['--data-dir', data.dir, '--database-url', PG_URL];
        const created = await run(['keys', 'create', '--tenant', 'acme', '--schema', schema, ...flags]);
        expect(created.code, created.err).toBe(0);
        expect(s.output()).toMatch(/"admin":"keys.create".*"tenant":"acme"/);
        const key = /(tk_\S+)/.exec(created.out)?.[1] as string;
        const id = /created (key_[0-9a-f]+)/.exec(created.out)?.[1] as string;
        expect((await post(s.url, key)).status).toBe(200);
        // Through the server, a revoked key is refused at once (directly, its cache would keep it 30 s).
        expect((await run(['keys', 'revoke', id, '--schema', schema, ...flags])).code).toBe(0);
        expect((await post(s.url, key)).status).toBe(401);

        const elsewhere = await run(['keys', 'create', '--tenant', 'beta', '--schema', other, ...flags]);
        expect(elsewhere.code, elsewhere.err).toBe(0);
        expect(s.output()).not.toMatch(/"tenant":"beta"/);
        expect((await run(['keys', 'list', '--schema', other, ...flags])).out).toMatch(/\sbeta\s+write\s/);
        expect((await run(['keys', 'list', '--schema', schema, ...flags])).out).not.toMatch(/\sbeta\s/);
      } finally {
        s.proc.kill('SIGKILL');
        await dropSchema(schema);
        await dropSchema(other);
        data.cleanup();
      }
    },
    120_000,
  );
});
