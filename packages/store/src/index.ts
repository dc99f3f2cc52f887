export { loadMigrations, type Migration, migrate } from './migrate.js';
export { type EventRow, LATENCY_BUCKETS_MS, type RequestLogRow } from './rows.js';
export type { SqlClient } from './sql-client.js';
export { createStore } from './create-store.js';
export type { StoreConfig } from './open-store.js';
export type { Store, StoreCapabilities } from './types.js';
export { createDirectSink } from './direct-sink.js';
export { detailOf, relationalDetail } from './detail.js';
export { type EnvelopeWriteResult, writeEnvelopes } from './envelopes.js';
export type { WorkerBackedStore } from './worker/protocol.js';
export {
  createWriter,
  type DeadLetter,
  isDataError,
  pendingSpool,
  type ReplayReport,
  type RowKind,
  type WriteResult,
  type Writer,
  type WriterOptions,
  type WriterStats,
} from './writer.js';
export {
  type ApiKeyInfo,
  checkTenantId,
  countApiKeys,
  createApiKey,
  ensureTenant,
  findKeyOwner,
  hashKey,
  KEY_SCOPES,
  type KeyOwner,
  type KeyScope,
  listApiKeys,
  listTenants,
  revokeApiKey,
  type Tenant,
  updateTenant,
} from './tenants.js';
export {
  DETAIL_TABLES,
  deleteIds,
  detailDays,
  type DetailTable,
  finishJobRun,
  heldDays,
  type HotPath,
  hotPaths,
  type HotPaths,
  insertManifest,
  type JobRun,
  lastSuccess,
  latestSnapshot,
  listJobRuns,
  listManifests,
  type ManifestRow,
  markCleaned,
  markRestored,
  nextPart,
  pruneSnapshots,
  readDayPage,
  restoreLines,
  saveSnapshot,
  saveStorageStats,
  startJobRun,
  type StorageStats,
  storageStats,
  type TableStats,
  withJobLock,
} from './lifecycle.js';
export {
  countQuarantine,
  expireQuarantine,
  listQuarantine,
  QUARANTINE_ITEM_MAX_BYTES,
  type QuarantinedEvent,
  type QuarantineEntry,
  quarantineEvents,
  type QuarantineFilter,
  quarantineTenants,
  removeQuarantined,
  trimQuarantine,
  updateQuarantined,
} from './quarantine.js';
export {
  rebuildRollups,
  type RebuildOptions,
  type RebuildResult,
  rollupCoverage,
  rollupCoverageOf,
  rollupDimensions,
} from './rollups.js';
