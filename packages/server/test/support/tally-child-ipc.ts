/**
 * `tally serve` as a child process (the CLI's own `main`, as tally-child.ts runs it) with an IPC
 * channel for tests that must look inside it or break it on purpose:
 * - `{ op: 'memory' }` runs a full GC (the child is started with --expose-gc) and answers with
 *   process.memoryUsage(), so a test measures the server apart from itself;
 * - `{ op: 'reject' }` leaves a rejected promise unobserved, `{ op: 'throw' }` throws from a timer:
 *   the two faults the process guard must catch.
 */
import { main } from '../../src/cli.js';

type Command = { op: 'memory' } | { op: 'reject' } | { op: 'throw' };

process.on('message', (m: Command) => {
  if (m.op === 'memory') {
    (globalThis as { gc?: () => void }).gc?.();
    process.send?.({ op: 'memory', usage: process.memoryUsage() });
  } else if (m.op === 'reject') {
    void Promise.reject(new Error('injected rejection: nobody awaits this promise'));
  } else if (m.op === 'throw') {
    setTimeout(() => {
      throw new Error('injected exception: thrown from a timer callback');
    }, 0);
  }
});
// The channel must not keep the process alive once `serve` has drained and returned.
process.channel?.unref();

process.exitCode = await main(process.argv.slice(2));
