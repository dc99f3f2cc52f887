/**
 * IPC messages between the SDK benchmark's parent (bench/sdk.bench.ts), its receiver process and its
 * per-library worker processes. The parent relays the workers' count requests to the receiver, so the
 * workers and the receiver never talk directly.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export type Lib = 'tally' | 'posthog' | 'segment';
export type Phase = 'rss' | 'track' | 'eps';

export const LIB_LABELS: Record<Lib, string> = {
  tally: '@tally/node',
  posthog: 'posthog-node',
  segment: '@segment/analytics-node',
};

/** Parent → worker: what to measure. */
export interface RunRequest {
  type: 'run';
  lib: Lib;
  phase: Phase;
  /** Calls measured. */
  n: number;
  /** Calls made (and delivered) before measuring. */
  warmup: number;
  /** Measured rounds of `n` calls each (track, eps); the figure is their median. */
  rounds: number;
  /** Base URL of the receiver; each SDK appends its own path. */
  url: string;
  /** Tally's spool directory (the parent creates and removes it). */
  spoolDir: string;
}

/** Worker → parent → receiver: how many events has the receiver counted so far? */
export interface CountRequest {
  type: 'count';
  id: number;
}

export interface CountReply {
  type: 'count';
  id: number;
  count: number;
}

/** Receiver → parent, once listening. */
export interface ReceiverReady {
  type: 'ready';
  url: string;
}

/** Worker → parent. */
export interface PhaseResult {
  type: 'result';
  lib: Lib;
  phase: Phase;
  n: number;
  /** rss: MB of RSS growth; track: µs per call; eps: events per second (null if not all arrived). */
  value: number | null;
  /** track, eps: the figure of each measured round, in order (`value` is their median). */
  rounds?: number[];
  /** rss: MB of heap growth, which is steadier than RSS. */
  heapMb?: number;
  /** Events the receiver counted for this run (warm-up included) and how many were sent. */
  delivered?: number;
  expected?: number;
  /** Errors the SDK reported through its own hooks (error events, onError). */
  sdkErrors: number;
  /** Anything worth printing (e.g. Tally's own counters when something was spooled or dropped). */
  note?: string;
}

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Forks a TypeScript module under tsx, with `gc()` exposed, from the repo root (where tsx resolves). */
export function forkTs(modulePath: string): ChildProcess {
  return fork(fileURLToPath(new URL(modulePath, import.meta.url)), [], {
    cwd: REPO_ROOT,
    execArgv: ['--import', 'tsx', '--expose-gc'],
    env: process.env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/** Sends to the parent over IPC; resolves once the message is handed to the channel. */
export function sendToParent(message: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) return reject(new Error('not forked with an IPC channel'));
    process.send(message, undefined, undefined, (error: Error | null) => (error ? reject(error) : resolve()));
  });
}
