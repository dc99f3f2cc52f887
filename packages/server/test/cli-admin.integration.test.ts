/** `tally keys`, `tally tenants` and `tally doctor` against real databases and NATS. */
import { createStore, findKeyOwner, hashKey } from '@tally/store';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { needs } from '../../node/test/support/service-gate.js';
import { tally as run } from './support/cli.js';
import { NATS_URL, nats, pg, serveFor } from './support/services.js';

describe('tally keys and tenants', () => {
  it('create shows the key once and stores only its hash; list; revoke makes it unknown', async () => {
    const tmp = tempDir('tally-keys-');
    const dir = ['--data-dir', tmp.dir];
    try {
      const created = await run(['keys', 'create', '--tenant', 'acme', '--name', 'ci', ...dir]);
      expect(created.code).toBe(0);
      const key = /(tk_\S+)/.exec(created.out)?.[1] as string;
      expect(key).toMatch(/^tk_[A-Za-z0-9_-]{32}$/);

      const store = await createStore({ kind: 'pglite', dataDir: `${tmp.dir}/pglite` });
      try {
        const rows = await store.sql.query<{ key_hash: string; prefix: string }>(
          'SELECT key_hash, prefix FROM api_keys',
        );
        expect(rows).toEqual([{ key_hash: hashKey(key), prefix: key.slice(0, 10) }]);
        expect(JSON.stringify(await store.sql.query('SELECT * FROM api_keys'))).not.toContain(key);
        expect((await findKeyOwner(store.sql, key))?.tenant?.id).toBe('acme');
      } finally {
        await store.close();
      }

      const listed = await run(['keys', 'list', ...dir]);
      expect(listed.out).toMatch(/key_[0-9a-f]+\s+acme\s+write\s+tk_\S+…\s+ci/);
      expect(listed.out).not.toContain(key);

      const revoked = await run(['keys', 'revoke', key.slice(0, 10), ...dir]);
      expect(revoked.code).toBe(0);
      expect((await run(['keys', 'revoke', key.slice(0, 10), ...dir])).code).toBe(1);
      const after = await createStore({ kind: 'pglite', dataDir: `${tmp.dir}/pglite` });
      try {
        expect(await findKeyOwner(after.sql, key)).toBeUndefined();
      } finally {
        await after.close();
      }

      expect((await run(['keys', 'create', ...dir])).code).toBe(2);
      expect((await run(['keys', 'create', '--tenant', 'bad tenant!', ...dir])).err).toMatch(/tenant id/);

      const set = await run(['tenants', 'set', 'acme', '--unlisted', 'accept', '--rate-limit', '500', ...dir]);
      expect(set.out).toContain('tenant acme: unlisted accept, rate limit 500');
      expect((await run(['tenants', 'list', ...dir])).out).toMatch(/acme\s+acme\s+accept\s+500/);
      expect((await run(['tenants', 'set', 'acme', '--rate-limit', 'lots', ...dir])).code).toBe(2);
      expect((await run(['tenants', 'set', 'nobody', '--rate-limit', '5', ...dir])).err).toMatch(/no tenant "nobody"/);
      expect((await run(['keys', 'list', '--tenantt', 'x', ...dir])).err).toMatch(
        /unknown option --tenantt; did you mean --tenant\?/,
      );
    } finally {
      tmp.cleanup();
    }
  }, 120_000);
});

describe('tally doctor', () => {
  it('embedded, no server: every check passes, including a write and read back', async () => {
    const tmp = tempDir('tally-doctor-');
    try {
      await run(['migrate', '--data-dir', tmp.dir]);
      const r = await run(['doctor', '--data-dir', tmp.dir, '--port', '1']);
      expect(r.out).toMatch(/database\s+pass/);
      expect(r.out).toMatch(/migrations\s+pass/);
      expect(r.out).toMatch(/round trip\s+pass\s+event \S+ written and read back/);
      expect(r.code).toBe(0);
    } finally {
      tmp.cleanup();
    }
  }, 60_000);

  it('an unreachable database or NATS fails with what to do, exit 1', async () => {
    const r = await run([
      'doctor',
      '--database-url',
      'postgres://postgres@127.0.0.1:1/test',
      '--nats-url',
      'nats://127.0.0.1:1',
      '--port',
      '1',
    ]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/database\s+FAIL\s+.*check DATABASE_URL/);
    expect(r.out).toMatch(/nats\s+FAIL\s+.*nats-server running/);
  });

  needs(pg, nats).it(
    'with NATS and a running server: stream checked, event published and read back',
    async () => {
      const s = await serveFor('postgres+nats');
      try {
        const flags = Object.entries({ ...s.flags, port: '1' }).flatMap(([k, v]) => [`--${k}`, v as string]);
        const r = await run(['doctor', ...flags]);
        expect(r.out).toMatch(/nats\s+pass/);
        expect(r.out).toMatch(/stream\s+pass\s+TEST_\w+: file storage/);
        expect(r.out).toMatch(/round trip\s+pass/);
        expect(r.code, r.out).toBe(0);
        const wrongPrefix = await run(['doctor', ...flags, '--nats-prefix', 'other']);
        expect(wrongPrefix.out).toMatch(/stream\s+FAIL\s+.*subjects/);
        expect(wrongPrefix.code).toBe(1);
      } finally {
        await s.dispose();
      }
      expect(NATS_URL).toBeTruthy();
    },
    60_000,
  );
});
