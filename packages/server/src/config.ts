/**
 * The one place Tally reads its environment. Everything else receives a typed, validated Config.
 * Precedence: command-line flag > environment variable > default. A wrong value fails here, at
 * start, with a message that names the setting and how to fix it.
 */
import { resolve } from 'node:path';
import { TallyConfigError } from '@tally/core';
import type { StoreConfig } from '@tally/store';

export interface Config {
  store: StoreConfig;
  /** Where spool and dead-letter files live. */
  spoolDir: string;
  dataDir: string;
}

/** Every setting: flag, environment variable, default, meaning. The README table is generated from this list. */
export const SETTINGS = [
  {
    flag: '--database-url',
    env: 'DATABASE_URL',
    default: '(unset: embedded PGlite)',
    doc: 'Postgres server URL (`postgres://user@host:5432/db`). Unset: embedded PGlite in the data directory.',
  },
  {
    flag: '--data-dir',
    env: 'TALLY_DATA_DIR',
    default: './.tally',
    doc: 'Data directory: PGlite database (`pglite/`), spool and dead letters (`spool/`).',
  },
  {
    flag: '--schema',
    env: 'TALLY_DB_SCHEMA',
    default: 'tally',
    doc: "Postgres schema holding Tally's tables (one database can hold several).",
  },
] as const;

export type Flags = Record<string, string | undefined>;

export function loadConfig(flags: Flags = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const get = (i: number) => {
    const s = SETTINGS[i] as (typeof SETTINGS)[number];
    const v = flags[s.flag.slice(2)] ?? env[s.env];
    return v === undefined || v === '' ? undefined : v;
  };
  const dataDir = resolve(get(1) ?? '.tally');
  const schema = get(2) ?? 'tally';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new TallyConfigError(
      `TALLY_DB_SCHEMA "${schema}" is not a plain lowercase identifier (a-z, 0-9, _; ≤ 63 chars)`,
    );
  }
  const url = get(0);
  let store: StoreConfig;
  if (url === undefined) {
    store = { kind: 'pglite', dataDir: resolve(dataDir, 'pglite'), schema };
  } else {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new TallyConfigError(`DATABASE_URL is not a URL; expected e.g. postgres://user@127.0.0.1:5432/tally`);
    }
    if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
      throw new TallyConfigError(`DATABASE_URL must start with postgres:// or postgresql://, not ${parsed.protocol}//`);
    }
    store = { kind: 'postgres', url, schema };
  }
  return { store, dataDir, spoolDir: resolve(dataDir, 'spool') };
}

/** `--name value` and `--name=value` pairs, and the positional arguments left over. */
export function parseArgs(argv: readonly string[]): { flags: Flags; positional: string[] } {
  const flags: Flags = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    if (eq > 0) flags[arg.slice(2, eq)] = arg.slice(eq + 1);
    else flags[arg.slice(2)] = argv[i + 1]?.startsWith('--') === false ? (argv[++i] as string) : 'true';
  }
  return { flags, positional };
}
