/**
 * SDK benchmark: @tally/node against posthog-node and @segment/analytics-node, same work, same run.
 *
 *   track_us  µs inside track()/capture() per call, as the caller sees it (calls in chunks of 1000 with
 *             a loop turn between chunks, so each SDK sends as it would in an app; only the calls count)
 *   eps       events/s from the first call until the receiver has counted every event
 *   rss_mb    RSS growth with 100k events queued (no loop turn, so nothing was sent)
 *
 * track and eps: a warm-up of 200k events, then 5 measured rounds of 100k, each waiting until the
 * receiver has every event; the figure is the median round, i.e. steady state, what a long-running
 * service sees (all rounds are printed, and the first round's figure is in the JSON as `*_first`: a
 * process's first 100k events run while the JIT is still compiling, which costs Tally up to half its
 * throughput). Same plan for every library.
 *
 * Each (library, measurement) runs in a fresh worker process (bench/support/sdk-worker.ts) against a
 * fresh HTTP receiver in another (bench/support/receiver-process.ts), so neither the server's CPU nor
 * another library's heap or traffic leaks into a figure. Measurements run one at a time.
 *
 * Prints a table, then as its last line `{"bench":"sdk",…,"ratio":<posthog_track_us / track_us>}`.
 * BENCH_QUICK=1: a smoke run of seconds (figures not meaningful). BENCH_LIBS=tally,posthog and
 * BENCH_PHASES=track,eps run a subset (for A/B rounds; the JSON then has nulls for what did not run).
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type CountReply,
  type CountRequest,
  forkTs,
  LIB_LABELS,
  type Lib,
  type Phase,
  type PhaseResult,
  type ReceiverReady,
  type RunRequest,
} from './support/protocol.js';
import { round } from './support/figures.js';
import { printTable } from './support/harness.js';

const QUICK = process.env.BENCH_QUICK === '1';
const LIBS = subset<Lib>(process.env.BENCH_LIBS, ['tally', 'posthog', 'segment']);
const PHASES = subset<Phase>(process.env.BENCH_PHASES, ['rss', 'track', 'eps']);

function subset<T extends string>(list: string | undefined, all: T[]): T[] {
  if (!list) return all;
  const picked = list.split(',').map((s) => s.trim());
  const unknown = picked.filter((s) => !(all as string[]).includes(s));
  if (unknown.length > 0) throw new Error(`unknown ${unknown.join(', ')}: choose from ${all.join(', ')}`);
  return all.filter((x) => picked.includes(x));
}
const ROUNDS = QUICK ? 1 : 5;
const PLAN: Record<Phase, { n: number; warmup: number; rounds: number }> = {
  rss: { n: QUICK ? 20_000 : 100_000, warmup: 1_000, rounds: 1 },
  track: { n: QUICK ? 20_000 : 100_000, warmup: QUICK ? 2_000 : 200_000, rounds: ROUNDS },
  eps: { n: QUICK ? 10_000 : 100_000, warmup: QUICK ? 1_000 : 200_000, rounds: ROUNDS },
};
const WORKER_TIMEOUT_MS = QUICK ? 60_000 : 300_000;

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();

function cleanup(): void {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    cleanup();
    process.exit(130);
  });
}

/** Registers a child so that an interrupt or a failure kills it. */
function watch(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

async function stop(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------- receiver

interface ReceiverHandle {
  url: string;
  count(): Promise<number>;
  close(): Promise<void>;
}

async function startReceiverProcess(): Promise<ReceiverHandle> {
  const child = watch(forkTs('./receiver-process.ts'));
  const pending = new Map<number, (count: number) => void>();
  let nextId = 0;
  const ready = new Promise<string>((resolve, reject) => {
    child.on('message', (m: ReceiverReady | CountReply) => {
      if (m.type === 'ready') resolve(m.url);
      else {
        pending.get(m.id)?.(m.count);
        pending.delete(m.id);
      }
    });
    child.once('exit', (code) => reject(new Error(`receiver exited (${code}) before it was ready`)));
  });
  const url = await ready;
  return {
    url,
    count: () =>
      new Promise((resolve) => {
        const id = nextId++;
        pending.set(id, resolve);
        const request: CountRequest = { type: 'count', id };
        child.send(request);
      }),
    close: async () => {
      child.disconnect();
      await stop(child, 2000);
    },
  };
}

// ---------------------------------------------------------------- workers

async function runWorker(receiver: ReceiverHandle, lib: Lib, phase: Phase): Promise<PhaseResult> {
  const spoolDir = mkdtempSync(join(tmpdir(), 'tally-bench-spool-'));
  tempDirs.add(spoolDir);
  const child = watch(forkTs('./sdk-worker.ts'));
  try {
    const result = await new Promise<PhaseResult>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${WORKER_TIMEOUT_MS} ms`)), WORKER_TIMEOUT_MS);
      child.on('message', (m: CountRequest | PhaseResult) => {
        if (m.type === 'count') {
          void receiver.count().then((count) => {
            const reply: CountReply = { type: 'count', id: m.id, count };
            if (child.connected) child.send(reply);
          });
        } else {
          clearTimeout(timer);
          resolve(m);
        }
      });
      // 'close', not 'exit': it comes after the IPC channel is drained, so a result sent just before
      // exiting is never mistaken for a missing one.
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`worker exited (${code ?? signal}) without a result`));
      });
      const request: RunRequest = { type: 'run', lib, phase, url: receiver.url, spoolDir, ...PLAN[phase] };
      child.send(request);
    });
    await stop(child, 5000);
    if (lib === 'tally' && phase !== 'rss') {
      const left = readdirSync(spoolDir);
      if (left.length > 0) result.note = `${result.note ?? ''} spool not empty: ${left.join(', ')}`.trim();
    }
    return result;
  } finally {
    await stop(child, 0);
    rmSync(spoolDir, { recursive: true, force: true });
    tempDirs.delete(spoolDir);
  }
}

// ---------------------------------------------------------------- main

const results = new Map<string, PhaseResult>();
const failures: string[] = [];
const key = (lib: Lib, phase: Phase) => `${lib}/${phase}`;

console.log(
  `SDK benchmark${QUICK ? ' (BENCH_QUICK: smoke run, figures not meaningful)' : ''}: node ${process.version}, ` +
    `${availableParallelism()} CPUs; batch 100, no compression, one fresh process per library and measurement`,
);
try {
  for (const phase of PHASES) {
    for (const lib of LIBS) {
      const plan = PLAN[phase];
      const label = `${LIB_LABELS[lib]} ${phase} (n=${plan.rounds > 1 ? `${plan.rounds}×` : ''}${plan.n})`;
      const t0 = performance.now();
      // A fresh receiver for every measurement: one that has parsed the previous libraries' millions of
      // events (and holds their killed workers' sockets) is not the same peer for the next one.
      const receiver = await startReceiverProcess();
      try {
        const r = await runWorker(receiver, lib, phase);
        results.set(key(lib, phase), r);
        console.log(`  ${label}: ${describe(r)} [${((performance.now() - t0) / 1000).toFixed(1)} s]`);
      } catch (e) {
        failures.push(`${label}: ${(e as Error).message}`);
        console.log(`  ${label}: FAILED ${(e as Error).message}`);
      } finally {
        await receiver.close();
      }
    }
  }
} finally {
  cleanup();
}

function describe(r: PhaseResult): string {
  const parts: string[] = [];
  if (r.phase === 'rss') parts.push(`+${fmt(r.value, 1)} MB RSS, +${fmt(r.heapMb ?? null, 1)} MB heap`);
  const rounds =
    r.rounds && r.rounds.length > 1
      ? ` (rounds ${r.rounds.map((v) => fmt(v, r.phase === 'track' ? 3 : 0)).join(' / ')})`
      : '';
  if (r.phase === 'track') parts.push(`${fmt(r.value, 3)} µs/call${rounds}`);
  if (r.phase === 'eps') parts.push(`${fmt(r.value, 0)} events/s${rounds}`);
  if (r.expected !== undefined) parts.push(`delivered ${r.delivered}/${r.expected}${deliveryFlag(r)}`);
  if (r.sdkErrors) parts.push(`${r.sdkErrors} SDK errors`);
  if (r.note) parts.push(r.note);
  return parts.join(', ');
}

function deliveryFlag(r: PhaseResult): string {
  if (r.delivered === r.expected) return '';
  return (r.delivered ?? 0) > (r.expected ?? 0) ? ' (DUPLICATES)' : ' (LOST EVENTS)';
}

function fmt(v: number | null | undefined, digits: number): string {
  return v === null || v === undefined ? '—' : v.toLocaleString('en-US', { maximumFractionDigits: digits });
}

function value(lib: Lib, phase: Phase): number | null {
  return results.get(key(lib, phase))?.value ?? null;
}

function firstRound(lib: Lib, phase: Phase): number | null {
  return results.get(key(lib, phase))?.rounds?.[0] ?? null;
}

function ratio(a: number | null, b: number | null): number | null {
  return a === null || b === null || b <= 0 ? null : round(a / b, 2);
}

function allDelivered(lib: Lib): string {
  const runs = (['track', 'eps'] as const).map((p) => results.get(key(lib, p)));
  if (runs.some((r) => r === undefined)) return '—';
  return runs.every((r) => r?.delivered === r?.expected) ? 'yes' : 'NO';
}

// ---------------------------------------------------------------- report

const header = ['library', 'track() µs/call', 'events/s', `RSS MB/${PLAN.rss.n / 1000}k`, 'heap MB', 'all delivered'];
const rows = LIBS.map((lib) => [
  LIB_LABELS[lib],
  fmt(value(lib, 'track'), 3),
  fmt(value(lib, 'eps'), 0),
  fmt(value(lib, 'rss'), 1),
  fmt(results.get(key(lib, 'rss'))?.heapMb, 1),
  allDelivered(lib),
]);
console.log('');
printTable(header, rows);
console.log('');
for (const f of failures) console.log(`FAILED ${f}`);

const tallyLost = (['track', 'eps'] as const).some((p) => {
  const r = results.get(key('tally', p));
  return r !== undefined && r.delivered !== r.expected;
});
if (tallyLost) console.log('Tally did not deliver exactly every event: see the lines above.');

const trackUs = round(value('tally', 'track'), 3);
const posthogTrackUs = round(value('posthog', 'track'), 3);
const eps = round(value('tally', 'eps'), 0);
const posthogEps = round(value('posthog', 'eps'), 0);
const rssMb = round(value('tally', 'rss'), 1);
const posthogRssMb = round(value('posthog', 'rss'), 1);
const trackRatio = ratio(posthogTrackUs, trackUs);
console.log(
  JSON.stringify({
    bench: 'sdk',
    track_us: trackUs,
    posthog_track_us: posthogTrackUs,
    segment_track_us: round(value('segment', 'track'), 3),
    track_ratio: trackRatio,
    eps,
    posthog_eps: posthogEps,
    segment_eps: round(value('segment', 'eps'), 0),
    eps_ratio: ratio(eps, posthogEps),
    track_us_first: round(firstRound('tally', 'track'), 3),
    posthog_track_us_first: round(firstRound('posthog', 'track'), 3),
    eps_first: round(firstRound('tally', 'eps'), 0),
    posthog_eps_first: round(firstRound('posthog', 'eps'), 0),
    rss_mb: rssMb,
    posthog_rss_mb: posthogRssMb,
    segment_rss_mb: round(value('segment', 'rss'), 1),
    rss_ratio: ratio(posthogRssMb, rssMb),
    ratio: trackRatio,
  }),
);
process.exitCode = failures.length > 0 || tallyLost ? 1 : 0;
