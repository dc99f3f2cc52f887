import { connect, type Socket } from 'node:net';
import { finished } from 'node:stream/promises';
import { TallyConfigError } from '@tally/core';
import postgres from 'postgres';
import type { SqlClient } from '../../sql-client.js';

export interface PostgresClient extends SqlClient {
  close(): Promise<void>;
}

export interface PostgresOptions {
  url: string;
  schema: string;
  /** Pool size. Default 5: the writer's insert statements in flight (2 by default) and the rest for queries. */
  max?: number;
  /** Seconds to wait for a connection. Default 10. */
  connectTimeout?: number;
}

/** A pooled connection to a Postgres server; every connection works in `schema`, in UTC. */
export async function openPostgres(options: PostgresOptions): Promise<PostgresClient> {
  const sql = postgres(options.url, {
    max: options.max ?? 5,
    connect_timeout: options.connectTimeout ?? 10,
    onnotice: () => {},
    connection: { search_path: options.schema, TimeZone: 'UTC', application_name: 'tally' },
    socket: noDelaySocket,
  } as postgres.Options<Record<string, postgres.PostgresType>>);
  // Only when missing: CREATE SCHEMA IF NOT EXISTS asks for CREATE on the database even when the schema
  // is there, and a role that only writes into an existing schema need not have it.
  const [found] = await sql.unsafe('SELECT 1 FROM pg_namespace WHERE nspname = $1', [options.schema]);
  if (!found) await sql.unsafe(`CREATE SCHEMA IF NOT EXISTS "${options.schema.replace(/"/g, '""')}"`);
  const wrap = (q: postgres.Sql | postgres.TransactionSql): SqlClient => ({
    async query<R>(text: string, params?: readonly unknown[]) {
      return (await q.unsafe(text, params as postgres.ParameterOrJSON<never>[] | undefined)) as unknown as R[];
    },
    async exec(text: string) {
      await q.unsafe(text);
    },
    transaction: (fn) =>
      'begin' in q ? (q.begin((tx) => fn(wrap(tx))) as Promise<never>) : fn(wrap(q as postgres.TransactionSql)),
    copyIn: (statement, data) => copyIn(q, statement, data),
  });
  return { ...wrap(sql), close: () => sql.end({ timeout: 5 }) };
}

/**
 * Runs `COPY … FROM STDIN` with all of `data`; resolves once the server has taken every row, rejects
 * with the server's own error (SQLSTATE in `code`) or the connection's.
 *
 * postgres.js 3.4 loses an error that comes after the writable's end (porsager/postgres#1173, open): the
 * writable never finishes, so awaiting it hangs, with the connection idle in an aborted transaction. The
 * error does reach the COPY query's `reject` (its promise settled long before, with the writable), so
 * that is where we also listen. The store's tests on Postgres cover a bad row, and so would catch a
 * driver version that routes errors differently.
 */
async function copyIn(q: postgres.Sql | postgres.TransactionSql, statement: string, data: Uint8Array): Promise<void> {
  const query = q.unsafe(statement) as postgres.PendingQuery<postgres.Row[]> & { reject: (e: unknown) => void };
  let fail: (e: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => {}); // settled unobserved when the COPY succeeds or fails before its data is sent
  const ownReject = query.reject;
  query.reject = (error) => {
    fail(error);
    ownReject(error);
  };
  const stream = await query.writable();
  stream.end(data);
  await Promise.race([finished(stream), failed]);
}

/**
 * The sockets postgres.js connects through (its `socket` option, README "Custom socket"; its types omit
 * it): what postgres.js would open itself, but with Nagle's algorithm off. postgres.js leaves it on, and
 * a COPY writes its data and then a 5-byte CopyDone, which then waits for the server's delayed ACK of
 * the data (~40 ms on Linux loopback) — per batch. The socket is returned while still connecting (writes
 * queue until it is up), so postgres.js's connect timeout and error handling apply as to its own.
 */
function noDelaySocket(options: { host: string[]; port: number[]; path?: string | false }): Socket {
  const { host, port, path } = options;
  if (path) return connect({ path });
  // postgres.js rotates several hosts over its own sockets; Tally's DATABASE_URL names one.
  if (host.length !== 1)
    throw new TallyConfigError('DATABASE_URL names several hosts; give one (postgres://user@host:5432/db)');
  const socket = connect({ host: host[0] as string, port: port[0] as number, noDelay: true });
  // postgres.js names the server in connection errors from these.
  return Object.assign(socket, { host: host[0], port: port[0] });
}
