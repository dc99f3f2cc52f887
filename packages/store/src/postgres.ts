import postgres from 'postgres';
import type { SqlClient } from './sql-client.js';

export interface PostgresClient extends SqlClient {
  close(): Promise<void>;
}

export interface PostgresOptions {
  url: string;
  schema: string;
  /** Pool size. Default 4. */
  max?: number;
  /** Seconds to wait for a connection. Default 10. */
  connectTimeout?: number;
}

/** A pooled connection to a Postgres server; every connection works in `schema`, in UTC. */
export async function openPostgres(options: PostgresOptions): Promise<PostgresClient> {
  const sql = postgres(options.url, {
    max: options.max ?? 4,
    connect_timeout: options.connectTimeout ?? 10,
    onnotice: () => {},
    connection: { search_path: options.schema, TimeZone: 'UTC', application_name: 'tally' },
  });
  await sql.unsafe(`CREATE SCHEMA IF NOT EXISTS "${options.schema.replace(/"/g, '""')}"`);
  const wrap = (q: postgres.Sql | postgres.TransactionSql): SqlClient => ({
    async query<R>(text: string, params?: readonly unknown[]) {
      return (await q.unsafe(text, params as postgres.ParameterOrJSON<never>[] | undefined)) as unknown as R[];
    },
    async exec(text: string) {
      await q.unsafe(text);
    },
    transaction: (fn) =>
      'begin' in q ? (q.begin((tx) => fn(wrap(tx))) as Promise<never>) : fn(wrap(q as postgres.TransactionSql)),
  });
  return { ...wrap(sql), close: () => sql.end({ timeout: 5 }) };
}
