export { loadMigrations, type Migration, migrate } from './migrate.js';
export { type EventRow, LATENCY_BUCKETS_MS, type RequestLogRow } from './rows.js';
export type { SqlClient } from './sql-client.js';
export { createStore, type Store, type StoreCapabilities, type StoreConfig } from './store.js';
export { createDirectSink } from './direct-sink.js';
export type { WorkerBackedStore } from './store-worker-protocol.js';
export {
  createWriter,
  type DeadLetter,
  isDataError,
  type ReplayReport,
  type RowKind,
  type WriteResult,
  type Writer,
  type WriterOptions,
  type WriterStats,
} from './writer.js';
