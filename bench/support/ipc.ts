/** IPC with a benchmark's child processes (servers, load generators). */
import type { ChildProcess } from 'node:child_process';

/**
 * The next IPC message of `type` from `child`; rejects if the child exits first or `timeoutMs` passes,
 * so a crashed or stuck child fails the variant instead of hanging the benchmark. `who` names the child
 * in those errors.
 */
export function nextMessage<T extends { type: string }>(
  child: ChildProcess,
  type: T['type'],
  timeoutMs: number,
  who = 'child process',
): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { type?: string }) => {
      if (message?.type !== type) return;
      done();
      resolve(message as T);
    };
    const onExit = (code: number | null, signal: string | null) => {
      done();
      reject(new Error(`${who} exited (${signal ?? `code ${code}`}) before sending "${type}"`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no "${type}" from the ${who} within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}
