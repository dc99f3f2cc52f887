/**
 * The SQL of the lifecycle jobs (archive, cleanup, restore, stats, snapshots, job runs). Archive files
 * hold the table's rows verbatim (`row_to_json`), and restore reads them back with
 * `json_populate_recordset` of the same table, so no column is ever lost or reinterpreted on the way.
 * Rollups are never touched here: they are kept forever and already count the archived rows.
 */
import {
  DETAIL_TABLES,
  type DetailDay,
  type DetailTable,
  type HotPath,
  type HotPaths,
  type TableStats,
} from '@tally/core';
import type { SqlClient } from './sql-client.js';
import type { Store } from './types.js';

export { DETAIL_TABLES, type DetailTable, type HotPath, type HotPaths, type TableStats };

export interface ManifestRow {
  tenantId: string;
  table: DetailTable;
  day: string;
  part: number;
  key: string;
  location: string;
  rows: number;
  minTs: string;
  maxTs: string;
  bytes: number;
  rawBytes: number;
  sha256: string;
  createdAt?: string;
  cleanedAt?: string | null;
  restoredAt?: string | null;
}

const table = (t: DetailTable) => {
  if (!DETAIL_TABLES.includes(t)) throw new Error(`not a detail table: ${t}`);
  return t;
};

/** (tenant, day) groups of rows older than `before` (a UTC midnight), oldest day first. */
export async function detailDays(sql: SqlClient, t: DetailTable, before: string): Promise<DetailDay[]> {
  const rows = await sql.query<{ tenant_id: string; day: string; n: number }>(
    `SELECT tenant_id, to_char((ts AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD') AS day, count(*)::int AS n
     FROM ${table(t)} WHERE ts < $1::timestamptz GROUP BY 1, 2 ORDER BY 2, 1`,
    [before],
  );
  return rows.map((r) => ({ tenantId: r.tenant_id, table: t, day: r.day, rows: Number(r.n) }));
}

/**
 * The (tenant, day) pairs of `t`, as `tenant NUL day`, that have an archive part not yet cleaned, or
 * restored: archive leaves those days to cleanup first (the file already holds their rows).
 */
export async function heldDays(sql: SqlClient, t: DetailTable): Promise<Set<string>> {
  const rows = await sql.query<{ tenant_id: string; day: string }>(
    `SELECT DISTINCT tenant_id, to_char(day, 'YYYY-MM-DD') AS day FROM archive_metadata
     WHERE table_name = $1 AND (cleaned_at IS NULL OR restored_at IS NOT NULL)`,
    [t],
  );
  return new Set(rows.map((r) => `${r.tenant_id}\0${r.day}`));
}

/**
 * One page of a tenant's day, as JSON text lines of the table's rows, in id order (keyset paging).
 * `ORDER BY x.id`, the uuid column: ordering by the `id::text` alias made Postgres build every row's
 * JSON for the whole rest of the day and sort it on each page (the lifecycle bench caught it).
 */
export async function readDayPage(
  sql: SqlClient,
  t: DetailTable,
  tenantId: string,
  day: string,
  afterId: string | undefined,
  limit: number,
): Promise<{ id: string; line: string; ts: string }[]> {
  return sql.query(
    `SELECT id::text AS id, row_to_json(x)::text AS line,
            to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ts
     FROM ${table(t)} x
     WHERE tenant_id = $1 AND ts >= $2::date AND ts < $2::date + 1
       AND ($3::uuid IS NULL OR id > $3::uuid)
     ORDER BY x.id LIMIT $4`,
    [tenantId, day, afterId ?? null, limit],
  );
}

export async function nextPart(sql: SqlClient, t: DetailTable, tenantId: string, day: string): Promise<number> {
  const [r] = await sql.query<{ n: number }>(
    `SELECT coalesce(max(part), 0)::int + 1 AS n FROM archive_metadata WHERE tenant_id = $1 AND table_name = $2 AND day = $3::date`,
    [tenantId, t, day],
  );
  return Number(r?.n ?? 1);
}

export async function insertManifest(sql: SqlClient, m: ManifestRow): Promise<void> {
  await sql.query(
    `INSERT INTO archive_metadata (tenant_id, table_name, day, part, key, location, rows, min_ts, max_ts, bytes, raw_bytes, sha256)
     VALUES ($1, $2, $3::date, $4, $5, $6, $7, $8::timestamptz, $9::timestamptz, $10, $11, $12)
     ON CONFLICT (tenant_id, table_name, day, part) DO NOTHING`,
    [m.tenantId, m.table, m.day, m.part, m.key, m.location, m.rows, m.minTs, m.maxTs, m.bytes, m.rawBytes, m.sha256],
  );
}

