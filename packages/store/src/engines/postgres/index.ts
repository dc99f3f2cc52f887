/** A Postgres server through a connection pool: concurrent writers, advisory locks across processes. */
import type { SqlClient } from '../../sql-client.js';
import type { Engine } from '../../types.js';
import { openPostgres } from './client.js';

export interface PostgresConfig {
  kind: 'postgres';
  url: string;
  schema?: string;
  poolSize?: number;
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
  return {
    kind: 'postgres',
    schema,
    sql,
    close: client.close,
    capabilities: { concurrentWrites: true, rowLevelSecurity: true, crossProcessLocks: true },
  };
}
