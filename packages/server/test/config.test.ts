import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { loadConfig, SETTINGS } from '../src/config.js';

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

  it('serve settings: defaults, NATS, limits; wrong values name the setting', () => {
    const c = loadConfig({}, {});
    expect(c).toMatchObject({ host: '127.0.0.1', port: 8787, nats: undefined, unlisted: 'reject' });
    expect(c.rateLimit).toEqual({ perSecond: 20000, burst: 100000 });
    expect(loadConfig({}, { NATS_URL: '127.0.0.1:4222,nats://h2:4222' }).nats).toEqual({
      servers: ['127.0.0.1:4222', 'nats://h2:4222'],
      prefix: 'tally',
      stream: 'ANALYTICS',
    });
    expect(() => loadConfig({}, { NATS_URL: 'http://x' })).toThrow(/NATS_URL must use nats:\/\//);
    expect(() => loadConfig({}, { NATS_URL: 'nats://x', TALLY_NATS_PREFIX: 'a.b' })).toThrow(/one subject token/);
    expect(() => loadConfig({}, { TALLY_PORT: '70000' })).toThrow(/TALLY_PORT must be an integer from 0 to 65535/);
    expect(() => loadConfig({}, { TALLY_RATE_LIMIT: '-1' })).toThrow(/TALLY_RATE_LIMIT/);
    expect(() => loadConfig({}, { TALLY_UNLISTED: 'maybe' })).toThrow(/"reject" or "accept"/);
    expect(loadConfig({ 'rate-limit': '0' }, {}).rateLimit.perSecond).toBe(0);
  });

  it('--dashboard: on by default, off turns it off, anything else names the setting', () => {
    expect(loadConfig({}, {}).dashboard).toBe(true);
    expect(loadConfig({ dashboard: 'off' }, {}).dashboard).toBe(false);
    expect(loadConfig({}, { TALLY_DASHBOARD: 'off' }).dashboard).toBe(false);
    expect(() => loadConfig({}, { TALLY_DASHBOARD: 'no' })).toThrow(/TALLY_DASHBOARD must be "on" or "off"/);
  });

  it('a JSON config file fills in what flags and environment leave unset', () => {
    const tmp = tempDir();
    try {
      const file = `${tmp.dir}/tally.json`;
      writeFileSync(file, JSON.stringify({ port: 9000, 'nats-url': 'nats://127.0.0.1:4222', unlisted: 'accept' }));
      const c = loadConfig({ config: file }, { TALLY_PORT: '9001' });
      expect(c.port).toBe(9001); // the environment beats the file
      expect(c.nats?.servers).toEqual(['nats://127.0.0.1:4222']);
      expect(c.unlisted).toBe('accept');
      writeFileSync(file, JSON.stringify({ prot: 1 }));
      expect(() => loadConfig({ config: file }, {})).toThrow(/unknown setting "prot"/);
      writeFileSync(file, '{');
      expect(() => loadConfig({ config: file }, {})).toThrow(/not JSON/);
      expect(() => loadConfig({ config: `${tmp.dir}/none.json` }, {})).toThrow(/config file/);
    } finally {
      tmp.cleanup();
    }
  });

  it('the README documents every setting', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    for (const s of SETTINGS) expect(readme).toContain(`| \`${s.flag}\` | \`${s.env}\` |`);
  });
});
