/**
 * `GET /v1/admin/system`: how this server's ingestion is doing right now, from what it already tracks:
 * the ingestion lag of /metrics, the writer's queue and counters, the transport's, the live streams', and
 * the spool directory's files of rows that are not stored (dead letters of the writer and of NATS, pending
 * spools left by a shutdown). Read-only and cheap: nothing here touches the database.
 *
 * Counters are since this process started (as in /metrics); the files are what is on disk now, whoever
 * wrote them, so a dead letter from before a restart still shows until it is replayed (the replay renames
 * the file to `<file>.replayed-<ms>`, which is no longer counted).
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Transport, TransportStats } from '@tally/core';
import { spoolFileOwner } from '@tally/spool';
import type { Writer, WriterStats } from '@tally/store';
import type { Metrics } from '../metrics.js';
import type { LiveHub, LiveStats } from '../query/live.js';
import { natsDeadLetterPath } from '../spool-files.js';

export type SpoolFileKind = 'dead-letters' | 'transport-dead-letters' | 'pending';

export interface SpoolFile {
  file: string;
  kind: SpoolFileKind;
  /** Lines in the file: one row (writer) or one message (NATS) each. */
  rows: number;
  bytes: number;
  modifiedAt: string;
}

export interface SystemStatus {
  takenAt: string;
  /**
   * Now minus the timestamp of the newest event this process stored (tally_ingestion_lag_seconds);
   * null before it stored any.
   */
  lagSeconds: number | null;
  /**
   * As the writer reports them. With the store in a worker thread (embedded PGlite), the counts the worker
   * sent with its last answer, and nothing queued or in flight once every write is answered.
   */
  writer: WriterStats;
  transport: TransportStats;
  live: LiveStats;
  /** Rows waiting in the spool directory: dead letters to fix and replay, pending rows for the next start. */
  spool: { dir: string; files: SpoolFile[]; deadLetterRows: number; pendingRows: number };
}

export interface SystemDeps {
  writer: Writer;
  transport: Transport;
  metrics: Metrics;
  live: LiveHub;
  spoolDir: string;
}

export async function systemStatus(deps: SystemDeps): Promise<SystemStatus> {
  const writer = deps.writer.stats();
  const files = await spoolFiles(deps.spoolDir, spoolFileKinds(deps));
  const sum = (kinds: SpoolFileKind[]) => files.filter((f) => kinds.includes(f.kind)).reduce((n, f) => n + f.rows, 0);
  return {
    takenAt: new Date().toISOString(),
    lagSeconds: writer.stored + writer.duplicates === 0 ? null : await lagSeconds(deps.metrics),
    writer,
    transport: deps.transport.stats(),
    live: deps.live.stats(),
    spool: {
      dir: deps.spoolDir,
      files,
      deadLetterRows: sum(['dead-letters', 'transport-dead-letters']),
      pendingRows: sum(['pending']),
    },
  };
}

/** The gauge /metrics exports, read the same way (its collect() computes it at read time). */
async function lagSeconds(metrics: Metrics): Promise<number | null> {
  const gauge = metrics.registry.getSingleMetric('tally_ingestion_lag_seconds');
  if (!gauge) return null;
  const value = (await gauge.get()).values[0]?.value;
  return typeof value === 'number' ? Math.round(value * 1000) / 1000 : null;
}

/** Which spool files are which, by the names their writers give them. */
function spoolFileKinds(deps: SystemDeps): (name: string) => SpoolFileKind | undefined {
  const deadLetters = basename(deps.writer.deadLetterFile);
  const natsDeadLetters = basename(natsDeadLetterPath(deps.spoolDir));
  return (name) => {
    if (name === deadLetters) return 'dead-letters';
    if (name === natsDeadLetters) return 'transport-dead-letters';
    // Claimed ones too: a recovery under way has not stored them yet.
    if (spoolFileOwner(name) === 'pending') return 'pending';
    return undefined;
  };
}

async function spoolFiles(dir: string, kindOf: (name: string) => SpoolFileKind | undefined): Promise<SpoolFile[]> {
  // No spool directory yet: nothing was ever spooled.
  const names = await readdir(dir).catch(() => [] as string[]);
  const files: SpoolFile[] = [];
  for (const name of names.sort()) {
    const kind = kindOf(name);
    if (!kind) continue;
    const path = join(dir, name);
    try {
      const s = await stat(path);
      files.push({ file: name, kind, rows: await countLines(path), bytes: s.size, modifiedAt: s.mtime.toISOString() });
    } catch {
      // Renamed by a replay or recovered between readdir and here: no longer waiting.
    }
  }
  return files;
}

/** Newline-terminated lines, plus a last line without one (a line cut by a crash is still a row to look at). */
async function countLines(path: string): Promise<number> {
  let lines = 0;
  let last = 0x0a;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) lines++;
    if (chunk.length > 0) last = chunk[chunk.length - 1] as number;
  }
  return last === 0x0a ? lines : lines + 1;
}
