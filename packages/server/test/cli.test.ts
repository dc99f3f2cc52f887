import { execFileSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
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
});
