/**
 * Cleanup: for every archive part not yet cleaned, verify the file (present, checksum, row count), then
 * delete the rows it holds from the store that holds the detail: the relational store deletes exactly
 * those ids, in batches of short statements so no lock is held for long; ClickHouse drops the day's
 * partition or deletes the tenant's day, keeping any row the files do not hold (see its lifecycle.ts).
 * A part whose file is missing or corrupt is refused, loudly, and its rows stay. Rollups are never
 * touched. A crash in the middle leaves some of the rows deleted and their parts not marked: the next
 * run verifies the files again and deletes the rest.
 */
import type { DeleteMethod, DetailTable, VerifiedDay } from '@tally/core';
import { detailOf, listManifests, type ManifestRow, markCleaned, type Store } from '@tally/store';
import type { ArchiveTarget } from './targets/target.js';
import { lineId, verifyArchive } from './verify.js';

export interface CleanupOptions {
  dryRun?: boolean;
  /** Also delete rows brought back by `tally archive restore` (their files are still verified first). */
  includeRestored?: boolean;
  /** Rows per DELETE statement (relational store). Default 5000. */
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

/**
 * Verified ids held before they are deleted: the days handed to the store at once (ClickHouse makes one
 * mutation of them per table) are cut at about this many ids, so memory stays bounded.
 */
const IDS_PER_ROUND = 500_000;

const HOW: Record<DeleteMethod, string> = {
  ids: '',
  'tenant-day': ', by a delete of the tenant\u2019s day',
  partition: ', with the whole day partition',
};

export async function runCleanup(
  store: Store,
  target: ArchiveTarget,
  options: CleanupOptions = {},
): Promise<CleanupReport> {
  const detail = detailOf(store);
  const batchRows = options.batchRows ?? 5000;
  const report: CleanupReport = { parts: 0, deleted: 0, eligible: 0, refused: [] };
  const parts = await listManifests(store.sql, { uncleaned: true });
  if (options.includeRestored) parts.push(...(await listManifests(store.sql)).filter((m) => m.restoredAt !== null));

  // A day's verified parts go together (a refused part's rows are simply not among the day's ids).
  const days = new Map<string, { ids: string[]; parts: ManifestRow[] }>();
  let held = 0;
  const flush = async () => {
    const partsOf = new Map<VerifiedDay, ManifestRow[]>();
    for (const { ids, parts: mine } of days.values()) {
      const m = mine[0] as ManifestRow;
      partsOf.set({ tenantId: m.tenantId, table: m.table as DetailTable, day: m.day, ids }, mine);
    }
    days.clear();
    held = 0;
    if (partsOf.size === 0) return;
    await detail.deleteArchived([...partsOf.keys()], {
      batchRows,
      onDeleted: async (day, deleted, method) => {
        const mine = partsOf.get(day) ?? [];
        for (const m of mine) await markCleaned(store.sql, m);
        report.parts += mine.length;
        report.deleted += deleted;
        const rows = mine.reduce((a, m) => a + m.rows, 0);
        options.onProgress?.(
          `cleanup ${day.table} ${day.tenantId} ${day.day}: deleted ${deleted} rows${HOW[method]} (file${mine.length > 1 ? 's' : ''} verified: ${rows} rows)`,
        );
      },
    });
  };

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
    const key = `${m.table}\0${m.tenantId}\0${m.day}`;
    let entry = days.get(key);
    if (!entry) days.set(key, (entry = { ids: [], parts: [] }));
    for (const line of v.lines) entry.ids.push(lineId(line));
    entry.parts.push(m);
    held += v.lines.length;
    if (held >= IDS_PER_ROUND) await flush();
  }
  await flush();
  return report;
}
