/**
 * `tally archive run|list|restore`, `tally cleanup`, `tally stats`, `tally jobs`: the lifecycle jobs by
 * hand, over AdminOps (the running server's admin API or a store of the CLI's own). Runs go through the
 * same job runner as the scheduler (recorded in job_runs, one runner per job), with progress printed as
 * it comes.
 */
import type { Writable } from 'node:stream';
import type { AdminOps } from './admin/ops.js';
import { table } from './table.js';

export interface LifecycleIo {
  ops: AdminOps;
  out: Writable;
  err: Writable;
}

const say = (out: Writable) => (line: string) => out.write(`${line}\n`);

function mb(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MB`;
}

export async function archiveRun(io: LifecycleIo, olderThanDays: number | undefined): Promise<number> {
  const { ops, out, err } = io;
  const r = await ops.runArchive({ olderThanDays }, say(out));
  const o = r.outcome;
  if (o.outcome === 'ok')
    out.write(`done: ${o.counts.files} files, ${o.counts.rows} rows, ${mb(o.counts.bytes ?? 0)}\n`);
  if (o.outcome === 'failed') err.write(`archive failed: ${o.error}\n`);
  return o.outcome === 'failed' ? 1 : 0;
}

export async function archiveList(io: LifecycleIo, tenant: string | undefined): Promise<number> {
  const parts = await io.ops.listArchive({ tenant });
  io.out.write(
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

export async function archiveRestore(io: LifecycleIo, tenant: string, day: string): Promise<number> {
  const r = await io.ops.restoreArchive({ tenant, day }, say(io.out));
  io.out.write(`restored ${r.restored} rows of ${tenant} ${day} (${r.alreadyPresent} were already there)\n`);
  return 0;
}

export async function cleanup(
  io: LifecycleIo,
  options: { dryRun: boolean; includeRestored: boolean },
): Promise<number> {
  const { ops, out, err } = io;
  const r = await ops.cleanup(options, say(out));
  if (r.report) {
    out.write(
      options.dryRun ? `dry run: ${r.report.eligible} rows would be deleted\n` : `deleted ${r.report.deleted} rows\n`,
    );
    for (const x of r.report.refused) err.write(`refused ${x.key}: ${x.problem}\n`);
    return r.report.refused.length > 0 ? 1 : 0;
  }
  const o = r.outcome;
  if (o?.outcome === 'ok') out.write(`done: deleted ${o.counts.deleted} rows of ${o.counts.parts} archive parts\n`);
  if (o?.outcome === 'failed') err.write(`cleanup: ${o.error}\n`);
  return o?.outcome === 'failed' ? 1 : 0;
}

export async function stats(io: LifecycleIo, json: boolean): Promise<number> {
  const { ops, out } = io;
  const s = await ops.stats();
  if (json) {
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

export async function jobs(io: LifecycleIo, job: string | undefined): Promise<number> {
  const runs = await io.ops.jobs({ job, limit: 30 });
  io.out.write(
    table(
      ['started', 'job', 'outcome', 'finished', 'counts / error'],
      runs.map((r) => [r.startedAt, r.job, r.outcome, r.finishedAt ?? '', r.error ?? JSON.stringify(r.counts)]),
    ),
  );
  return 0;
}
