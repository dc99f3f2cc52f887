import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { SqlClient } from './sql-client.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const SQL_DIR = fileURLToPath(new URL('../sql/', import.meta.url));

/** The schema's migrations, `sql/NNN_name.sql`, in version order. */
export function loadMigrations(dir = SQL_DIR): Migration[] {
  return readdirSync(dir)
    .map((file) => /^(\d+)_(.+)\.sql$/.exec(file))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ version: Number(m[1]), name: m[2] as string, sql: readFileSync(`${dir}/${m[0]}`, 'utf8') }))
    .sort((a, b) => a.version - b.version);
}

/**
 * Applies what is missing, each migration with its bookkeeping row in one transaction. An advisory
 * lock serializes migrators (two `tally serve` starting at once; parallel test files creating roles).
 */
export async function migrate(sql: SqlClient, migrations = loadMigrations()): Promise<{ applied: string[] }> {
  return sql.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext('tally:migrate'))`);
    await tx.exec(
      `CREATE TABLE IF NOT EXISTS tally_migrations (
         version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const done = new Set(
      (await tx.query<{ version: number }>('SELECT version FROM tally_migrations')).map((r) => Number(r.version)),
    );
    const applied: string[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await tx.exec(m.sql);
      await tx.query('INSERT INTO tally_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(`${String(m.version).padStart(3, '0')}_${m.name}`);
    }
    return { applied };
  });
}
