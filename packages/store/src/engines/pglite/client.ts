import { mkdir } from 'node:fs/promises';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { ident, type SqlClient } from '../../sql-client.js';

export interface PgliteClient extends SqlClient {
  close(): Promise<void>;
}

/**
 * PGlite is one connection inside this process (WASM): queries run one at a time, in order, so the
 * writer that owns it is the only writer; reads share the same instance.
 */
export async function openPglite(options: { dataDir?: string; schema: string }): Promise<PgliteClient> {
  // PGlite creates only the last directory of the path; `.tally/pglite` on a fresh clone needs both.
  if (options.dataDir) await mkdir(options.dataDir, { recursive: true });
  const db = await PGlite.create(options.dataDir ? { dataDir: options.dataDir } : {});
  await db.exec(
    `CREATE SCHEMA IF NOT EXISTS ${ident(options.schema)}; SET search_path TO ${ident(options.schema)}; SET TIME ZONE 'UTC';`,
  );
  const wrap = (q: PGlite | Transaction): SqlClient => ({
    async query<R>(text: string, params?: readonly unknown[]) {
      return (await q.query<R>(text, params as unknown[] | undefined)).rows;
    },
    async exec(text: string) {
      await q.exec(text);
    },
    transaction: (fn) => (q instanceof PGlite ? q.transaction((tx) => fn(wrap(tx))) : fn(wrap(q))),
    // PGlite speaks no COPY sub-protocol: `COPY … FROM '/dev/blob'` reads the Blob given with the query.
    // On disk a batch stored so costs PGlite ~30–37 µs of CPU a row against ~42–55 by INSERT … unnest.
    // In memory (no dataDir) COPY slows down as the table grows (the 40k rows after the first 160k took
    // over 10× as long as the first 40k; INSERT … unnest held its pace), so an in-memory PGlite has no
    // copyIn and the store uses INSERT.
    ...(options.dataDir
      ? {
          async copyIn(statement: string, data: Uint8Array) {
            await q.exec(statement.replace(/ FROM STDIN\b/, " FROM '/dev/blob'"), { blob: new Blob([data]) });
          },
        }
      : {}),
  });
  return {
    ...wrap(db),
    close: () => db.close(),
  };
}
