export { type EventRow, LATENCY_BUCKETS_MS, type RequestLogRow } from '@tally/core';