const MANIFEST_COLUMNS = `tenant_id, table_name, to_char(day, 'YYYY-MM-DD') AS day, part, key, location, rows,
  to_char(min_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS min_ts,
  to_char(max_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS max_ts, bytes, raw_bytes, sha256,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created_at,
  to_char(cleaned_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS cleaned_at,
  to_char(restored_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS restored_at`;

export async function listManifests(
  sql: SqlClient,
  filter: { tenantId?: string; day?: string; uncleaned?: boolean } = {},
): Promise<ManifestRow[]> {
  const rows = await sql.query<Record<string, unknown>>(
    `SELECT ${MANIFEST_COLUMNS} FROM archive_metadata
     WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2::date IS NULL OR day = $2::date)
       AND (NOT $3 OR (cleaned_at IS NULL AND restored_at IS NULL))
     ORDER BY day, tenant_id, table_name, part`,
    [filter.tenantId ?? null, filter.day ?? null, filter.uncleaned === true],
  );
  return rows.map((r) => ({
    tenantId: r.tenant_id as string,
    table: r.table_name as DetailTable,
    day: r.day as string,
    part: Number(r.part),
    key: r.key as string,
    location: r.location as string,
    rows: Number(r.rows),
    minTs: r.min_ts as string,
    maxTs: r.max_ts as string,
    bytes: Number(r.bytes),
    rawBytes: Number(r.raw_bytes),
    sha256: r.sha256 as string,
    createdAt: r.created_at as string,
    cleanedAt: (r.cleaned_at as string | null) ?? null,
    restoredAt: (r.restored_at as string | null) ?? null,
  }));
}

/** Deletes these ids (one short statement: the caller batches). Returns how many rows went. */
export async function deleteIds(sql: SqlClient, t: DetailTable, ids: readonly string[]): Promise<number> {
  const rows = await sql.query(`DELETE FROM ${table(t)} WHERE id = ANY($1::uuid[]) RETURNING 1`, [ids]);
  return rows.length;
}

export async function markCleaned(sql: SqlClient, m: Pick<ManifestRow, 'tenantId' | 'table' | 'day' | 'part'>) {
  await sql.query(
    `UPDATE archive_metadata SET cleaned_at = now(), restored_at = NULL
     WHERE tenant_id = $1 AND table_name = $2 AND day = $3::date AND part = $4`,
    [m.tenantId, m.table, m.day, m.part],
  );
}

export async function markRestored(sql: SqlClient, m: Pick<ManifestRow, 'tenantId' | 'table' | 'day' | 'part'>) {
  await sql.query(
    `UPDATE archive_metadata SET restored_at = now()
     WHERE tenant_id = $1 AND table_name = $2 AND day = $3::date AND part = $4`,
    [m.tenantId, m.table, m.day, m.part],
  );
}

/** Re-inserts archived rows as they were (no rollups: they never forgot them). Returns rows inserted. */
export async function restoreLines(sql: SqlClient, t: DetailTable, lines: readonly string[]): Promise<number> {
  const rows = await sql.query(
    `INSERT INTO ${table(t)} SELECT * FROM json_populate_recordset(NULL::${table(t)}, $1::text::json)
     ON CONFLICT (id) DO NOTHING RETURNING 1`,
    [`[${lines.join(',')}]`],
  );
  return rows.length;
}

// ---- job runs -------------------------------------------------------------------------------------

export async function startJobRun(sql: SqlClient, job: string, outcome: 'running' | 'skipped' = 'running') {
  const [r] = await sql.query<{ id: string }>(
    `INSERT INTO job_runs (job, outcome, finished_at) VALUES ($1, $2, CASE WHEN $2 = 'skipped' THEN now() END)
     RETURNING id::text AS id`,
    [job, outcome],
  );
  return (r as { id: string }).id;
}

export async function finishJobRun(
  sql: SqlClient,
  id: string,
  outcome: 'ok' | 'failed',
  counts: Record<string, number>,
  error?: string,
): Promise<void> {
  await sql.query(
    `UPDATE job_runs SET finished_at = now(), outcome = $2, counts = $3::jsonb, error = $4 WHERE id = $1::bigint`,
    [id, outcome, JSON.stringify(counts), error ?? null],
  );
}

export interface JobRun {
  id: string;
  job: string;
  startedAt: string;
  finishedAt: string | null;
  outcome: string;
  counts: Record<string, number>;
  error: string | null;
}

