/**
 * Postgres for the benchmarks that measure against it (ingest, ingest-http, lifecycle): one admin
 * connection, fresh schemas and temp dirs that are removed however the run ends (a failure, or an
 * interrupt passed on by bench/run.mjs), and the client and counts every such benchmark needs.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStore } from '@tally/store';
import postgres from 'postgres';

export const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

export interface BenchPostgresOptions {
  /** Names the temp dirs (`tally-bench-<name>-…`), so a leftover one says which benchmark left it. */
  name: string;
  /**
   * Extra cleanup (child processes, NATS streams). It runs first: a child still running may be writing
   * to the temp dirs and schemas removed after it.
   */
  onCleanup?: () => void | Promise<void>;
}

export interface BenchPostgres {
  /** One connection outside any benchmark schema: drops, CHECKPOINTs, cross-schema checks. */
  admin: postgres.Sql;
  /** Fails with a readable message when Postgres is not there. */
  ensureReachable(): Promise<void>;
  /** A fresh schema name, dropped by {@link BenchPostgres.cleanup} unless dropped before. */
  newSchema(): string;
  dropSchema(schema: string): Promise<void>;
  /** Runs `fn` in a fresh schema that is dropped afterwards, whatever happens. */
  inFreshSchema<T>(fn: (schema: string) => Promise<T>): Promise<T>;
  tempDir(): string;
  removeDir(dir: string): void;
  /** Lets Postgres write out the previous variant's dirty pages before the next one is timed. */
  settlePostgres(): Promise<void>;
  /** Removes whatever is still live and closes the admin connection; SIGINT and SIGTERM run it too. */
  cleanup(): Promise<void>;
}

export function benchPostgres(options: BenchPostgresOptions): BenchPostgres {
  const admin = postgres(PG_URL, { max: 1, onnotice: () => {} });
  const liveSchemas = new Set<string>();
  const tempDirs = new Set<string>();

  const dropSchema = async (schema: string): Promise<void> => {
    await admin.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    liveSchemas.delete(schema);
  };
  const newSchema = (): string => {
    const schema = `tally_bench_${randomBytes(5).toString('hex')}`;
    liveSchemas.add(schema);
    return schema;
  };
  const cleanup = async (): Promise<void> => {
    await options.onCleanup?.();
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
    for (const schema of liveSchemas) await dropSchema(schema).catch(() => undefined);
    await admin.end({ timeout: 5 }).catch(() => undefined);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void cleanup().finally(() => process.exit(130));
    });
  }

  return {
    admin,
    async ensureReachable() {
      await admin`SELECT 1`.catch((error: Error) => {
        throw new Error(`Postgres is not reachable at ${PG_URL}: ${error.message}`);
      });
    },
    newSchema,
    dropSchema,
    async inFreshSchema(fn) {
      const schema = newSchema();
      try {
        return await fn(schema);
      } finally {
        await dropSchema(schema);
      }
    },
    tempDir() {
      const dir = mkdtempSync(join(tmpdir(), `tally-bench-${options.name}-`));
      tempDirs.add(dir);
      return dir;
    },
    removeDir(dir) {
      rmSync(dir, { recursive: true, force: true });
      tempDirs.delete(dir);
    },
    async settlePostgres() {
      await admin.unsafe('CHECKPOINT').catch(() => undefined);
    },
    cleanup,
  };
}

/**
 * A postgres.js client working in `schema`, in UTC (as the store's own client), on sockets with Nagle's
 * algorithm off: postgres.js leaves it on, and COPY's small CopyDone message after the data then waits
 * for a delayed ACK (~40 ms a COPY on loopback), which would bury a per-batch cost under the wait.
 */
export function pgClient(schema: string, max = 1): postgres.Sql {
  const { hostname, port } = new URL(PG_URL);
  const options = {
    max,
    onnotice: () => {},
    connection: { search_path: schema, TimeZone: 'UTC', application_name: 'tally-bench' },
    // A documented option (README "Custom socket") that postgres.js's types omit.
    socket: () =>
      new Promise<Socket>((resolve, reject) => {
        const socket = createConnection({ host: hostname, port: Number(port), noDelay: true });
        socket.once('connect', () => resolve(socket));
        socket.once('error', reject);
      }),
  };
  return postgres(PG_URL, options);
}

/** Creates Tally's schema in `schema` through the store itself, so raw peers get the very same tables. */
export async function migrateSchema(schema: string): Promise<void> {
  const store = await createStore({ kind: 'postgres', url: PG_URL, schema, poolSize: 1 });
  try {
    await store.migrate();
  } finally {
    await store.close();
  }
}

/** Detail rows and the hourly rollup's total, which must both come to what was written. */
export async function countEvents(sql: postgres.Sql): Promise<{ events: number; rollup: number }> {
  const [row] = await sql<{ events: string; rollup: string }[]>`
    SELECT (SELECT count(*) FROM events) AS events,
           (SELECT coalesce(sum(count), 0) FROM event_counts_hourly) AS rollup`;
  return { events: Number(row?.events), rollup: Number(row?.rollup) };
}
