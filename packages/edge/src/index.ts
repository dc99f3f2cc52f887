export { createFetchSink, type FetchLike, type FetchSinkOptions } from './fetch-sink.js';
export { type After, trackAfter } from './next.js';
export {
  createEdgeTracker,
  EDGE_LIBRARY_NAME,
  type EdgeTracker,
  type EdgeTrackerOptions,
  type EdgeTrackerStats,
  type EdgeTrackOptions,
  type FlushReport,
} from './tracker.js';
export { VERSION } from './version.js';
export { type FetchHandler, type RequestLogOptions, type WaitUntil, withRequestLog } from './workers.js';