export async function listJobRuns(sql: SqlClient, job?: string, limit = 20): Promise<JobRun[]> {
  const rows = await sql.query<Record<string, unknown>>(
    `SELECT id::text AS id, job, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS started_at,
            to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS finished_at,
            outcome, counts, error
     FROM job_runs WHERE $1::text IS NULL OR job = $1 ORDER BY started_at DESC, id DESC LIMIT $2`,
    [job ?? null, limit],
  );
  return rows.map((r) => ({
    id: r.id as string,
    job: r.job as string,
    startedAt: r.started_at as string,
    finishedAt: (r.finished_at as string | null) ?? null,
    outcome: r.outcome as string,
    counts: (typeof r.counts === 'string' ? JSON.parse(r.counts) : r.counts) as Record<string, number>,
    error: (r.error as string | null) ?? null,
  }));
}

/** When the job last completed (ok), or undefined. */
export async function lastSuccess(sql: SqlClient, job: string): Promise<number | undefined> {
  const [r] = await sql.query<{ at: string | null }>(
    `SELECT to_char(max(started_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at
     FROM job_runs WHERE job = $1 AND outcome = 'ok'`,
    [job],
  );
  return r?.at ? Date.parse(r.at) : undefined;
}

/**
 * Runs `fn` only if no other process runs the same job: a Postgres advisory lock held by a transaction
 * that stays open (idle) for the job's duration, while the job's own work uses other connections.
 * PGlite is one process: an in-process mutex is the same guarantee there.
 */
const localLocks = new Map<string, Promise<unknown>>();
export async function withJobLock<T>(store: Store, job: string, fn: () => Promise<T>): Promise<T | undefined> {
  if (!store.capabilities.crossProcessLocks) {
    const key = `${store.schema}:${job}`;
    if (localLocks.has(key)) return undefined;
    const p = fn();
    localLocks.set(key, p);
    try {
      return await p;
    } finally {
      localLocks.delete(key);
    }
  }
  return store.sql.transaction(async (tx) => {
    const [r] = await tx.query<{ ok: boolean }>(`SELECT pg_try_advisory_xact_lock(hashtext($1)) AS ok`, [
      `tally:job:${store.schema}:${job}`,
    ]);
    return r?.ok ? fn() : undefined;
  });
}

// ---- stats and snapshots ---------------------------------------------------------------------------

export interface StorageStats {
  takenAt: string;
  tables: TableStats[];
  archive: { files: number; rows: number; bytes: number; rawBytes: number; cleanedRows: number };
}

const STAT_TABLES = [
  'events',
  'request_logs',
  'event_counts_hourly',
  'path_stats_hourly',
  'event_props_hourly',
  'user_activity_hourly',
  'archive_metadata',
  'job_runs',
];

/**
 * Rows and bytes of every table. `detailTables`: the detail tables' figures from the engine that holds them
 * (ClickHouse), in place of this store's (empty) ones.
 */
