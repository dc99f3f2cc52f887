/**
 * Server logs: one readable line per record for a terminal (`--log-format pretty`), pino JSON for
 * machines (`json`, and `auto` when stdout is not a terminal); every line is written before SIGTERM's
 * exit (checked on a real `tally serve` process).
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { loadConfig } from '../src/config.js';
import { createLogger, prettyLine } from '../src/log-format.js';
import { spawnServe } from './support/child-process.js';

describe('log format', () => {
  it('pretty: time, level, message, fields; an error with its stack below', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'info', format: 'pretty', destination: { write: (l) => lines.push(l) } });
    log.info({ job: 'archive', rows: 40, note: 'two words' }, 'job archive: ok');
    log.debug('not shown at info');
    log.error({ err: new Error('disk full') }, 'archive failed');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}job archive: ok job=archive rows=40 note="two words"\n$/);
    expect(lines[1]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} ERROR archive failed\n {4}Error: disk full\n {4}\s*at /);
    expect(prettyLine('not json')).toBe('not json\n');
  });

  it('json: pino lines', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'warn', format: 'json', destination: { write: (l) => lines.push(l) } });
    log.warn({ code: 'TALLY_X' }, 'careful');
    expect(JSON.parse(lines[0] as string)).toMatchObject({
      level: 40,
      service: 'tally',
      code: 'TALLY_X',
      msg: 'careful',
    });
  });

  it('--log-format / TALLY_LOG_FORMAT: auto (default), pretty or json; anything else is refused', () => {
    expect(loadConfig({}, {}).logFormat).toBe('auto');
    expect(loadConfig({ 'log-format': 'pretty' }, {}).logFormat).toBe('pretty');
    expect(loadConfig({}, { TALLY_LOG_FORMAT: 'json' }).logFormat).toBe('json');
    expect(() => loadConfig({ 'log-format': 'xml' }, {})).toThrow(
      /TALLY_LOG_FORMAT must be "auto", "pretty" or "json"/,
    );
  });

  it('tally serve: auto is JSON on a pipe, pretty when asked; lines logged before SIGTERM are all there', async () => {
    for (const format of ['auto', 'pretty'] as const) {
      const data = tempDir('tally-logs-');
      const s = await spawnServe(['--data-dir', data.dir, ...(format === 'pretty' ? ['--log-format', 'pretty'] : [])]);
      try {
        // The first start runs every missed job; each logs its outcome.
        const deadline = Date.now() + 30_000;
        while (!/job snapshot-prune: ok/.test(s.output()) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 100));
        }
        // An audit line logged just before SIGTERM: written before the answer, so it cannot be lost.
        const token = readFileSync(join(data.dir, 'admin-token'), 'utf8').trim();
        const created = await fetch(`${s.url}/v1/admin/keys`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ tenant: 'late', name: 'last words' }),
        });
        expect(created.status).toBe(200);
        const exited = once(s.proc, 'exit');
        s.proc.kill('SIGTERM');
        expect((await exited)[0]).toBe(0);
        const out = s.output();
        expect(out).toMatch(
          format === 'pretty'
            ? /^\d\d:\d\d:\d\d\.\d{3} INFO {2}admin: key created reqId=\S+ admin=keys.create by="admin token" keyId=key_\w+ tenant=late scope=write$/m
            : /^\{"level":30,.*"admin":"keys.create".*"msg":"admin: key created"\}$/m,
        );
        for (const job of ['archive', 'cleanup', 'stats', 'snapshot-prune']) {
          expect(out, format).toMatch(
            format === 'pretty'
              ? new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} INFO {2}job ${job}: ok`, 'm')
              : new RegExp(`^\\{"level":30,.*"msg":"job ${job}: ok"\\}$`, 'm'),
          );
        }
      } finally {
        s.proc.kill('SIGKILL');
        data.cleanup();
      }
    }
  }, 120_000);
});
