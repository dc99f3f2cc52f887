/**
 * The `tally` CLI in tests: `tally(args)` in this process (fast; the CLI's own code with captured
 * output), `tallyProcess(args)` as its own process from source, as a user runs it (needed beside a
 * server in this process: the CLI tells servers apart by pid).
 */
import { execFile } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli.js';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export async function tally(args: string[]): Promise<CliResult> {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (d) => (o += d));
  err.on('data', (d) => (e += d));
  const code = await main(args, out as never, err as never);
  return { code, out: o, err: e };
}

const entry = fileURLToPath(new URL('./tally-child.ts', import.meta.url));
// Absolute, so a child in another working directory resolves it.
const tsx = import.meta.resolve('tsx');

/** No inherited TALLY_* or DATABASE_URL: only the flags given (and `env`). */
export function tallyProcess(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--conditions=source', '--import', tsx, entry, ...args],
      { cwd: options.cwd, env: options.env ?? {}, timeout: options.timeoutMs ?? 60_000, killSignal: 'SIGKILL' },
      (error, stdout, stderr) =>
        resolve({ code: error ? (error.killed ? -1 : Number(error.code ?? 1)) : 0, out: stdout, err: stderr }),
    );
  });
}