export async function storageStats(sql: SqlClient, detailTables?: readonly TableStats[]): Promise<StorageStats> {
  const tables: TableStats[] = [];
  for (const t of STAT_TABLES) {
    const detail = (DETAIL_TABLES as readonly string[]).includes(t);
    const elsewhere = detailTables?.filter((d) => d.table === t);
    if (detail && elsewhere && elsewhere.length > 0) {
      tables.push(...elsewhere);
      continue;
    }
    const [r] = await sql.query<Record<string, unknown>>(
      `SELECT count(*)::bigint AS rows,
              pg_relation_size('${t}'::regclass) AS table_bytes, pg_indexes_size('${t}'::regclass) AS index_bytes,
              pg_total_relation_size('${t}'::regclass) AS total_bytes
              ${detail ? `, to_char(min(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS oldest, to_char(max(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS newest` : ''}
       FROM ${t}`,
    );
    tables.push({
      table: t,
      rows: Number(r?.rows),
      tableBytes: Number(r?.table_bytes),
      indexBytes: Number(r?.index_bytes),
      totalBytes: Number(r?.total_bytes),
      ...(detail ? { oldest: (r?.oldest as string | null) ?? null, newest: (r?.newest as string | null) ?? null } : {}),
    });
  }
  const [a] = await sql.query<Record<string, unknown>>(
    `SELECT count(*) AS files, coalesce(sum(rows), 0) AS rows, coalesce(sum(bytes), 0) AS bytes,
            coalesce(sum(raw_bytes), 0) AS raw_bytes,
            coalesce(sum(rows) FILTER (WHERE cleaned_at IS NOT NULL), 0) AS cleaned_rows
     FROM archive_metadata`,
  );
  const stats: StorageStats = {
    takenAt: new Date().toISOString(),
    tables,
    archive: {
      files: Number(a?.files),
      rows: Number(a?.rows),
      bytes: Number(a?.bytes),
      rawBytes: Number(a?.raw_bytes),
      cleanedRows: Number(a?.cleaned_rows),
    },
  };
  return stats;
}

export async function saveStorageStats(sql: SqlClient, stats: StorageStats): Promise<void> {
  await sql.query(`INSERT INTO storage_stats (taken_at, stats) VALUES ($1::timestamptz, $2::jsonb)`, [
    stats.takenAt,
    JSON.stringify(stats),
  ]);
}

/** A new snapshot version; only the newest `keep` survive. */
export async function saveSnapshot(sql: SqlClient, body: unknown, keep: number): Promise<number> {
  const [r] = await sql.query<{ version: string }>(
    `INSERT INTO snapshots (body) VALUES ($1::jsonb) RETURNING version::text AS version`,
    [JSON.stringify(body)],
  );
  await pruneSnapshots(sql, keep);
  return Number(r?.version);
}

export async function pruneSnapshots(sql: SqlClient, keep: number): Promise<number> {
  const rows = await sql.query(
    `DELETE FROM snapshots WHERE version NOT IN (SELECT version FROM snapshots ORDER BY version DESC LIMIT $1) RETURNING 1`,
    [keep],
  );
  return rows.length;
}

export async function latestSnapshot(
  sql: SqlClient,
): Promise<{ version: number; createdAt: string; body: unknown } | undefined> {
  const [r] = await sql.query<{ version: string; created_at: string; body: unknown }>(
    `SELECT version::text AS version, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at, body
     FROM snapshots ORDER BY version DESC LIMIT 1`,
  );
  if (!r) return undefined;
  return {
    version: Number(r.version),
    createdAt: r.created_at,
    body: typeof r.body === 'string' ? JSON.parse(r.body) : r.body,
  };
}

/** The hot-path view: per tenant, the busiest events and paths of the last 24 h from the rollups. */
export async function hotPaths(sql: SqlClient, limit = 20): Promise<HotPaths> {
  const events = await sql.query<{ tenant_id: string; name: string; count: string }>(
    `SELECT tenant_id, name, count FROM (
       SELECT tenant_id, name, sum(count)::bigint AS count,
              row_number() OVER (PARTITION BY tenant_id ORDER BY sum(count) DESC) AS rank
       FROM event_counts_hourly WHERE hour >= now() - interval '24 hours' GROUP BY 1, 2) t
     WHERE rank <= $1 ORDER BY tenant_id, count DESC`,
    [limit],
  );
  // Fixed latency buckets add up across hours, so a path's p95 over the day is exact to a bucket.
  const paths = await sql.query<Record<string, unknown>>(
    `WITH hot AS (
       SELECT tenant_id, method, route, count, errors_5xx, errors_4xx FROM (
         SELECT tenant_id, method, route, sum(count)::bigint AS count, sum(status_5xx)::bigint AS errors_5xx,
                sum(status_4xx)::bigint AS errors_4xx,
                row_number() OVER (PARTITION BY tenant_id ORDER BY sum(count) DESC) AS rank
         FROM path_stats_hourly WHERE hour >= now() - interval '24 hours' GROUP BY 1, 2, 3) t
       WHERE rank <= $1)
     SELECT h.*, (SELECT array_agg(s ORDER BY i) FROM (
               SELECT i, sum(b)::bigint AS s FROM path_stats_hourly p, unnest(p.latency_buckets) WITH ORDINALITY AS u(b, i)
               WHERE p.tenant_id = h.tenant_id AND p.method = h.method AND p.route = h.route
                 AND p.hour >= now() - interval '24 hours'
               GROUP BY i) q) AS buckets
     FROM hot h ORDER BY tenant_id, count DESC`,
    [limit],
  );
  const out: HotPaths = {};
  const of = (t: string) => (out[t] ??= { events: [], paths: [] });
  for (const e of events) {
    const slot = of(e.tenant_id);
    slot.events.push({ name: e.name, count: Number(e.count) });
  }
  for (const p of paths) {
    const slot = of(p.tenant_id as string);
    const count = Number(p.count);
    slot.paths.push({
      method: p.method as string,
      route: p.route as string,
      count,
      errorRate: count === 0 ? 0 : Number(p.errors_5xx) / count,
      clientErrorRate: count === 0 ? 0 : Number(p.errors_4xx) / count,
      buckets: (p.buckets as unknown[] | null)?.map(Number) ?? [],
    });
  }
  return out;
}
