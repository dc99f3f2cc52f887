/**
 * Managed Postgres rarely hands out CREATEROLE: a database owner without it must be able to migrate once
 * Tally's two cluster-wide roles exist (created by an administrator, or by an earlier migration), and
 * then to write and to read as a tenant.
 */
import { expect, it } from 'vitest';
import { createStore } from '../src/index.js';
import { needs } from '../../node/test/support/service-gate.js';
import { eventRows, pg, withThrowawayDatabase } from './support/stores.js';

needs(pg).describe('Postgres roles', () => {
  it('a database owner without CREATEROLE migrates, writes and reads as a tenant once the roles exist', async () => {
    await withThrowawayDatabase('tally_owner', async (admin, name) => {
      for (const role of ['tally_service', 'tally_tenant']) {
        await admin.unsafe(
          `DO $$ BEGIN CREATE ROLE ${role} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`,
        );
      }
      await admin.unsafe(`CREATE ROLE ${name} LOGIN NOCREATEROLE NOSUPERUSER IN ROLE tally_service, tally_tenant`);
      await admin.unsafe(`CREATE DATABASE ${name} OWNER ${name}`);
      const store = await createStore({ kind: 'postgres', url: `postgres://${name}@127.0.0.1:5432/${name}` });
      try {
        expect((await store.migrate()).applied.length).toBeGreaterThan(0);
        const rows = eventRows(20).map((r) => ({ ...r, tenantId: 'acme' }));
        expect(await store.insertEvents(rows)).toHaveLength(20);
        const seen = await store.asTenant('acme', (sql) =>
          sql.query<{ n: number }>('SELECT count(*)::int AS n FROM events'),
        );
        expect(seen[0]?.n).toBe(20);
        expect(await store.asTenant('other', (sql) => sql.query('SELECT id FROM events'))).toEqual([]);
      } finally {
        await store.close();
      }
    });
  });
});
