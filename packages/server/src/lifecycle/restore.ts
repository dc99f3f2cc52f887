/**
 * Restore: re-imports a tenant's archived day from its files into the store that holds the detail,
 * idempotently (rows already present are skipped: the store's own insert-once rule), so old detail can
 * be queried again; a file from either engine restores into either. Restored parts are marked: the
 * archive job skips their day (the file already holds those rows) and cleanup leaves them until
 * `tally cleanup --include-restored`.
 */
import { ErrorCodes, TallyError } from '@tally/core';
import { DETAIL_TABLES, detailOf, listManifests, markRestored, type Store } from '@tally/store';
import type { ArchiveTarget } from './targets/target.js';
import { verifyArchive } from './verify.js';

export interface RestoreReport {
  parts: number;
  restored: number;
  alreadyPresent: number;
}

export async function runRestore(
  store: Store,
  target: ArchiveTarget,
  tenantId: string,
  day: string,
  onProgress?: (line: string) => void,
): Promise<RestoreReport> {
  const detail = detailOf(store);
  const parts = (await listManifests(store.sql, { tenantId, day })).filter((m) => DETAIL_TABLES.includes(m.table));
  if (parts.length === 0)
    throw new TallyError(
      ErrorCodes.NOT_FOUND,
      `no archive of tenant "${tenantId}" for ${day} (see tally archive list)`,
    );
  const report: RestoreReport = { parts: 0, restored: 0, alreadyPresent: 0 };
  for (const m of parts) {
    const v = await verifyArchive(target, m);
    if (!v.ok) throw new Error(`cannot restore ${m.key}: ${v.problem}`);
    let restored = 0;
    for (let i = 0; i < v.lines.length; i += 2000)
      restored += await detail.restoreLines(m.table, v.lines.slice(i, i + 2000));
    await markRestored(store.sql, m);
    report.parts++;
    report.restored += restored;
    report.alreadyPresent += m.rows - restored;
    onProgress?.(
      `restore ${m.table} ${tenantId} ${day} part ${m.part}: ${restored} rows back, ${m.rows - restored} already there`,
    );
  }
  return report;
}
