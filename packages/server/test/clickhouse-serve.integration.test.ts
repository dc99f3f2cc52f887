/**
 * `tally serve` with CLICKHOUSE_URL, over real HTTP, on each control plane (PGlite; Postgres, in-process
 * and through NATS JetStream): events and request logs sent to the collector are stored in ClickHouse
 * (Debian's 18.16 server) and not in the relational store; the same batch sent again stores nothing
 * twice; the query API answers from ClickHouse; `tally doctor` checks ClickHouse and passes.
 */
import { PassThrough } from 'node:stream';
import { createApiKey } from '@tally/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needs, probeClickHouse } from '../../node/test/support/service-gate.js';
import { doctor } from '../src/doctor.js';
import { loadConfig } from '../src/config.js';
import { call, event, requestLog, send } from './support/read-api.js';
import { type Backend, nats, pg, serveFor, type TestServer } from './support/services.js';

const clickhouse = await probeClickHouse();
const CLICKHOUSE_URL = 'http://127.0.0.1:8123';

const backends: Backend[] = [
  'pglite',
  ...(needs(pg).runs ? (['postgres'] as const) : []),
  ...(needs(pg, nats).runs ? (['postgres+nats'] as const) : []),
];

needs(clickhouse).describe('tally serve with ClickHouse', () => {
  describe.each(backends)('control plane %s', (backend) => {
    let s: TestServer;
    let database: string;
    const count = async (table: string) =>
      Number(
        (
          await s.server.clickhouse!.client.query<{ n: number }>(
            `SELECT count() AS n FROM ${database}.${table} WHERE tenant_id = 'acme'`,
          )
        )[0]?.n,
      );
    const until = async (check: () => Promise<boolean>, ms = 20_000) => {
      const deadline = Date.now() + ms;
      while (!(await check())) {
        if (Date.now() > deadline)
          throw new Error(
            `timed out waiting for ClickHouse: ${JSON.stringify({ events: await count('events'), logs: await count('request_logs'), writer: s.server.writer.stats() })}`,
          );
        await new Promise((r) => setTimeout(r, 100));
      }
    };

    beforeAll(async () => {
      database = `tally_serve_${Math.random().toString(36).slice(2, 10)}`;
      s = await serveFor(backend, {
        'clickhouse-url': CLICKHOUSE_URL,
        'clickhouse-database': database,
        'clickhouse-flush-ms': '20',
      });
    }, 120_000);
    afterAll(async () => {
      await s?.server.clickhouse?.client.command(`DROP DATABASE IF EXISTS ${database}`).catch(() => undefined);
      await s?.dispose();
    });

    it('stores what the collector accepts in ClickHouse, once, even when the batch is sent again', async () => {
      const key = (await createApiKey(s.server.store.sql, 'acme')).key;
      const batch = [
        ...Array.from({ length: 40 }, (_, i) =>
          event('conversation_started', { conversationId: `c${i}`, channel: 'web' }, { userId: `u${i % 5}` }),
        ),
        requestLog({ route: '/users/:id', status: 200, userId: 'u1' }),
        requestLog({ route: '/users/:id', status: 500, userId: 'u2' }),
      ];
      await send(s.server.url, key, batch);
      await until(async () => (await count('events')) === 40 && (await count('request_logs')) === 2);
      // Reversed: another message to JetStream (which drops a repeated message by its id), the same events.
      await send(s.server.url, key, [...batch].reverse());
      // The second send is answered (NATS: committed to the stream); wait for the writer to pass it.
      await until(async () => s.server.writer.stats().duplicates >= 42);
      expect(await count('events')).toBe(40);
      expect(await count('request_logs')).toBe(2);
      // Nothing went to the relational store's detail tables.
      const [rel] = await s.server.store.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM events');
      expect(Number(rel?.n)).toBe(0);
      expect(await s.server.clickhouse!.duplicates()).toEqual({ events: 0, requestLogs: 0 });
    });

    it('answers the query API and the request log detail from ClickHouse', async () => {
      const read = (await createApiKey(s.server.store.sql, 'acme', { scope: 'read' })).key;
      const r = await call(s.server.url, 'POST', '/v1/query', {
        key: read,
        body: { kind: 'logs', range: { last: '24h' } },
      });
      expect(r.status).toBe(200);
      const rows = (r.json as { rows: unknown[][] }).rows;
      expect(rows.length).toBe(2);
    });

    it('tally doctor checks ClickHouse and passes', async () => {
      const out = new PassThrough();
      let text = '';
      out.on('data', (c: Buffer) => (text += c.toString()));
      const url = new URL(s.server.url);
      const code = await doctor({ ...loadConfig(s.flags, {}), host: url.hostname, port: Number(url.port) }, out, {
        timeoutMs: 20_000,
      });
      expect(text).toMatch(/clickhouse\s+\S*\s*pass/);
      expect(text).toMatch(/clickhouse schema\s+\S*\s*pass/);
      expect(text).toMatch(/clickhouse round trip\s+\S*\s*pass/);
      expect(code, text).toBe(0);
    });
  });
});
