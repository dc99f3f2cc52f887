/**
 * The lifecycle jobs by name, each run recorded in `job_runs` (start, end, outcome, counts, error) and
 * guarded so one process at a time runs a given job (Postgres advisory lock; in-process for PGlite).
 */
import {
  detailOf,
  expireQuarantine,
  finishJobRun,
  pruneSnapshots,
  saveStorageStats,
  startJobRun,
  type StorageStats,
  type Store,
  storageStats,
  withJobLock,
} from '@tally/store';
import { runArchive } from './archive.js';
import { runCleanup } from './cleanup.js';
import type { ArchiveTarget } from './targets/target.js';

export const JOB_NAMES = ['archive', 'cleanup', 'stats', 'snapshot-prune', 'rollups'] as const;
export type JobName = (typeof JOB_NAMES)[number];

export interface JobContext {
  store: Store;
  target: ArchiveTarget;
  archiveAfterDays: number;
  keepSnapshots: number;
  /** Set: the cleanup job also deletes refused events (the quarantine) received more than this many days ago. */
  quarantineDays?: number;
  onProgress?: (line: string) => void;
}

export type JobOutcome =
  { outcome: 'ok'; counts: Record<string, number> } | { outcome: 'failed'; error: string } | { outcome: 'skipped' };

async function work(name: JobName, ctx: JobContext): Promise<Record<string, number>> {
  switch (name) {
    case 'archive': {
      const r = await runArchive(ctx.store, ctx.target, {
        olderThanDays: ctx.archiveAfterDays,
        onProgress: ctx.onProgress,
      });
      return { files: r.files, rows: r.rows, bytes: r.bytes, rawBytes: r.rawBytes };
    }
    case 'cleanup': {
      const r = await runCleanup(ctx.store, ctx.target, { onProgress: ctx.onProgress });
      if (r.refused.length > 0) {
        throw new Error(
          `deleted ${r.deleted} rows of ${r.parts} parts; refused ${r.refused.length}: ${r.refused.map((x) => x.problem).join('; ')}`,
        );
      }
      const expired = ctx.quarantineDays === undefined ? 0 : await expireQuarantine(ctx.store.sql, ctx.quarantineDays);
      if (expired > 0)
        ctx.onProgress?.(`cleanup: deleted ${expired} refused events older than ${ctx.quarantineDays} days`);
      return { parts: r.parts, deleted: r.deleted, quarantineExpired: expired };
    }
    case 'stats': {
      const s = await takeStorageStats(ctx.store);
      await saveStorageStats(ctx.store.sql, s);
      return Object.fromEntries(s.tables.map((t) => [`${t.table}_rows`, t.rows]));
    }
    case 'snapshot-prune':
      return { pruned: await pruneSnapshots(ctx.store.sql, ctx.keepSnapshots) };
    case 'rollups': {
      // ClickHouse builds its hourly counts of the days that are over; the relational store keeps its
      // rollups at insert and has nothing to do here.
      const detail = detailOf(ctx.store);
      if (!detail.sealRollups) return { built: 0 };
      const r = await detail.sealRollups({ onProgress: ctx.onProgress });
      return { built: r.built, events: r.events, deferred: r.deferred };
    }
  }
}

/** Every table's storage: the detail tables' from the store that holds them. */
export async function takeStorageStats(store: Store): Promise<StorageStats> {
  const detail = detailOf(store);
  if (detail.engine === 'relational') return storageStats(store.sql);
  return storageStats(store.sql, await detail.tableStats());
}

export async function runJob(name: JobName, ctx: JobContext): Promise<JobOutcome> {
  const result = await withJobLock(ctx.store, name, async (): Promise<JobOutcome> => {
    const id = await startJobRun(ctx.store.sql, name);
    try {
      const counts = await work(name, ctx);
      await finishJobRun(ctx.store.sql, id, 'ok', counts);
      return { outcome: 'ok', counts };
    } catch (e) {
      const error = (e as Error).message;
      await finishJobRun(ctx.store.sql, id, 'failed', {}, error).catch(() => undefined);
      return { outcome: 'failed', error };
    }
  });
  if (result) return result;
  await startJobRun(ctx.store.sql, name, 'skipped');
  ctx.onProgress?.(`${name}: another process is running it; skipped`);
  return { outcome: 'skipped' };
}
