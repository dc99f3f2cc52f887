/** The one list of engines: a new engine is a folder here and a line in each of these two. */
import type { Engine } from '../types.js';
import { openPgliteEngine, type PgliteConfig } from './pglite/index.js';
import { openPostgresEngine, type PostgresConfig } from './postgres/index.js';

export type EngineConfig = PgliteConfig | PostgresConfig;

export function openEngine(config: EngineConfig): Promise<Engine> {
  return config.kind === 'pglite' ? openPgliteEngine(config) : openPostgresEngine(config);
}
