/**
 * A producer process for crash and signal tests: tracks N events through the http sink, prints
 * `tracked` and then does what the test asked: wait for a signal, or exit at once with events in memory.
 * Run as `node --conditions=source --import tsx child.ts '<json options>'`.
 */
import { defineCatalog, t } from '@tally/core';
import { createHttpSink, createTracker } from '../../src/index.js';

const opts = JSON.parse(process.argv[2] ?? '{}') as {
  url: string;
  spool: string;
  n: number;
  mode: 'wait-for-signal' | 'exit-now';
  handleSignals: boolean;
};

const catalog = defineCatalog({ hit: { properties: { i: t.integer() }, required: ['i'] } });
const tracker = createTracker({
  catalog,
  sink: createHttpSink({ url: opts.url, timeoutMs: 2000 }),
  spool: opts.spool,
  maxBatchEvents: 100,
  maxInFlight: 2,
  flushIntervalMs: 50,
  retry: { initialMs: 20, maxMs: 200 },
  handleSignals: opts.handleSignals,
  shutdownTimeoutMs: 3000,
  resendSpoolOnStart: false,
  onError: () => {},
});

for (let i = 0; i < opts.n; i++) tracker.track('hit', { i });
process.stdout.write('tracked\n');

if (opts.mode === 'exit-now') {
  process.exit(0);
} else {
  // Stay alive like a server would, until a signal arrives.
  setInterval(() => {}, 1000);
}
