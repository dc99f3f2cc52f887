/**
 * `tally <command> --help` and `tally help <command>`: the command's usage, exit 0, and nothing touched
 * (run as real processes in an empty working directory, which must stay empty: no ./.tally, no store).
 * Mistakes exit 2 and name the closest option or command.
 */
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { type CliResult, tally as run, tallyProcess } from './support/cli.js';
import { pool } from './support/collector-requests.js';

// The defaults, in an empty directory.
const runIn = (cwd: string, args: string[]) => tallyProcess(args, { cwd, env: { HOME: cwd } });

/** The commands `tally help` lists (so a new command is covered as soon as it is listed). */
async function listed(): Promise<string[]> {
  const { out } = await run(['help']);
  const section = out.split('Commands:\n')[1]?.split('\n\n')[0] ?? '';
  return section
    .split('\n')
    .map((l) => /^ {2}(\S+(?: [a-z]+)?)\s{2,}/.exec(l)?.[1])
    .filter((c): c is string => c !== undefined && c !== 'help');
}

describe('tally <command> --help', () => {
  it('every command: usage on stdout, exit 0, nothing created in the working directory', async () => {
    const commands = await listed();
    expect(commands).toEqual(
      expect.arrayContaining(['serve', 'keys create', 'tenants set', 'stats', 'jobs', 'archive list', 'replay']),
    );
    const cwd = tempDir('tally-help-');
    try {
      const calls = commands.flatMap((c) => [
        [...c.split(' '), '--help'],
        ['help', ...c.split(' ')],
      ]);
      // Groups too, and -h.
      calls.push(['keys', '--help'], ['archive', '--help'], ['tenants', '-h'], ['stats', '-h'], ['--help']);
      // At most 4 at a time: each child loads TypeScript from source.
      const results: CliResult[] = [];
      await pool(
        calls.map((args, i) => ({ args, i })),
        4,
        async ({ args, i }) => void (results[i] = await runIn(cwd.dir, args)),
      );
      results.forEach((r, i) => {
        const args = (calls[i] as string[]).join(' ');
        expect(r.code, `tally ${args}: ${r.err}`).toBe(0);
        expect(r.err, `tally ${args}`).toBe('');
        expect(r.out, `tally ${args}`).toMatch(/^(Usage: tally |tally \d)/);
      });
      // The same text either way.
      for (const c of commands) {
        const i = calls.findIndex((a) => a.join(' ') === `${c} --help`);
        expect(results[i + 1]?.out, c).toBe(results[i]?.out);
        expect(results[i]?.out.split('\n')[0], c).toMatch(new RegExp(`^Usage: tally ${c}\\b`));
      }
      expect(readdirSync(cwd.dir)).toEqual([]);
    } finally {
      cwd.cleanup();
    }
  }, 300_000);

  it('help texts say what matters: keys create its scopes, serve every setting, archive its commands', async () => {
    const keys = await run(['keys', 'create', '--help']);
    expect(keys.out).toContain('tally keys create --scope admin');
    expect(keys.out).toMatch(/admin .*without --tenant, the\n\s+whole server/);
    expect(keys.out).toMatch(/--scope S\s+write \(default\), read or admin/);
    const serve = await run(['serve', '--help']);
    for (const flag of ['--data-dir', '--database-url', '--log-format', '--archive-target']) {
      expect(serve.out).toContain(flag);
    }
    expect(serve.out).toMatch(/--log-format\s+TALLY_LOG_FORMAT\s+auto/);
    const archive = await run(['archive', '--help']);
    expect(archive.code).toBe(0);
    expect(archive.out).toMatch(/^Usage: tally archive <run\|list\|restore>/);
  });
});

describe('mistakes exit 2 and point at the right thing', () => {
  it('an unknown option names the closest known one', async () => {
    const r = await run(['keys', 'create', '--tenat', 'acme']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /^tally keys create: unknown option --tenat; did you mean --tenant\?\nUsage: tally keys create/,
    );
    expect((await run(['stats', '--jsno'])).err).toContain('unknown option --jsno; did you mean --json?');
    expect((await run(['serve', '--data-dri', 'x'])).err).toContain('did you mean --data-dir?');
    expect((await run(['cleanup', '--dry-rn'])).err).toContain('did you mean --dry-run?');
    const far = await run(['jobs', '--frobnicate']);
    expect(far.code).toBe(2);
    expect(far.err).toMatch(/unknown option --frobnicate\n/);
  });

  it('an unknown command names the closest command', async () => {
    const r = await run(['stat']);
    expect(r.code).toBe(2);
    expect(r.err).toBe('tally: unknown command "stat"; did you mean tally stats? (see tally help)\n');
    expect((await run(['keys', 'crate'])).err).toContain('did you mean tally keys create?');
    expect((await run(['archve', 'list'])).err).toContain('did you mean tally archive?');
    expect((await run(['help', 'tenants', 'st'])).code).toBe(2);
  });

  it('missing or wrong arguments: exit 2 with the usage', async () => {
    const group = await run(['archive']);
    expect(group.code).toBe(2);
    expect(group.err).toMatch(/^tally archive: which command\?/);
    const replay = await run(['replay']);
    expect(replay.code).toBe(2);
    expect(replay.err).toMatch(/missing <file>.*\nUsage: tally replay <file>/);
    expect((await run(['keys', 'create', '--scope', 'root'])).err).toContain('--scope must be write, read, admin');
    expect((await run(['keys', 'create', '--scope', 'read'])).err).toContain('which tenant?');
    expect((await run(['tenants', 'set', 'acme'])).err).toContain('nothing to set');
    expect((await run(['stats', '--json=yes'])).code).toBe(2);
    expect((await run(['keys', 'list', '--tenant'])).code).toBe(2);
    expect((await run(['jobs', 'extra'])).err).toContain('unexpected argument "extra"');
  });

  it('version', async () => {
    expect((await run(['--version'])).out).toMatch(/^\d+\.\d+\.\d+\n$/);
    expect((await run(['version'])).out).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});
