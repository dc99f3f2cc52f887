/**
 * The engines every store test runs against: PGlite in this process, and the Postgres server at
 * 127.0.0.1:5432 (database `test`), each test file in a fresh schema dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isoTime, type TallyEvent, uuidv7 } from '@tally/core';
import postgres from 'postgres';
import { createStore, type EventRow, type RequestLogRow, type Store, type StoreConfig } from '../../src/index.js';
import { needs, portOpen, probePostgres } from '../../../node/test/support/service-gate.js';

export const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

export const postgresUp = (): Promise<boolean> => portOpen(5432);

/** The Postgres server: `needs(pg)` guards its tests (skipped when it is down, failed in CI). */
export const pg = await probePostgres();

/**
 * `-worker`: the same engine behind `createStore({ worker: true })`, owned by a worker thread with its
 * writers; every suite that runs on `engines` runs unchanged on these too. With Postgres down its engines
 * are left out, unless the run requires it (CI): then they stay, and `openStore` fails them saying why.
 */
export type Engine = 'pglite' | 'postgres' | 'pglite-worker' | 'postgres-worker';
export const engines: Engine[] = needs(pg).runs
  ? ['pglite', 'postgres', 'pglite-worker', 'postgres-worker']
  : ['pglite', 'pglite-worker'];

export const isPostgres = (engine: Engine) => engine === 'postgres' || engine === 'postgres-worker';

/**
 * Runs `fn` with a superuser connection and a fresh name for a throwaway database and login role, which
 * `fn` creates as it needs them (privileges are per database and per role, so nothing else on the server
 * is touched); both are dropped afterwards, whatever happened.
 */
export async function withThrowawayDatabase(
  prefix: string,
  fn: (admin: postgres.Sql, name: string) => Promise<void>,
): Promise<void> {
  pg.assertMet();
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = postgres(PG_URL, { max: 1, onnotice: () => {} });
  try {
    await fn(admin, name);
  } finally {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.unsafe(`DROP ROLE IF EXISTS ${name}`);
    await admin.end();
  }
}

export function freshSchema(): string {
  return `tally_test_${randomBytes(6).toString('hex')}`;
}

/**
 * A migrated store in a fresh schema, and a disposer that drops the schema. `options`: the rollups it
 * keeps beyond the default ones (property dimensions, user activity).
 */
export async function openStore(
  engine: Engine,
  schema = freshSchema(),
  options: Pick<StoreConfig, 'dimensions' | 'activityRollup'> = {},
): Promise<{ store: Store; dispose: () => Promise<void> }> {
  if (isPostgres(engine)) pg.assertMet();
  const worker = engine.endsWith('-worker');
  // `pglite` on disk, as `tally serve` and apps run it (it stores by COPY: see pglite.ts); `pglite-worker`
  // in memory, which stores by INSERT … unnest. Between them the suites cover both ways.
  const dataDir = engine === 'pglite' ? mkdtempSync(join(tmpdir(), 'tally-pglite-')) : undefined;
  const store = isPostgres(engine)
    ? await createStore({ kind: 'postgres', url: PG_URL, schema, poolSize: 4, worker, ...options })
    : await createStore({ kind: 'pglite', schema, worker, ...options, ...(dataDir ? { dataDir } : {}) });
  await store.migrate();
  return {
    store,
    dispose: async () => {
      await store.close();
      if (isPostgres(engine)) await dropSchema(schema);
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function dropSchema(schema: string): Promise<void> {
  const sql = postgres(PG_URL, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await sql.end();
  }
}

let seq = 0;
export function eventRow(overrides: Partial<TallyEvent> = {}): EventRow {
  const now = Date.now();
  return {
    id: uuidv7(now),
    name: 'task_created',
    tenantId: 'tenant-a',
    userId: `user-${seq++ % 7}`,
    properties: { taskId: `t-${seq}`, taskType: 'render' },
    context: { service: 'test' },
    timestamp: isoTime(now),
    receivedAt: isoTime(now),
    ...overrides,
  };
}

export function eventRows(n: number, overrides: Partial<TallyEvent> = {}): EventRow[] {
  return Array.from({ length: n }, () => eventRow(overrides));
}

export function requestLog(overrides: Partial<RequestLogRow> = {}): RequestLogRow {
  const now = Date.now();
  return {
    id: uuidv7(now),
    tenantId: 'tenant-a',
    method: 'GET',
    route: '/users/:id',
    url: '/users/42?x=1',
    status: 200,
    durationMs: 12.5,
    userId: 'user-1',
    headers: { 'user-agent': 'test', authorization: '[REDACTED]' },
    timestamp: isoTime(now),
    receivedAt: isoTime(now),
    ...overrides,
  };
}
