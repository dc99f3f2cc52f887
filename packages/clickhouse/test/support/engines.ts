/**
 * The engines every ClickHouse test runs against: Debian's server (18.16) at 127.0.0.1:8123, and the
 * current engine in this process through chDB. Each store gets a database of its own, dropped by its
 * cleanup, so test files never collide.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { needs, probeChdb, probeClickHouse, runTempDir } from '../../../node/test/support/service-gate.js';
import { openChdbClient } from '../../src/chdb-client.js';
import { type ClickHouseClient, createServerClient } from '../../src/client.js';
import { type ClickHouseStore, type ClickHouseStoreOptions, createClickHouseStore } from '../../src/store.js';

export const CLICKHOUSE_URL = 'http://127.0.0.1:8123';

export const server = await probeClickHouse();
export const chdb = await probeChdb();

export type ChEngine = 'server' | 'chdb';

/** The engines to run on: both when present (or when the run requires them: then an absent one fails). */
export const engines: ChEngine[] = [
  ...(needs(server).runs ? (['server'] as const) : []),
  ...(needs(chdb).runs ? (['chdb'] as const) : []),
];

let chdbClient: Promise<ClickHouseClient> | undefined;

/** chDB allows one data directory per process: one client, shared by every store of this process. */
function sharedChdb(): Promise<ClickHouseClient> {
  if (!chdbClient) {
    // The data directory lives as long as the process that opened it; the run's directory
    // (vitest.global-setup.ts) is removed when the run ends, since a worker's 'exit' may never come.
    const dir = mkdtempSync(join(runTempDir(), 'tally-chdb-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    chdbClient = openChdbClient(dir);
  }
  return chdbClient;
}

/** A client of `engine`; the server's is the caller's to close, chDB's is shared (close is a no-op). */
export async function openClient(engine: ChEngine): Promise<ClickHouseClient> {
  if (engine === 'server') {
    server.assertMet();
    return createServerClient({ url: CLICKHOUSE_URL });
  }
  chdb.assertMet();
  const shared = await sharedChdb();
  return { ...shared, close: async () => undefined };
}

export const freshDatabase = (): string => `tally_test_${Math.random().toString(36).slice(2, 10)}`;

/** A migrated store in a fresh database; `cleanup` drops the database and closes the client. */
export async function openStore(
  engine: ChEngine,
  options: Omit<ClickHouseStoreOptions, 'client'> = {},
): Promise<{ store: ClickHouseStore; cleanup: () => Promise<void> }> {
  const client = await openClient(engine);
  const database = options.database ?? freshDatabase();
  const store = createClickHouseStore({ ...options, client, database });
  await store.migrate();
  return {
    store,
    cleanup: async () => {
      await client.command(`DROP DATABASE IF EXISTS ${database}`).catch(() => undefined);
      await store.close();
    },
  };
}
