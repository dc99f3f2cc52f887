import { execFileSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { writeFileSync } from 'node:fs';
import { isoTime, uuidv7 } from '@tally/core';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { main } from '../src/index.js';

function capture() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d) => (text += d));
  return { stream, text: () => text };
}

describe('tally CLI', () => {
  it('demo tracks, reports mistakes and accounts for every event', async () => {
    const out = capture();
    expect(await main(['demo'], out.stream as never)).toBe(0);
    const text = out.text();
    expect(text).toContain('task_completed acme/user-42');
    expect(text).toContain('TALLY_MISSING_PROPERTY');
    expect(text).toContain('TALLY_UNKNOWN_EVENT');
    expect(text).toContain('TALLY_INVALID_TYPE');
    expect(text).toContain('"email":"[REDACTED]"');
    const m =
      /Done: (\d+) tracked → (\d+) delivered, (\d+) sampled out, (\d+) dropped .*, (\d+) spooled, 0 pending/.exec(text);
    expect(m).not.toBeNull();
    const [tracked, delivered, sampled, dropped, spooled] = (m as RegExpExecArray).slice(1).map(Number);
    expect(delivered! + sampled! + dropped! + spooled!).toBe(tracked);
  });

  it('unknown commands exit 2 with help', async () => {
    const err = capture();
    expect(await main(['frobnicate'], capture().stream as never, err.stream as never)).toBe(2);
    expect(err.text()).toContain('unknown command "frobnicate"');
  });

  it('the installed bin runs (built output)', () => {
    const bin = fileURLToPath(new URL('../bin/tally.js', import.meta.url));
    expect(execFileSync(process.execPath, [bin, 'version']).toString().trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('migrate, then replay a dead-letter file into embedded PGlite: stored once, duplicates skipped', async () => {
    const tmp = tempDir('tally-cli-');
    try {
      const out = capture();
      expect(await main(['migrate', '--data-dir', tmp.dir], out.stream as never)).toBe(0);
      expect(out.text()).toMatch(/applied 001_init/);
      const again = capture();
      expect(await main(['migrate', '--data-dir', tmp.dir], again.stream as never)).toBe(0);
      expect(again.text()).toMatch(/schema up to date/);

      const now = isoTime(Date.now());
      const row = {
        id: uuidv7(),
        name: 'hit',
        tenantId: 't',
        properties: { i: 1 },
        context: {},
        timestamp: now,
        receivedAt: now,
      };
      const line = `${JSON.stringify({ kind: 'event', code: 'TALLY_INVALID_ROW', reason: 'fixed by hand', firstSeen: now, row })}\n`;
      const file = `${tmp.dir}/letters.jsonl`;
      writeFileSync(file, line + 'not json\n');
      const first = capture();
      expect(await main(['replay', file, '--data-dir', tmp.dir], first.stream as never)).toBe(1);
      expect(first.text()).toContain('stored 1, skipped 0 duplicates, 0 still failing, 1 unreadable lines');
      writeFileSync(file, line);
      const second = capture();
      expect(await main(['replay', file, '--data-dir', tmp.dir], second.stream as never)).toBe(0);
      expect(second.text()).toContain('stored 0, skipped 1 duplicates');
    } finally {
      tmp.cleanup();
    }
  }, 120_000);

  it('a bad setting fails with the setting named, exit 1', async () => {
    const err = capture();
    expect(await main(['migrate', '--database-url', 'mysql://x'], capture().stream as never, err.stream as never)).toBe(
      1,
    );
    expect(err.text()).toContain('TALLY_CONFIG: DATABASE_URL must start with postgres://');
  });
});
