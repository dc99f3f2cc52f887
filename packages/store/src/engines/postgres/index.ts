/** A Postgres server through a connection pool: concurrent writers, advisory locks across processes. */
import type { SqlClient } from '../../sql-client.js';
import type { Engine } from '../../types.js';
import { openPostgres, type PostgresClient } from './client.js';

export interface PostgresConfig {
  kind: 'postgres';
  url: string;
  schema?: string;
  poolSize?: number;
  /**
   * Connections for analytics queries, a pool apart from the writers' (default 2): a slow query holds
   * one of these, never a connection a batch is waiting for. Opened at the first query.
   */
  queryPoolSize?: number;
}

export async function openPostgresEngine(config: PostgresConfig): Promise<Engine> {
  const schema = config.schema ?? 'tally';
  const client = await openPostgres({ url: config.url, schema, max: config.poolSize });
  // Inserts stage each batch in a temp table (store.ts, Staging). A role without the TEMP privilege (some
  // hardened servers revoke it from PUBLIC) would fail every batch, and the writer would retry forever:
  // such a store feeds the same statement from arrays instead (and never COPYs).
  const [temp] = await client.query<{ ok: boolean }>(`SELECT has_database_privilege(current_database(), 'TEMP') AS ok`);
  const sql: SqlClient = temp?.ok
    ? client
    : { query: client.query, exec: client.exec, transaction: client.transaction };
  let queries: Promise<PostgresClient> | undefined;
  const queryPool = () => (queries ??= openPostgres({ url: config.url, schema, max: config.queryPoolSize ?? 2 }));
  const querySql: SqlClient = {
    query: async (text, params) => (await queryPool()).query(text, params),
    exec: async (text) => (await queryPool()).exec(text),
    transaction: async (fn) => (await queryPool()).transaction(fn),
  };
  return {
    kind: 'postgres',
    schema,
    sql,
    querySql,
    close: async () => {
      const opened = queries;
      queries = undefined;
      await Promise.all([
        client.close(),
        opened?.then(
          (q) => q.close(),
          () => undefined,
        ),
      ]);
    },
    capabilities: { concurrentWrites: true, rowLevelSecurity: true, crossProcessLocks: true },
  };
}
