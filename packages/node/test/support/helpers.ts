import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TallyEvent } from '@tally/core';
import type { SendResult, Sink } from '../../src/index.js';

/** A fresh spool directory per test, removed afterwards. */
export function tempDir(prefix = 'tally-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A sink whose answers a test scripts: each send calls `answer` (which may wait on a gate), so a test
 * can hold batches in flight, fail them, or let them through.
 */
export function scriptedSink(
  answer: (events: readonly TallyEvent[], n: number, signal: AbortSignal) => Promise<SendResult> | SendResult,
): Sink & { delivered: TallyEvent[]; calls: number } {
  const sink = {
    name: 'scripted',
    delivered: [] as TallyEvent[],
    calls: 0,
    async send(events: readonly TallyEvent[], { signal }: { signal: AbortSignal }): Promise<SendResult> {
      const result = await answer(events, sink.calls++, signal);
      if (result.ok) sink.delivered.push(...events);
      return result;
    },
    async close() {},
  };
  return sink;
}

/** A promise that resolves when the signal aborts (for sinks that hang until shutdown's deadline). */
export function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

export async function waitFor(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A port nothing listens on (bound once, then released): connecting to it is refused. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
