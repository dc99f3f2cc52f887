/**
 * The ClickHouse schema, as numbered migrations applied once each (recorded in `schema_migrations`).
 *
 * Both detail tables are ReplacingMergeTree with the id last in the sorting key, partitioned by the UTC
 * day of the event's own time:
 * - the sorting key `(tenant_id, name, ts_ms, id)` serves trends, funnels and retention (one tenant, a
 *   few names, a time range); request logs sort by `(tenant_id, ts_ms, id)` (routes and search read
 *   time ranges of one tenant);
 * - a day partition is what the lifecycle jobs archive and drop as one piece;
 * - the id in the key and the birth time in the partition make two copies of one row merge into one.
 *   The store never inserts a second copy (store.ts), so this is the safety net, not the mechanism.
 * LowCardinality (a dictionary per part, ~2× faster group-bys on names) exists from 19.x; 18.16 keeps String.
 */
import type { ClickHouseClient } from './client.js';
import { ident } from './sql.js';

export interface Migration {
  version: string;
  statements: (db: string, features: SchemaFeatures) => string[];
}

export interface SchemaFeatures {
  lowCardinality: boolean;
}

const lowCardinality = (f: SchemaFeatures) => (type: string) => (f.lowCardinality ? `LowCardinality(${type})` : type);

export const MIGRATIONS: readonly Migration[] = [
  {
    version: '001_detail',
    statements: (db, f) => {
      const lc = lowCardinality(f);
      return [
        `CREATE TABLE IF NOT EXISTS ${db}.events (
          id UUID,
          tenant_id ${lc('String')},
          name ${lc('String')},
          user_id String,
          anonymous_id String,
          ts_ms Int64,
          ts DateTime('UTC') DEFAULT toDateTime(intDiv(ts_ms, 1000), 'UTC'),
          received_ms Int64,
          sample_rate Float64,
          properties String,
          context String,
          attr_keys Array(String),
          attr_types Array(UInt8),
          attr_values Array(String)
        ) ENGINE = ReplacingMergeTree
        PARTITION BY toYYYYMMDD(ts)
        ORDER BY (tenant_id, name, ts_ms, id)`,
        `CREATE TABLE IF NOT EXISTS ${db}.request_logs (
          id UUID,
          tenant_id ${lc('String')},
          request_id Nullable(String),
          method ${lc('String')},
          route ${lc('String')},
          url String,
          status UInt16,
          duration_ms Float64,
          request_bytes Nullable(Int64),
          response_bytes Nullable(Int64),
          user_id String,
          api_key_id Nullable(String),
          ip Nullable(String),
          user_agent Nullable(String),
          headers Nullable(String),
          request_body Nullable(String),
          response_body Nullable(String),
          body_truncated UInt8,
          stream_body Nullable(String),
          aborted UInt8,
          error Nullable(String),
          ts_ms Int64,
          ts DateTime('UTC') DEFAULT toDateTime(intDiv(ts_ms, 1000), 'UTC'),
          received_ms Int64
        ) ENGINE = ReplacingMergeTree
        PARTITION BY toYYYYMMDD(ts)
        ORDER BY (tenant_id, ts_ms, id)`,
      ];
    },
  },
  {
    // The hourly counts of sealed days and their builds (rollup.ts). Sorted for a trends read: one
    // tenant, a few names, one key (the total or a breakdown's), a range of hours.
    version: '002_hourly',
    statements: (db, f) => {
      const lc = lowCardinality(f);
      return [
        `CREATE TABLE IF NOT EXISTS ${db}.events_hourly (
          tenant_id ${lc('String')},
          day Date,
          build UInt64,
          name ${lc('String')},
          hour DateTime('UTC'),
          key ${lc('String')},
          value String,
          count UInt64
        ) ENGINE = MergeTree
        PARTITION BY toYYYYMMDD(day)
        ORDER BY (tenant_id, name, key, hour, value)`,
        `CREATE TABLE IF NOT EXISTS ${db}.rollup_days (
          tenant_id String,
          day Date,
          version UInt64,
          build UInt64,
          dimensions String
        ) ENGINE = ReplacingMergeTree(version)
        ORDER BY (tenant_id, day)`,
      ];
    },
  },
];

/** The server's version as numbers (`18.16.1` → [18, 16, 1]). */
export async function serverVersion(client: ClickHouseClient): Promise<{ text: string; major: number; minor: number }> {
  const [row] = await client.query<{ v: string }>('SELECT version() AS v');
  const text = row?.v ?? '0.0';
  const [major = 0, minor = 0] = text.split('.').map(Number);
  return { text, major, minor };
}

export async function migrate(client: ClickHouseClient, database: string): Promise<{ applied: string[] }> {
  const db = ident(database);
  await client.command(`CREATE DATABASE IF NOT EXISTS ${db}`);
  await client.command(
    `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations (version String, applied_at DateTime('UTC') DEFAULT now())
     ENGINE = ReplacingMergeTree ORDER BY version`,
  );
  const done = new Set(
    (await client.query<{ version: string }>(`SELECT version FROM ${db}.schema_migrations`)).map((r) => r.version),
  );
  const { major } = await serverVersion(client);
  const features: SchemaFeatures = { lowCardinality: major >= 19 };
  const applied: string[] = [];
  for (const m of MIGRATIONS) {
    if (done.has(m.version)) continue;
    for (const statement of m.statements(db, features)) await client.command(statement);
    const row = JSON.stringify({ version: m.version });
    await client.insert(`${db}.schema_migrations`, ['version'], { format: 'JSONEachRow', body: row, rows: 1 });
    applied.push(m.version);
  }
  return { applied };
}
