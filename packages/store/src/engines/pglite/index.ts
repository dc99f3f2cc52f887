/**
 * PGlite: embedded Postgres (WASM) in this process, one connection, so one statement at a time and no
 * locks across processes (no other process can open its data directory).
 */
import type { Engine } from '../../types.js';
import { openPglite } from './client.js';

export interface PgliteConfig {
  kind: 'pglite';
  /** On disk when set; in memory otherwise. */
  dataDir?: string;
  schema?: string;
}

export async function openPgliteEngine(config: PgliteConfig): Promise<Engine> {
  const schema = config.schema ?? 'tally';
  const client = await openPglite({ dataDir: config.dataDir, schema });
  return {
    kind: 'pglite',
    schema,
    sql: client,
    close: client.close,
    capabilities: { concurrentWrites: false, rowLevelSecurity: true, crossProcessLocks: false },
  };
}
