/**
 * The Next.js app of ../next-app, built with `next build` and started with `next start` as child
 * processes of the test, as a deployment would run it. Its environment is PATH and HOME, the collector's
 * address and write key, and no telemetry.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../../../node/test/support/helpers.js';
import { closedPort } from './collector.js';

export const NEXT_APP_DIR = fileURLToPath(new URL('../next-app', import.meta.url));
const nextBin = createRequire(import.meta.url).resolve('next/dist/bin/next');

function run(args: string[], env: Record<string, string>): { proc: ChildProcess; output: () => string } {
  const proc = spawn(process.execPath, [nextBin, ...args], {
    cwd: NEXT_APP_DIR,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NEXT_TELEMETRY_DISABLED: '1', ...env },
  });
  let out = '';
  proc.stdout?.on('data', (d) => (out += d));
  proc.stderr?.on('data', (d) => (out += d));
  return { proc, output: () => out };
}

export async function buildNextApp(): Promise<void> {
  const { proc, output } = run(['build'], {});
  const code = await new Promise<number | null>((r) => proc.on('exit', r));
  if (code !== 0) throw new Error(`next build exited ${code}:\n${output()}`);
}

export interface NextApp {
  url: string;
  output: () => string;
  stop(): Promise<void>;
}

/** `next start` on a free port, the tracker pointed at `collectorUrl`. */
export async function startNextApp(collectorUrl: string, writeKey: string): Promise<NextApp> {
  const port = await closedPort();
  const { proc, output } = run(['start', '-p', String(port), '-H', '127.0.0.1'], {
    TALLY_URL: collectorUrl,
    TALLY_WRITE_KEY: writeKey,
  });
  try {
    await waitFor(() => /Ready in/.test(output()) || proc.exitCode !== null, 60_000, 'next start to be ready');
  } catch (e) {
    proc.kill('SIGKILL');
    throw new Error(`${(e as Error).message}; output:\n${output()}`);
  }
  if (proc.exitCode !== null) throw new Error(`next start exited ${proc.exitCode}:\n${output()}`);
  return {
    url: `http://127.0.0.1:${port}`,
    output,
    async stop() {
      if (proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.on('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}
