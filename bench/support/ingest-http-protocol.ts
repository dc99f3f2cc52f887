/**
 * IPC between the HTTP ingest benchmark (bench/ingest-http.bench.ts) and its two child processes:
 * `tally serve` (bench/support/ingest-http-server.ts) and the load generator
 * (bench/support/ingest-http-load.ts). Each runs in its own process so none shares another's event loop.
 */

/** Parent → server process, as its one argument (JSON). */
export interface ServerSpec {
  /** `tally serve` flags, as the CLI takes them (`port`, `data-dir`, `schema`, `database-url`, `nats-*`…). */
  flags: Record<string, string>;
  /** Writer tuning passed to startServer (unset: the product's defaults). */
  writer?: { concurrency?: number; maxBatchRows?: number };
  /** Where to write the CPU profile of the window between `profile-start` and `stop`, if profiling. */
  profileFile?: string;
}

/** Server → parent, once listening. */
export interface ServerReady {
  type: 'ready';
  url: string;
  key: string;
}

/** Parent → server. */
export interface ServerCommand {
  type: 'mark' | 'profile-start' | 'stop';
}

/** Server → parent, in answer to `mark` (and `stop`, as `done`). */
export interface ServerMark {
  type: 'mark' | 'done';
  /** Writer counters so far. */
  stored: number;
  duplicates: number;
  deadLettered: number;
  /** This process's CPU seconds so far. */
  cpuSeconds: number;
  error?: string;
}

/** Parent → load generator: encode the bodies now (not timed), then answer `encoded`. */
export interface LoadPlan {
  type: 'plan';
  url: string;
  key: string;
  rows: number;
  seed: number;
  /** Rows are born over the 6 h before this time (ms). */
  endMs: number;
  batch: number;
  connections: number;
}

/** Parent → load generator: send everything now. */
export interface LoadGo {
  type: 'go';
}

/** Load generator → parent. */
export type LoadReport =
  | { type: 'encoded'; requests: number; bytes: number }
  | {
      type: 'done';
      requests: number;
      accepted: number;
      /** Requests answered 429/503 and sent again. */
      retries: number;
      /** Milliseconds from `go` to the last answer, on the load generator's clock. */
      ms: number;
      /** Answer time of the requests, ms. */
      p50Ms: number;
      p95Ms: number;
      cpuSeconds: number;
      error?: string;
    };

/** Sends to the parent over IPC; resolves once the message is handed to the channel. */
export function sendToParent(message: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) return reject(new Error('not forked with an IPC channel'));
    process.send(message as object, undefined, undefined, (error: Error | null) => (error ? reject(error) : resolve()));
  });
}

/** The nearest-rank percentile `p` (0–100) of `values`; null when empty. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}
