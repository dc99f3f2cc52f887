/**
 * IPC between the Fastify benchmark (bench/fastify.bench.ts) and its server process
 * (bench/support/fastify-server.ts). One server process per measured run: it starts, reports its port,
 * answers `mark` (counts and CPU so far) and on `stop` closes, drains its logger, counts what the logger
 * stored and exits.
 */

export const SERVER_VARIANTS = [
  'bare',
  'pino',
  'pino-redact',
  'tally',
  'tally-inline',
  'tally-pg',
  'tally-null',
] as const;
export type ServerVariant = (typeof SERVER_VARIANTS)[number];

/** Headers the Tally plugin redacts by default (packages/fastify DEFAULT_REDACTED_HEADERS), for pino's `redact`. */
export const PINO_REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
];

/** Server → parent, once listening. */
export interface ServerReady {
  type: 'ready';
  port: number;
}

/** Parent → server. `profile-start` starts the CPU profiler; `stop` stops it (writing `profileFile`). */
export interface ServerCommand {
  type: 'mark' | 'profile-start' | 'stop';
}

/** Server → parent, in answer to `mark`. */
export interface ServerMark {
  type: 'mark';
  /** Requests the HTTP server has seen so far (its `request` event). */
  served: number;
  /** This process's CPU seconds so far (all threads: the pino worker counts too). */
  cpuSeconds: number;
  /** CPU seconds of the main thread alone (the one serving requests), where /proc tells it. */
  mainCpuSeconds?: number;
  /** Tally only: log records waiting in the tracker's queue (a backlog the store has not taken yet). */
  queued?: number;
  /** Tally only: logs stored so far (committed by the writer; the null sink: delivered). */
  stored?: number;
}

/** Server → parent, in answer to `stop`, just before it exits. */
export interface ServerDone {
  type: 'done';
  served: number;
  cpuSeconds: number;
  /** Time from `stop` until the logger had written out everything (server closed, queue drained). */
  drainMs: number;
  /** What the logger stored: rows in `request_logs` (Tally), lines in the log file (pino), logs the null sink got. */
  stored?: number;
  /** Anything worth printing about the logger (tracker and writer counters). */
  note?: string;
  error?: string;
}

/** Sends to the parent over IPC; resolves once the message is handed to the channel. */
export function sendToParent(message: ServerReady | ServerMark | ServerDone): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) return reject(new Error('not forked with an IPC channel'));
    process.send(message, undefined, undefined, (error: Error | null) => (error ? reject(error) : resolve()));
  });
}
