import { describe, expect, it } from 'vitest';
import { loadConfig, parseArgs } from '../src/config.js';

describe('config', () => {
  it('defaults to embedded PGlite in ./.tally', () => {
    const c = loadConfig({}, {});
    expect(c.store).toMatchObject({ kind: 'pglite', schema: 'tally' });
    expect(c.dataDir).toMatch(/\.tally$/);
    expect(c.spoolDir).toMatch(/\.tally\/spool$/);
  });

  it('DATABASE_URL switches to Postgres; a flag beats the environment', () => {
    expect(loadConfig({}, { DATABASE_URL: 'postgres://u@h:5432/db' }).store).toEqual({
      kind: 'postgres',
      url: 'postgres://u@h:5432/db',
      schema: 'tally',
    });
    expect(loadConfig({ schema: 'flag' }, { TALLY_DB_SCHEMA: 'env' }).store.schema).toBe('flag');
  });

  it('refuses wrong settings with a message that says what to fix', () => {
    expect(() => loadConfig({}, { DATABASE_URL: 'mysql://x' })).toThrow(/must start with postgres:\/\//);
    expect(() => loadConfig({}, { DATABASE_URL: 'nonsense' })).toThrow(/not a URL/);
    expect(() => loadConfig({}, { TALLY_DB_SCHEMA: 'Robert"; DROP' })).toThrow(/TALLY_DB_SCHEMA/);
  });

  it('parses flags in both forms', () => {
    expect(parseArgs(['replay', 'f.jsonl', '--data-dir', '/d', '--schema=s', '--verbose'])).toEqual({
      flags: { 'data-dir': '/d', schema: 's', verbose: 'true' },
      positional: ['replay', 'f.jsonl'],
    });
  });
});
