/**
 * `tally serve` as a real child process with an IPC channel (see tally-child-ipc.ts): its output kept
 * for assertions, its memory measurable after a GC, faults injectable.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { launchServe } from './child-process.js';

const entry = fileURLToPath(new URL('./tally-child-ipc.ts', import.meta.url));

export interface IpcServeProcess {
  proc: ChildProcess;
  url: string;
  port: number;
  key: string;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** Heap and RSS after a full GC in the child. */
  memory(): Promise<NodeJS.MemoryUsage>;
  inject(fault: 'reject' | 'throw'): void;
  /** SIGTERM, then the exit code (SIGKILL after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<number | null>;
}

/** Words Node and the process guard use for errors nobody handled; a healthy server's log has none. */
export const UNHANDLED = /unhandled|uncaught/i;

export async function spawnServeIpc(args: string[]): Promise<IpcServeProcess> {
  const { proc, url, key, output } = await launchServe(entry, args, { nodeFlags: ['--expose-gc'], ipc: true });
  return {
    proc,
    url,
    port: Number(new URL(url).port),
    key: key as string,
    output,
    async memory() {
      const answer = new Promise<NodeJS.MemoryUsage>((resolve) => {
        const on = (m: { op?: string; usage?: NodeJS.MemoryUsage }) => {
          if (m.op !== 'memory') return;
          proc.off('message', on);
          resolve(m.usage as NodeJS.MemoryUsage);
        };
        proc.on('message', on);
      });
      proc.send({ op: 'memory' });
      return answer;
    },
    inject(fault) {
      proc.send({ op: fault });
    },
    async stop(timeoutMs = 30_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      const exited = once(proc, 'exit');
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      const [code] = (await exited) as [number | null];
      clearTimeout(timer);
      return code;
    },
  };
}
