/**
 * Cleanup: for every archive part not yet cleaned, verify the file (present, checksum, row count), then
 * delete exactly the ids it holds, in batches of short statements so no lock is held for long. A part
 * whose file is missing or corrupt is refused, loudly, and its rows stay. Rollups are never touched.
 * A crash in the middle leaves some of the part's rows deleted and the part not marked: the next run
 * verifies the file again and deletes the rest.
 */
import { deleteIds, listManifests, markCleaned, type Store } from '@tally/store';
import type { ArchiveTarget } from './targets/target.js';
import { lineId, verifyArchive } from './verify.js';

export interface CleanupOptions {
  dryRun?: boolean;
  /** Also delete rows brought back by `tally archive restore` (their files are still verified first). */
  includeRestored?: boolean;
  /** Rows per DELETE statement. Default 5000. */
  batchRows?: number;
  onProgress?: (line: string) => void;
}

export interface CleanupReport {
  parts: number;
  deleted: number;
  /** Rows that would be deleted (dry run), or were checked. */
  eligible: number;
  refused: { key: string; problem: string }[];
}

export async function runCleanup(
  store: Store,
  target: ArchiveTarget,
  options: CleanupOptions = {},
): Promise<CleanupReport> {
  const batch = options.batchRows ?? 5000;
  const report: CleanupReport = { parts: 0, deleted: 0, eligible: 0, refused: [] };
  const parts = await listManifests(store.sql, { uncleaned: true });
  if (options.includeRestored) parts.push(...(await listManifests(store.sql)).filter((m) => m.restoredAt !== null));
  for (const m of parts) {
    const v = await verifyArchive(target, m);
    if (!v.ok) {
      report.refused.push({ key: m.key, problem: v.problem });
      options.onProgress?.(`cleanup REFUSED ${m.table} ${m.tenantId} ${m.day}: ${v.problem}; rows kept`);
      continue;
    }
    report.eligible += m.rows;
    if (options.dryRun) {
      options.onProgress?.(
        `cleanup (dry run) ${m.table} ${m.tenantId} ${m.day}: would delete ${m.rows} rows (file verified)`,
      );
      continue;
    }
    const ids = v.lines.map(lineId);
    let deleted = 0;
    for (let i = 0; i < ids.length; i += batch) deleted += await deleteIds(store.sql, m.table, ids.slice(i, i + batch));
    await markCleaned(store.sql, m);
    report.parts++;
    report.deleted += deleted;
    options.onProgress?.(
      `cleanup ${m.table} ${m.tenantId} ${m.day}: deleted ${deleted} rows (file verified: ${m.rows} rows)`,
    );
  }
  return report;
}
