/**
 * The relational store as the DetailStore of the lifecycle jobs and the export: the SQL of lifecycle.ts
 * and the export's page query, each as it runs when this store also holds the detail rows.
 */
import {
  type DayPage,
  type DeleteOptions,
  type DetailDay,
  type DetailStore,
  type DetailTable,
  EXPORT_FIELDS,
  type ExportCursor,
  type ExportKind,
  type ExportRow,
  type HotPaths,
  type TableStats,
  type VerifiedDay,
} from '@tally/core';
import { deleteIds, detailDays, hotPaths, readDayPage, restoreLines, storageStats } from './lifecycle.js';
import type { SqlClient } from './sql-client.js';
import type { Store } from './types.js';

const ISO_MS = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;
const ISO_US = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;
const iso = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', ${ISO_MS})`;

/** Each export kind's table and the column expression of each key of EXPORT_FIELDS. */
const EXPORT_SHAPES: Record<ExportKind, { table: string; columns: Record<string, string> }> = {
  events: {
    table: 'events',
    columns: {
      id: 'id',
      name: 'name',
      userId: 'user_id',
      anonymousId: 'anonymous_id',
      timestamp: iso('ts'),
      receivedAt: iso('received_at'),
      properties: 'properties',
      context: 'context',
    },
  },
  logs: {
    table: 'request_logs',
    columns: {
      id: 'id',
      requestId: 'request_id',
      method: 'method',
      route: 'route',
      url: 'url',
      status: 'status',
      durationMs: 'duration_ms',
      requestBytes: 'request_bytes',
      responseBytes: 'response_bytes',
      userId: 'user_id',
      apiKeyId: 'api_key_id',
      ip: 'ip',
      userAgent: 'user_agent',
      aborted: 'aborted',
      error: 'error',
      timestamp: iso('ts'),
      receivedAt: iso('received_at'),
      bodyTruncated: 'body_truncated',
      headers: 'headers',
      requestBody: 'request_body',
      responseBody: 'response_body',
      streamBody: 'stream_body',
    },
  },
};

function exportSql(kind: ExportKind): string {
  const { table, columns } = EXPORT_SHAPES[kind];
  const object = EXPORT_FIELDS[kind].map((key) => `'${key}', ${columns[key] as string}`).join(', ');
  // $2/$3: the cursor (ts as text to the microsecond, id or null for "from ts on"), $4 the window's end.
  return `SELECT to_char(ts AT TIME ZONE 'UTC', ${ISO_US}) AS ts, id::text AS id,
      json_build_object(${object})::text AS line
    FROM ${table}
    WHERE tenant_id = $1 AND ts >= $2::timestamptz AND ts < $4::timestamptz
      AND ($3::uuid IS NULL OR (ts, id) > ($2::timestamptz, $3::uuid))
    ORDER BY ts, id
    LIMIT $5`;
}

const EXPORT_SQL: Record<ExportKind, string> = { events: exportSql('events'), logs: exportSql('logs') };

const ROLLUP_TABLES = new Set([
  'event_counts_hourly',
  'path_stats_hourly',
  'event_props_hourly',
  'user_activity_hourly',
]);

/** Where `store`'s detail rows are: the engine it names (ClickHouse), or its own tables. */
export function detailOf(store: Store): DetailStore {
  return store.detail ?? relationalDetail(store);
}

/** The detail side of `store`: its own tables, read and changed through its SQL. */
export function relationalDetail(store: Store): DetailStore {
  return {
    engine: 'relational',
    oldDays: (table: DetailTable, before: string): Promise<DetailDay[]> => detailDays(store.sql, table, before),
    async readDayPage(table, tenantId, day, after, limit): Promise<DayPage> {
      const rows = await readDayPage(store.sql, table, tenantId, day, after, limit);
      const last = rows[rows.length - 1];
      return { lines: rows, ...(rows.length === limit && last ? { next: last.id } : {}) };
    },
    // Exactly the ids the files hold, in short statements so no lock is held for long.
    async deleteArchived(days: readonly VerifiedDay[], options: DeleteOptions): Promise<number> {
      let total = 0;
      for (const d of days) {
        let deleted = 0;
        for (let i = 0; i < d.ids.length; i += options.batchRows)
          deleted += await deleteIds(store.sql, d.table, d.ids.slice(i, i + options.batchRows));
        await options.onDeleted(d, deleted, 'ids');
        total += deleted;
      }
      return total;
    },
    restoreLines: (table, lines) => restoreLines(store.sql, table, lines),
    async tableStats(): Promise<TableStats[]> {
      const { tables } = await storageStats(store.sql);
      return tables.filter((t) => t.table === 'events' || t.table === 'request_logs' || ROLLUP_TABLES.has(t.table));
    },
    hotPaths: (limit): Promise<HotPaths> => hotPaths(store.sql, limit),
    exportPage: (tenantId: string, kind: ExportKind, from: ExportCursor, to: string, limit: number) =>
      store.asTenant(tenantId, (sql: SqlClient) =>
        sql.query<ExportRow>(EXPORT_SQL[kind], [tenantId, from.ts, from.id, to, limit]),
      ),
  };
}
