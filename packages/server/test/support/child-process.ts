/** `tally serve` as a real child process (from source), for signal and crash tests. */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../../../node/test/support/helpers.js';

const entry = fileURLToPath(new URL('./tally-child.ts', import.meta.url));

export interface ServeProcess {
  proc: ChildProcess;
  url: string;
  key?: string;
  /** Everything it wrote to stdout and stderr so far. */
  output: () => string;
}

export function spawnServe(args: string[]): Promise<ServeProcess> {
  return launchServe(entry, args);
}

/**
 * Starts `entry` (a CLI entry from source) as `tally serve` on a free port and waits until it listens;
 * `ipc` adds a message channel, `nodeFlags` go before the entry (e.g. `--expose-gc`).
 */
export async function launchServe(
  entryFile: string,
  args: string[],
  options: { nodeFlags?: string[]; ipc?: boolean } = {},
): Promise<ServeProcess> {
  const proc = spawn(
    process.execPath,
    [
      ...(options.nodeFlags ?? []),
      '--conditions=source',
      '--import',
      'tsx',
      entryFile,
      'serve',
      '--port',
      '0',
      ...args,
    ],
    {
      stdio: options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
    },
  );
  let out = '';
  proc.stdout?.on('data', (d) => (out += d));
  proc.stderr?.on('data', (d) => (out += d));
  try {
    await waitFor(() => /listening on (http:\S+)/.test(out) || proc.exitCode !== null, 60_000, 'tally serve to listen');
  } catch (e) {
    proc.kill('SIGKILL');
    throw new Error(`${(e as Error).message}; output:\n${out}`);
  }
  if (proc.exitCode !== null) throw new Error(`tally serve exited ${proc.exitCode}:\n${out}`);
  return {
    proc,
    url: /listening on (http:\S+)/.exec(out)?.[1] as string,
    key: /^\s+(tk_\S+)$/m.exec(out)?.[1],
    output: () => out,
  };
}
