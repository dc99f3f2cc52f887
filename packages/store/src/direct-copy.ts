/**
 * The fast path for a batch of events on Postgres: COPY straight into `events`, then the hourly rollup
 * from counts made here. A batch of new events (nearly every batch) is stored as COPY stores it, without
 * the staging table and the `INSERT … SELECT … ON CONFLICT … RETURNING` that re-inserts every row one at a
 * time (Postgres CPU per 1000-row batch: ~19 against ~26 ms, `bench/ingest-http`).
 *
 * Exactly once still holds, because COPY is all or nothing: one id already stored (a redelivery), or any
 * value Postgres refuses, fails the whole COPY, its transaction rolls back with nothing written, and the
 * batch goes the usual way (staging + ON CONFLICT), which stores the new rows, reports the bad ones with
 * their SQLSTATE, and rolls up only what it inserted. A COPY that succeeded inserted every row, so the
 * rollup of the batch is the rollup of the inserted rows.
 *
 * The rollup here must equal what the SQL path computes (`date_trunc('hour', ts, 'UTC')`, weight
 * `1 / coalesce(sampleRate, 1)`), so a batch takes this path only when that is certain without asking
 * Postgres: every timestamp in the canonical form Tally writes (`canonicalTime`: its hour is then its
 * first 13 characters, with no offset, no rounding, no leap second or 24:00 to roll over), every
 * sampleRate absent or a positive finite number. Anything else goes the usual way.
 */
import { canonicalTime } from '@tally/core';
import type { EventRow } from './rows.js';

export interface DirectPlan {
  /** The rows in id order: concurrent COPYs of overlapping batches then lock ids in one order (no deadlock). */
  rows: readonly EventRow[];
  /** Rollup groups, as text columns for `unnest`. */
  groups: [tenants: string[], names: string[], hours: string[], counts: string[], weighted: string[]];
}

/** The plan for a batch that may take the direct path, or undefined when it must go the usual way. */
export function planDirect(rows: readonly EventRow[]): DirectPlan | undefined {
  const index = new Map<string, number>();
  const tenants: string[] = [];
  const names: string[] = [];
  const hours: string[] = [];
  const counts: number[] = [];
  const weighted: number[] = [];
  let sorted = true;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i] as EventRow;
    if (Number.isNaN(canonicalTime(r.timestamp))) return undefined;
    const rate = (r.context as { sampleRate?: unknown }).sampleRate;
    if (rate !== undefined && !(typeof rate === 'number' && rate > 0 && Number.isFinite(rate))) return undefined;
    const hour = `${r.timestamp.slice(0, 13)}:00:00Z`;
    // NUL cannot be in a Postgres text value, so it cannot join two keys into one (a row holding one
    // fails the COPY, and this plan is not used).
    const key = `${r.tenantId}\u0000${r.name}\u0000${hour}`;
    let g = index.get(key);
    if (g === undefined) {
      g = tenants.length;
      index.set(key, g);
      tenants.push(r.tenantId);
      names.push(r.name);
      hours.push(hour);
      counts.push(0);
      weighted.push(0);
    }
    counts[g] = (counts[g] as number) + 1;
    weighted[g] = (weighted[g] as number) + (rate === undefined ? 1 : 1 / rate);
    if (i > 0 && (rows[i - 1] as EventRow).id > r.id) sorted = false;
  }
  return {
    rows: sorted ? rows : [...rows].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    groups: [tenants, names, hours, counts.map(String), weighted.map(String)],
  };
}

/** The rollup of a batch COPY stored whole (groups are distinct, so no row is updated twice). */
export const ROLLUP_GROUPS = `
INSERT INTO event_counts_hourly AS r (tenant_id, name, hour, count, weighted)
SELECT t, n, h::timestamptz, c::bigint, w::float8
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS g(t, n, h, c, w)
ORDER BY 1, 2, 3
ON CONFLICT (tenant_id, name, hour)
DO UPDATE SET count = r.count + EXCLUDED.count, weighted = r.weighted + EXCLUDED.weighted`;

/**
 * Does a failed direct COPY send the batch the usual way? Yes for what the usual way handles or reports
 * better: data and integrity errors (a stored id, a bad value: classes 22, 23), and a COPY the server
 * will not do for this role (0A: COPY FROM is not supported on a table with row-level security unless the
 * role bypasses it; 42: privileges). Connection errors and the like are the writer's to retry.
 */
export function fallsBack(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && /^(22|23|0A|42)[0-9A-Z]{3}$/.test(code);
}

/** …and never tries the direct path again on this store (the role will not change). */
export function refusesDirect(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && /^(0A|42)/.test(code);
}
