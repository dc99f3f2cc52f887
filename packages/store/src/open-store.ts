/** A Store in this thread: open the configured engine, build the Store on it. */
import { type EngineConfig, openEngine } from './engines/index.js';
import type { RollupDimensions } from './query/types.js';
import { buildStore } from './store.js';
import { writesFirst } from './write-first.js';
import type { Store } from './types.js';

export type StoreConfig = EngineConfig & {
  /**
   * Run the engine, and every writer created on this store, on a worker thread (see worker/host.ts).
   * Meant for PGlite, whose WASM Postgres otherwise runs on the app's thread.
   * `{ nice }` also lowers that thread's CPU priority (0–19, the Unix nice scale; Linux only, where it
   * is per thread): an app that stores its own request logs serves first and stores with the CPU left over,
   * instead of the two threads splitting the cores while it is busy. The backlog waits in the tracker
   * and the writer meanwhile (bounded, spooled past their limits: never lost).
   */
  worker?: boolean | { nice?: number };
  /**
   * Top-level properties to roll up per hour and value, by event name (`event_props_hourly`): breakdowns
   * and equality filters on them are answered without the detail rows. The server passes the catalog's
   * enum and boolean properties.
   */
  dimensions?: RollupDimensions;
  /**
   * Keep user_activity_hourly (which users did each event, per UTC hour): retention then answers from it,
   * several times faster, but every insert costs about 1.5–2× the CPU. Default false: the insert paths
   * leave it alone, and opening (migrate() or the first insert) marks it not covered in rollup_coverage,
   * so that retention reads the detail rows. Turned on, it is complete from the next UTC hour (`tally
   * rollups rebuild` fills in the past).
   */
  activityRollup?: boolean;
};

/** Opens the store in this thread, whatever `config.worker` says (the worker thread itself calls this). */
export async function openStore(config: StoreConfig): Promise<Store> {
  const engine = await openEngine(config);
  const store = buildStore(engine, { dimensions: config.dimensions, activityRollup: config.activityRollup });
  // One connection: statements take turns, and writes take theirs first (write-first.ts).
  return engine.capabilities.concurrentWrites ? store : writesFirst(store);
}
