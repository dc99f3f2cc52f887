/**
 * The one seam between Tally's SQL and a database driver: PGlite (embedded, in this process) or
 * postgres.js (a Postgres server). Everything above speaks plain Postgres SQL through this.
 */
export interface SqlClient {
  /** One parameterized statement; rows as objects. */
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
  /** Several statements, no parameters (migrations). */
  exec(text: string): Promise<void>;
  /** Runs `fn` in one transaction on one connection; commits if it resolves, rolls back if it throws. */
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T>;
  /**
   * Runs `statement`, which ends in a `COPY … FROM STDIN` (text format), and feeds that COPY `data`, on
   * this client's connection (inside `transaction`, the transaction's); rejects with the server's error.
   * Postgres streams it; PGlite reads it from a Blob (`FROM '/dev/blob'`).
   */
  copyIn?(statement: string, data: Uint8Array): Promise<void>;
}

/** Quotes an identifier (schema names come from config: never interpolate them raw). */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
