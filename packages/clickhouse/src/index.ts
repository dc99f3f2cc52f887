export { openChdbClient } from './chdb-client.js';
export {
  type ClickHouseClient,
  type ClickHouseEngine,
  ClickHouseQueryError,
  createServerClient,
  type ServerClientOptions,
  type Settings,
} from './client.js';
export { type ClickHouseDetailOptions, type ClickHouseDetailSource, createClickHouseDetail } from './lifecycle.js';
export { MIGRATIONS, migrate, serverVersion } from './schema.js';
export {
  type ClickHouseStore,
  type ClickHouseStoreOptions,
  createClickHouseStore,
  localSerialize,
  type Serialize,
} from './store.js';
