/**
 * Hot-path snapshots: every K writer batches, the busiest events and paths of the last 24 h (counts,
 * error rates, p95 from the latency buckets) per tenant, saved as a new version (the newest 5 kept) and
 * held in memory, so `GET /v1/snapshots/latest` answers in O(1) without a query. The figures come from
 * the relational store's hourly rollups, or from ClickHouse's detail rows when it holds them; the
 * versions are kept in the relational store either way.
 */
import type { HotPath } from '@tally/core';
import { detailOf, LATENCY_BUCKETS_MS, latestSnapshot, saveSnapshot, type Store, type Writer } from '@tally/store';

export interface Snapshot {
  version: number;
  createdAt: string;
  tenants: Record<string, { events: { name: string; count: number }[]; paths: PathStat[] }>;
}

/** A hot path as served: the buckets summed up into their p95. */
type PathStat = Omit<HotPath, 'buckets'> & {
  /** Upper bound of the latency bucket holding the 95th percentile, ms (null: above the last bound). */
  p95Ms: number | null;
};

/** The bucket bound under which `q` of the requests fall (bucket-exact, as the rollup allows). */
export function quantileFromBuckets(buckets: readonly number[], q: number): number | null {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i] as number;
    if (seen >= q * total) return LATENCY_BUCKETS_MS[i] ?? null;
  }
  return null;
}

export interface Snapshotter {
  latest(): Snapshot | undefined;
  /** Takes one now (also what the batch watcher calls). */
  take(): Promise<Snapshot>;
  stop(): Promise<void>;
}

export async function startSnapshots(
  store: Store,
  writer: Writer,
  options: { everyBatches: number; keep: number; pollMs?: number; onError?: (e: Error) => void },
): Promise<Snapshotter> {
  const detail = detailOf(store);
  const loaded = await latestSnapshot(store.sql);
  let latest: Snapshot | undefined = loaded && {
    version: loaded.version,
    createdAt: loaded.createdAt,
    tenants: (loaded.body as { tenants: Snapshot['tenants'] }).tenants,
  };
  let lastBatches = writer.stats().batches;
  let taking: Promise<Snapshot> | undefined;

  const take = () =>
    (taking ??= (async () => {
      try {
        const raw = await detail.hotPaths(20);
        const tenants: Snapshot['tenants'] = {};
        for (const [t, v] of Object.entries(raw)) {
          tenants[t] = {
            events: v.events,
            paths: v.paths.map(({ buckets, ...p }) => ({ ...p, p95Ms: quantileFromBuckets(buckets, 0.95) })),
          };
        }
        const createdAt = new Date().toISOString();
        const version = await saveSnapshot(store.sql, { createdAt, tenants }, options.keep);
        latest = { version, createdAt, tenants };
        return latest;
      } finally {
        taking = undefined;
      }
    })());

  const timer = setInterval(() => {
    const batches = writer.stats().batches;
    if (batches - lastBatches >= options.everyBatches && !taking) {
      lastBatches = batches;
      take().catch((e: Error) => {
        try {
          options.onError?.(e);
        } catch {
          // A failing log callback must not become an unhandled rejection.
        }
      });
    }
  }, options.pollMs ?? 1000);
  timer.unref();

  return {
    latest: () => latest,
    take,
    async stop() {
      clearInterval(timer);
      await taking?.catch(() => undefined);
    },
  };
}
