export { backoffDelay, parseRetryAfter, sleep } from './backoff.js';
export { currentContext, type TrackContext, withContext } from './context.js';
export type { SendOptions, SendResult, Sink } from './sink.js';
export { type ConsoleSinkOptions, createConsoleSink } from './sinks/console.js';
export { createHttpSink, type HttpSinkOptions } from './sinks/http.js';
export { createMemorySink, type MemorySink } from './sinks/memory.js';
export { isProcessAlive, Spool, type SpoolOptions, type SpoolRead } from './spool.js';
export {
  createTracker,
  type DeliveryReport,
  errorChannel,
  retryChannel,
  type Tracker,
  type TrackerOptions,
  type TrackerStats,
  type TrackOptions,
} from './tracker.js';
export { VERSION } from './version.js';
