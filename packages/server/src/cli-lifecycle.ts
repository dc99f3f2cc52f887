/**
 * `tally archive run|list|restore`, `tally cleanup`, `tally stats`, `tally jobs`: the lifecycle jobs by
 * hand. Runs go through the same job runner as the scheduler (recorded in job_runs, one runner per
 * job), with progress printed as they go.
 */
import type { Writable } from 'node:stream';
import { listJobRuns, listManifests, type Store, storageStats, saveStorageStats } from '@tally/store';
import type { Config, Flags } from './config.js';
import { runCleanup } from './lifecycle/cleanup.js';
import { runJob } from './lifecycle/jobs.js';
import { runRestore } from './lifecycle/restore.js';
import { type ArchiveTarget, targetFromUrl } from './lifecycle/targets/index.js';
import { table } from './table.js';

export interface LifecycleIo {
  store: Store;
  config: Config;
  flags: Flags;
  out: Writable;
  err: Writable;
}

async function openTarget(config: Config): Promise<ArchiveTarget> {
  return targetFromUrl(config.lifecycle.target, { dataDir: config.dataDir, ...config.lifecycle.s3 });
}

const say = (out: Writable) => (line: string) => out.write(`${line}\n`);

function mb(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MB`;
}

export async function archiveCommand(io: LifecycleIo, args: string[]): Promise<number> {
  const { store, config, flags, out, err } = io;
  const [sub] = args;
  if (sub === 'run') {
    const target = await openTarget(config);
    const days = flags['older-than-days'] ? Number(flags['older-than-days']) : config.lifecycle.archiveAfterDays;
    if (!(Number.isInteger(days) && days >= 1)) {
      err.write('--older-than-days must be a whole number ≥ 1\n');
      return 2;
    }
    out.write(`archiving detail older than ${days} days to ${target.location}…\n`);
    const r = await runJob('archive', {
      store,
      target,
      archiveAfterDays: days,
      keepSnapshots: config.lifecycle.keepSnapshots,
      onProgress: say(out),
    });
    if (r.outcome === 'ok')
      out.write(`done: ${r.counts.files} files, ${r.counts.rows} rows, ${mb(r.counts.bytes ?? 0)}\n`);
    if (r.outcome === 'failed') err.write(`archive failed: ${r.error}\n`);
    return r.outcome === 'failed' ? 1 : 0;
  }
  if (sub === 'list') {
    const parts = await listManifests(store.sql, { tenantId: flags.tenant });
    out.write(
      table(
        ['day', 'tenant', 'table', 'part', 'rows', 'bytes', 'ratio', 'cleaned', 'restored', 'key'],
        parts.map((m) => [
          m.day,
          m.tenantId,
          m.table,
          String(m.part),
          String(m.rows),
          String(m.bytes),
          `${(m.rawBytes / Math.max(1, m.bytes)).toFixed(1)}×`,
          m.cleanedAt ?? '',
          m.restoredAt ?? '',
          m.key,
        ]),
      ),
    );
    return 0;
  }
  if (sub === 'restore') {
    const tenant = flags.tenant;
    const day = flags.day;
    if (!tenant || tenant === 'true' || !day || !/^\d{4}-\d{2}-\d{2}$/.test(day)) {
      err.write('tally archive restore --tenant T --day YYYY-MM-DD\n');
      return 2;
    }
    const r = await runRestore(store, await openTarget(config), tenant, day, say(out));
    out.write(`restored ${r.restored} rows of ${tenant} ${day} (${r.alreadyPresent} were already there)\n`);
    return 0;
  }
  err.write('tally archive: run, list or restore (see tally help)\n');
  return 2;
}

export async function cleanupCommand(io: LifecycleIo): Promise<number> {
  const { store, config, flags, out, err } = io;
  const target = await openTarget(config);
  if (flags['dry-run'] === 'true' || flags['include-restored'] === 'true') {
    const r = await runCleanup(store, target, {
      dryRun: flags['dry-run'] === 'true',
      includeRestored: flags['include-restored'] === 'true',
      onProgress: say(out),
    });
    out.write(
      flags['dry-run'] === 'true' ? `dry run: ${r.eligible} rows would be deleted\n` : `deleted ${r.deleted} rows\n`,
    );
    for (const x of r.refused) err.write(`refused ${x.key}: ${x.problem}\n`);
    return r.refused.length > 0 ? 1 : 0;
  }
  const r = await runJob('cleanup', {
    store,
    target,
    archiveAfterDays: config.lifecycle.archiveAfterDays,
    keepSnapshots: config.lifecycle.keepSnapshots,
    onProgress: say(out),
  });
  if (r.outcome === 'ok') out.write(`done: deleted ${r.counts.deleted} rows of ${r.counts.parts} archive parts\n`);
  if (r.outcome === 'failed') err.write(`cleanup: ${r.error}\n`);
  return r.outcome === 'failed' ? 1 : 0;
}

export async function statsCommand(io: LifecycleIo): Promise<number> {
  const { store, flags, out } = io;
  const s = await storageStats(store.sql);
  await saveStorageStats(store.sql, s);
  if (flags.json === 'true') {
    out.write(`${JSON.stringify(s, null, 2)}\n`);
    return 0;
  }
  out.write(
    table(
      ['table', 'rows', 'table', 'indexes', 'total', 'oldest', 'newest'],
      s.tables.map((t) => [
        t.table,
        String(t.rows),
        mb(t.tableBytes),
        mb(t.indexBytes),
        mb(t.totalBytes),
        t.oldest ?? '',
        t.newest ?? '',
      ]),
    ),
  );
  const a = s.archive;
  out.write(
    `archive: ${a.files} files, ${a.rows} rows (${a.cleanedRows} cleaned from the database), ${mb(a.bytes)} compressed from ${mb(a.rawBytes)}\n`,
  );
  return 0;
}

export async function jobsCommand(io: LifecycleIo): Promise<number> {
  const runs = await listJobRuns(io.store.sql, io.flags.job, 30);
  io.out.write(
    table(
      ['started', 'job', 'outcome', 'finished', 'counts / error'],
      runs.map((r) => [r.startedAt, r.job, r.outcome, r.finishedAt ?? '', r.error ?? JSON.stringify(r.counts)]),
    ),
  );
  return 0;
}
