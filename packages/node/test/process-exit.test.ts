/**
 * Nothing lost when the process ends: a real child process tracks events, then exits or is sent
 * SIGTERM; whatever it did not deliver is in its spool, and the next tracker resends it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { defineCatalog, t } from '@tally/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpSink, createTracker } from '../src/index.js';
import { tempDir, waitFor } from './support/helpers.js';
import { type Receiver, startReceiver } from './support/receiver.js';

const child = fileURLToPath(new URL('./support/child.ts', import.meta.url));
const catalog = defineCatalog({ hit: { properties: { i: t.integer() }, required: ['i'] } });
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function runChild(opts: Record<string, unknown>): Promise<{ proc: ChildProcess; exited: Promise<unknown[]> }> {
  const proc = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', child, JSON.stringify(opts)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanups.push(() => proc.exitCode === null && proc.kill('SIGKILL'));
  const exited = once(proc, 'exit');
  let out = '';
  proc.stdout?.on('data', (d) => (out += d));
  await waitFor(() => out.includes('tracked') || proc.exitCode !== null, 20_000, 'child to track');
  return { proc, exited };
}

/** A second life: a tracker on the same spool resends at start what the first one left. */
async function resendFrom(spool: string, receiver: Receiver) {
  const tracker = createTracker({
    catalog,
    sink: createHttpSink({ url: `${receiver.url}/v1/events` }),
    spool,
    onError: () => {},
  });
  await waitFor(() => tracker.stats().replayed > 0 || tracker.stats().dropped.TALLY_SPOOL_CORRUPT !== undefined);
  await tracker.replaySpool();
  return tracker.shutdown();
}

function expectAllOnce(receiver: Receiver, n: number) {
  const is = new Set(receiver.events.map((e) => (e.properties as { i: number }).i));
  expect(is.size).toBe(n);
  expect(receiver.ids.size).toBe(n);
}

describe('process end', () => {
  it('SIGTERM with handleSignals: in-flight and queued events are delivered before exit', async () => {
    const receiver = await startReceiver();
    const tmp = tempDir();
    cleanups.push(receiver.close, tmp.cleanup);
    // A slow receiver keeps batches in flight and events queued when the signal lands.
    receiver.behave = () => ({ status: 200, delayMs: 30 });
    const n = 5000;
    const { proc, exited } = await runChild({
      url: `${receiver.url}/v1/events`,
      spool: tmp.dir,
      n,
      mode: 'wait-for-signal',
      handleSignals: true,
    });
    proc.kill('SIGTERM');
    const [code, signal] = await exited;
    // The tracker drains, then lets SIGTERM terminate the process as it would have.
    expect(signal ?? code).toBe('SIGTERM');
    expectAllOnce(receiver, n);
  });

  it('SIGTERM while the receiver is down: everything is spooled, and resent by the next process', async () => {
    const receiver = await startReceiver();
    const tmp = tempDir();
    cleanups.push(receiver.close, tmp.cleanup);
    receiver.behave = () => ({ status: 503, discard: true });
    const n = 3000;
    const { proc, exited } = await runChild({
      url: `${receiver.url}/v1/events`,
      spool: tmp.dir,
      n,
      mode: 'wait-for-signal',
      handleSignals: true,
    });
    proc.kill('SIGTERM');
    await exited;
    expect(receiver.events).toHaveLength(0);
    receiver.behave = () => ({ status: 200 });
    const report = await resendFrom(tmp.dir, receiver);
    expect(report.dropped).toEqual({});
    expectAllOnce(receiver, n);
  });

  it('process.exit() with events in memory: the exit hook spools them for the next start', async () => {
    const receiver = await startReceiver();
    const tmp = tempDir();
    cleanups.push(receiver.close, tmp.cleanup);
    const n = 2000;
    const { exited } = await runChild({
      url: `${receiver.url}/v1/events`,
      spool: tmp.dir,
      n,
      mode: 'exit-now',
      handleSignals: false,
    });
    await exited;
    await resendFrom(tmp.dir, receiver);
    expectAllOnce(receiver, n);
  });
});
