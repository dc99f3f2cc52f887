export { BodyCapture, type CapturedBody, captureResponse } from './body-capture.js';
export {
  DEFAULT_EXCLUDED_ROUTES,
  DEFAULT_REDACTED_HEADERS,
  type IpPolicy,
  maskIp,
  type PendingRequestLog,
  quotaExceeded,
  type RequestLog,
  type RequestLogOptions,
  tallyRequestLog,
  type TrackerLike,
} from './plugin.js';
export { type HistoryCaller, type HistoryOptions, type HistorySource, historyRoutes } from './history.js';
