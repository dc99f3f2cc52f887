// Sinks, their results and the retry timing are shared with @tally/store and @tally/nats, so they live in
// core; the SDK re-exports them for apps that import them from here.
export {
  type BackoffOptions,
  backoffDelay,
  parseRetryAfter,
  RETRY_AFTER_CAP_MS,
  type SendOptions,
  type SendResult,
  type Sink,
  sleep,
} from '@tally/core';
export { currentContext, type TrackContext, withContext } from './context.js';
export { type ConsoleSinkOptions, createConsoleSink } from './sinks/console.js';
export { createHttpSink, type HttpSinkOptions } from './sinks/http.js';
export { createMemorySink, type MemorySink } from './sinks/memory.js';
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
