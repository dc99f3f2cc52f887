/**
 * `createStore`: the store in this thread, or behind a worker thread that runs it (worker/). The only
 * module that knows both, so neither the Store nor the worker proxy imports the other.
 */
import { openStore, type StoreConfig } from './open-store.js';
import type { Store } from './types.js';
import { openWorkerStore } from './worker/host.js';

export function createStore(config: StoreConfig): Promise<Store> {
  return config.worker ? openWorkerStore(config) : openStore(config);
}
