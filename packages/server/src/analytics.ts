/**
 * Where events and request logs live. Without CLICKHOUSE_URL, in the relational store with everything
 * else. With it, in ClickHouse: `analyticsStore` gives the writer, the query API and the history API a
 * Store whose analytics side (inserts, queries, history, totals) is ClickHouse's while its control plane
 * (SQL, tenants, keys, jobs, quarantine, migrations of the relational schema) stays the relational
 * store's, as Plausible keeps its config in Postgres and its stats in ClickHouse.
 */
import {
  type ClickHouseClient,
  type ClickHouseStore,
  createClickHouseDetail,
  createClickHouseStore,
  createServerClient,
  localSerialize,
  type Serialize,
} from '@tally/clickhouse';
import type { RollupDimensions } from '@tally/core';
import type { Store } from '@tally/store';
import type { ClickHouseConfig } from './config.js';

/** Told of every insert into ClickHouse (metrics). */
export type InsertObserver = (outcome: 'ok' | 'error', rows: number, seconds: number) => void;

/**
 * Inserts into one ClickHouse database one at a time, across every process that shares `store`'s
 * control plane: in this process by a queue, across processes (Postgres) by a transaction-scoped
 * advisory lock held while the insert runs. See @tally/clickhouse store.ts for why it must be so.
 */
export function crossProcessSerialize(store: Store, database: string): Serialize {
  const local = localSerialize();
  if (!store.capabilities.crossProcessLocks) return local;
  const key = `tally.clickhouse.insert.${database}`;
  return <T>(fn: () => Promise<T>) =>
    local(() =>
      store.sql.transaction(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [key]);
        return fn();
      }),
    );
}

/** A client that reports each insert's rows, outcome and time. */
function observed(client: ClickHouseClient, observe: InsertObserver | undefined): ClickHouseClient {
  if (!observe) return client;
  return {
    ...client,
    async insert(table, columns, data, settings) {
      const started = performance.now();
      try {
        await client.insert(table, columns, data, settings);
        observe('ok', data.rows, (performance.now() - started) / 1000);
      } catch (error) {
        observe('error', data.rows, (performance.now() - started) / 1000);
        throw error;
      }
    },
  };
}

/** Opens and migrates the ClickHouse store of `config`. */
export async function openClickHouse(
  config: ClickHouseConfig,
  store: Store,
  observe?: InsertObserver,
  options: { migrate?: boolean; dimensions?: RollupDimensions } = {},
): Promise<ClickHouseStore> {
  const client = observed(createServerClient({ url: config.url }), observe);
  const clickhouse = createClickHouseStore({
    client,
    database: config.database,
    serialize: crossProcessSerialize(store, config.database),
    dimensions: options.dimensions ?? {},
  });
  try {
    if (options.migrate ?? true) await clickhouse.migrate();
    else await clickhouse.client.query('SELECT 1');
  } catch (error) {
    await clickhouse.close().catch(() => undefined);
    throw new Error(
      `ClickHouse at ${redactUrl(config.url)} could not be prepared (${(error as Error).message}); check CLICKHOUSE_URL, that the server runs and that its user may create the database ${config.database}`,
      { cause: error },
    );
  }
  return clickhouse;
}

/** A URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(unparseable URL)';
  }
}

/**
 * The Store the writer and the readers use: `store` with its analytics side answered by `clickhouse`.
 * Built field by field, not spread: a worker-backed store's writer hook must not come along (the
 * writer then runs here, inserting into ClickHouse, instead of on the PGlite worker).
 */
export function analyticsStore(store: Store, clickhouse: ClickHouseStore): Store {
  return {
    kind: store.kind,
    schema: store.schema,
    // The writer's two inserts in flight overlap where they can: one encodes its rows while the other
    // holds the insert lock (crossProcessSerialize), so ClickHouse is never left waiting for the next batch.
    capabilities: { ...store.capabilities, concurrentWrites: true },
    sql: store.sql,
    migrate: () => store.migrate(),
    asTenant: (tenantId, fn) => store.asTenant(tenantId, fn),
    insertEvents: (rows) => clickhouse.insertEvents(rows),
    insertRequestLogs: (rows) => clickhouse.insertRequestLogs(rows),
    requestHistory: (query) => clickhouse.requestHistory(query),
    requestLog: (tenantId, userId, id) => clickhouse.requestLog(tenantId, userId, id),
    query: (tenantId, query, options) => clickhouse.query(tenantId, query, options),
    totals: () => clickhouse.totals(),
    // The lifecycle jobs, the export and the snapshots read and delete detail rows here.
    detail: createClickHouseDetail(clickhouse),
    close: () => store.close(),
  };
}
