/**
 * Archive: detail rows older than N whole UTC days, per tenant and day, into gzip-compressed JSONL files
 * (one table row per line, keyed by the relational table's columns on every engine), each with a
 * manifest row in the relational store: rows, time range, bytes, SHA-256. The rows come from the
 * DetailStore that holds them (the relational store itself, or ClickHouse).
 * Idempotent: a day already archived (and not yet cleaned) is skipped; a crash between writing a file
 * and its manifest row leaves a file the next run simply writes again (same key).
 */
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import {
  DETAIL_TABLES,
  type DetailTable,
  detailOf,
  heldDays,
  insertManifest,
  type ManifestRow,
  nextPart,
  type Store,
} from '@tally/store';
import type { ArchiveTarget } from './targets/target.js';

const gzip = promisify(gzipCb);
// Rows per query. Each page re-reads what is left of the tenant-day (the filter is on ts, the order on
// id), so pages are large: most days are one query (the lifecycle bench: 2× the rows/s of 5000-row pages).
const PAGE = 100_000;

export interface ArchiveOptions {
  /** Rows older than this many whole days (UTC) are archived. Default 3. */
  olderThanDays?: number;
  now?: number;
  onProgress?: (line: string) => void;
}

export interface ArchiveReport {
  files: number;
  rows: number;
  bytes: number;
  rawBytes: number;
  skipped: number;
}

/** The UTC midnight `days` days before `now`: rows before it are old enough. */
export function cutoff(now: number, days: number): string {
  const d = new Date(now);
  d.setUTCHours(0, 0, 0, 0);
  return new Date(d.getTime() - days * 86_400_000).toISOString();
}

export function archiveKey(table: DetailTable, tenantId: string, day: string, part: number): string {
  return `${table}/${encodeURIComponent(tenantId)}/${day}.part${part}.jsonl.gz`;
}

export async function runArchive(
  store: Store,
  target: ArchiveTarget,
  options: ArchiveOptions = {},
): Promise<ArchiveReport> {
  const days = options.olderThanDays ?? 3;
  const before = cutoff(options.now ?? Date.now(), days);
  const detail = detailOf(store);
  const report: ArchiveReport = { files: 0, rows: 0, bytes: 0, rawBytes: 0, skipped: 0 };
  for (const table of DETAIL_TABLES) {
    // Days with a part not yet cleaned (or restored) are cleanup's business first.
    const held = await heldDays(store.sql, table);
    const candidates = (await detail.oldDays(table, before)).filter((c) => !held.has(`${c.tenantId}\0${c.day}`));
    let i = 0;
    for (const c of candidates) {
      i++;
      const m = await archiveDay(store, target, table, c.tenantId, c.day);
      if (!m) {
        report.skipped++;
        continue;
      }
      report.files++;
      report.rows += m.rows;
      report.bytes += m.bytes;
      report.rawBytes += m.rawBytes;
      options.onProgress?.(
        `archive ${table} ${c.tenantId} ${c.day}: ${m.rows} rows → ${m.key} (${m.bytes} bytes, ${(m.rawBytes / Math.max(1, m.bytes)).toFixed(1)}×) [${i}/${candidates.length}]`,
      );
    }
  }
  return report;
}

/** Writes one (table, tenant, day) file and its manifest row; undefined when the day had no rows. */
export async function archiveDay(
  store: Store,
  target: ArchiveTarget,
  table: DetailTable,
  tenantId: string,
  day: string,
): Promise<ManifestRow | undefined> {
  const detail = detailOf(store);
  const chunks: string[] = [];
  let rows = 0;
  let minTs = '';
  let maxTs = '';
  let after: string | undefined;
  for (;;) {
    const page = await detail.readDayPage(table, tenantId, day, after, PAGE);
    for (const r of page.lines) {
      chunks.push(r.line);
      if (minTs === '' || r.ts < minTs) minTs = r.ts;
      if (r.ts > maxTs) maxTs = r.ts;
    }
    rows += page.lines.length;
    if (page.next === undefined) break;
    after = page.next;
  }
  if (rows === 0) return undefined;
  const raw = Buffer.from(`${chunks.join('\n')}\n`);
  const data = await gzip(raw, { level: 6 });
  const part = await nextPart(store.sql, table, tenantId, day);
  const key = archiveKey(table, tenantId, day, part);
  await target.put(key, data);
  const manifest: ManifestRow = {
    tenantId,
    table,
    day,
    part,
    key,
    location: target.location,
    rows,
    minTs,
    maxTs,
    bytes: data.length,
    rawBytes: raw.length,
    sha256: createHash('sha256').update(data).digest('hex'),
  };
  await insertManifest(store.sql, manifest);
  return manifest;
}
