/**
 * The one place Tally reads its environment. Everything else receives a typed, validated Config.
 * Precedence: command-line flag > environment variable > config file (`--config`) > default. A wrong
 * value fails here, at start, with a message that names the setting and how to fix it.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { TallyConfigError, UNPLANNED_POLICIES, type UnplannedPolicy } from '@tally/core';
import type { StoreConfig } from '@tally/store';
import type { JobName } from './lifecycle/jobs.js';

export interface NatsConfig {
  servers: string[];
  /** Subjects are `<prefix>.analytics.<type>`. */
  prefix: string;
  stream: string;
}

export interface ClickHouseConfig {
  /** `http://user:password@host:8123`. */
  url: string;
  database: string;
  /** Rows per insert into ClickHouse, and how long a partial batch waits for more. */
  batchRows: number;
  flushMs: number;
}

export interface Config {
  store: StoreConfig;
  /** Set: events and request logs live in ClickHouse; the relational store keeps the control plane. */
  clickhouse?: ClickHouseConfig;
  /**
   * Keep user_activity_hourly (StoreConfig.activityRollup): passed to createStore beside the catalog's
   * dimensions by every process that stores (serve, the CLI opening the store itself).
   */
  activityRollup: boolean;
  /** Where spool and dead-letter files live. */
  spoolDir: string;
  dataDir: string;
  host: string;
  port: number;
  /** Unset: the in-process transport. */
  nats?: NatsConfig;
  /** Largest request body the collector reads, after gunzip. */
  maxBodyBytes: number;
  /** How long a client may take to send a request, and how many may be connected at once. */
  http: HttpLimits;
  /** Per-tenant token bucket: events per second (0 = off) and burst size. */
  rateLimit: { perSecond: number; burst: number };
  /** What the collector does with event names the catalog does not declare (per-tenant override in the DB). */
  unlisted: 'reject' | 'accept';
  /** What the collector does with properties a catalog event does not declare (per-tenant override in the DB). */
  unplanned: UnplannedPolicy;
  quarantine: { maxRowsPerTenant: number; days: number };
  /** A module whose default export is a catalog (`defineCatalog`); unset: the built-in catalogs. */
  catalogModule?: string;
  lifecycle: LifecycleConfig;
  query: QueryConfig;
  /** `auto`: pretty on a terminal, JSON otherwise (decided where stdout is known). */
  logFormat: 'auto' | 'pretty' | 'json';
  /** Serve the dashboard at `/` (and its files at `/assets/`). */
  dashboard: boolean;
}

export interface QueryConfig {
  /** Statement timeout of one query, ms. */
  timeoutMs: number;
  /** Most rows one answer holds. */
  maxRows: number;
  /** Open live (SSE) streams at once. */
  liveMaxClients: number;
}

export interface HttpLimits {
  /** Request line and headers must arrive within this (slowloris). */
  headersTimeoutMs: number;
  /** The whole request, headers and body, must arrive within this. */
  requestTimeoutMs: number;
  /** A keep-alive connection idle this long between requests is closed. */
  keepAliveTimeoutMs: number;
  /** Open connections at once; more are closed on accept. */
  maxConnections: number;
}

export interface LifecycleConfig {
  /** A directory or `s3://bucket/prefix?endpoint=…` (see lifecycle/targets). */
  target: string;
  s3: { accessKeyId?: string; secretAccessKey?: string };
  archiveAfterDays: number;
  /** Run the scheduler inside `tally serve`. */
  jobs: boolean;
  schedules: Record<JobName, string>;
  /** A hot-path snapshot every this many writer batches. */
  snapshotEvery: number;
  keepSnapshots: number;
}

interface Setting {
  flag: string;
  env: string;
  default: string;
  doc: string;
}

/** Every setting: flag, environment variable, default, meaning. The README table follows this list. */
export const SETTINGS = [
  {
    flag: '--database-url',
    env: 'DATABASE_URL',
    default: '(unset: embedded PGlite)',
    doc: 'Postgres server URL (`postgres://user@host:5432/db`). Unset: embedded PGlite in the data directory.',
  },
  {
    flag: '--clickhouse-url',
    env: 'CLICKHOUSE_URL',
    default: '(unset: the relational store)',
    doc: 'ClickHouse server (`http://user:password@host:8123`): events and request logs are stored and queried there; tenants, keys, jobs and the quarantine stay in PGlite or Postgres.',
  },
  {
    flag: '--clickhouse-database',
    env: 'TALLY_CLICKHOUSE_DATABASE',
    default: 'tally',
    doc: "ClickHouse database holding Tally's tables (created by `tally migrate` or at start).",
  },
  {
    flag: '--clickhouse-batch-rows',
    env: 'TALLY_CLICKHOUSE_BATCH_ROWS',
    default: '20000',
    doc: 'Rows per insert into ClickHouse (it prefers thousands of rows per insert and a few inserts a second).',
  },
  {
    flag: '--clickhouse-flush-ms',
    env: 'TALLY_CLICKHOUSE_FLUSH_MS',
    default: '250',
    doc: 'How long a partial ClickHouse batch waits for more rows before it is inserted.',
  },
  {
    flag: '--data-dir',
    env: 'TALLY_DATA_DIR',
    default: './.tally',
    doc: 'Data directory: PGlite database (`pglite/`), spool and dead letters (`spool/`).',
  },
  {
    flag: '--schema',
    env: 'TALLY_DB_SCHEMA',
    default: 'tally',
    doc: "Postgres schema holding Tally's tables (one database can hold several).",
  },
  { flag: '--host', env: 'TALLY_HOST', default: '127.0.0.1', doc: 'Address `tally serve` listens on.' },
  { flag: '--port', env: 'TALLY_PORT', default: '8787', doc: 'Port `tally serve` listens on (0: any free port).' },
  {
    flag: '--log-format',
    env: 'TALLY_LOG_FORMAT',
    default: 'auto',
    doc: '`pretty` (one readable line per record), `json` (pino) or `auto`: pretty when stdout is a terminal, JSON otherwise.',
  },
  {
    flag: '--nats-url',
    env: 'NATS_URL',
    default: '(unset: in-process)',
    doc: 'NATS server(s), comma-separated (`nats://127.0.0.1:4222`): the collector commits batches to JetStream and a durable consumer stores them.',
  },
  {
    flag: '--nats-prefix',
    env: 'TALLY_NATS_PREFIX',
    default: 'tally',
    doc: 'App prefix of the subjects `<prefix>.analytics.<type>`.',
  },
  { flag: '--nats-stream', env: 'TALLY_NATS_STREAM', default: 'ANALYTICS', doc: 'JetStream stream name.' },
  {
    flag: '--max-body-bytes',
    env: 'TALLY_MAX_BODY_BYTES',
    default: '5242880',
    doc: 'Largest request body, after gunzip (413 `TALLY_PAYLOAD_TOO_LARGE` above).',
  },
  {
    flag: '--headers-timeout-ms',
    env: 'TALLY_HEADERS_TIMEOUT_MS',
    default: '10000',
    doc: 'A client must send its request line and headers within this many ms of connecting or of its previous request, or gets 408 `TALLY_TIMEOUT` and is disconnected (slow-header attacks).',
  },
  {
    flag: '--request-timeout-ms',
    env: 'TALLY_REQUEST_TIMEOUT_MS',
    default: '30000',
    doc: 'A client must send its whole request, headers and body, within this many ms, or gets 408 `TALLY_TIMEOUT` and is disconnected (a stalled or trickled upload). At least the headers timeout.',
  },
  {
    flag: '--keep-alive-timeout-ms',
    env: 'TALLY_KEEP_ALIVE_TIMEOUT_MS',
    default: '72000',
    doc: "An idle keep-alive connection is closed after this many ms. Behind a load balancer, keep it above the balancer's idle timeout (60 s on AWS ALB).",
  },
  {
    flag: '--max-connections',
    env: 'TALLY_MAX_CONNECTIONS',
    default: '10000',
    doc: 'Open HTTP connections at once; a connection beyond it is closed as soon as it is accepted (`tally_connections_dropped_total`), the open ones are served. Mind the file descriptor limit (`ulimit -n`).',
  },
  {
    flag: '--rate-limit',
    env: 'TALLY_RATE_LIMIT',
    default: '20000',
    doc: 'Events per second per tenant (token bucket; 0 = off). 429 `TALLY_RATE_LIMITED` with Retry-After above.',
  },
  {
    flag: '--rate-burst',
    env: 'TALLY_RATE_BURST',
    default: '5 × rate',
    doc: 'Token bucket size: events a tenant may send at once.',
  },
  {
    flag: '--unlisted',
    env: 'TALLY_UNLISTED',
    default: 'reject',
    doc: '`reject` events whose name is not in the catalog (per event, `TALLY_UNKNOWN_EVENT`) or `accept` them unchecked, marked `context.unlisted`. Per tenant: `tally tenants set <id> --unlisted accept`.',
  },
  {
    flag: '--unplanned',
    env: 'TALLY_UNPLANNED',
    default: 'allow',
    doc: 'Properties a catalog event does not declare: `allow` them (stored, their keys listed in `context.unplanned`), `strip` them (keys in `context.stripped`) or `reject` the event (`TALLY_UNKNOWN_PROPERTY`, quarantined). Per tenant: `tally tenants set <id> --unplanned reject`; per event: `unplanned` in the catalog.',
  },
  {
    flag: '--quarantine-max-rows',
    env: 'TALLY_QUARANTINE_MAX_ROWS',
    default: '100000',
    doc: 'Refused events kept per tenant for `tally rejected`; beyond it the oldest are dropped and counted (`tally_quarantine_dropped_total`).',
  },
  {
    flag: '--quarantine-days',
    env: 'TALLY_QUARANTINE_DAYS',
    default: '30',
    doc: 'Refused events older than this many days are deleted by the cleanup job.',
  },
  {
    flag: '--query-timeout-ms',
    env: 'TALLY_QUERY_TIMEOUT_MS',
    default: '30000',
    doc: 'A query (`POST /v1/query`, `tally query`) running longer is cancelled: 503 `TALLY_QUERY_TIMEOUT`. Postgres only; PGlite cannot interrupt a statement.',
  },
  {
    flag: '--query-max-rows',
    env: 'TALLY_QUERY_MAX_ROWS',
    default: '10000',
    doc: 'Most rows a query answers; more are cut and `meta.truncated` is set.',
  },
  {
    flag: '--live-max-clients',
    env: 'TALLY_LIVE_MAX_CLIENTS',
    default: '100',
    doc: 'Open `GET /v1/live` streams at once, all tenants together; one more is refused with 503 `TALLY_UNAVAILABLE`.',
  },
  {
    flag: '--activity-rollup',
    env: 'TALLY_ACTIVITY_ROLLUP',
    default: 'off',
    doc: '`on`: keep which users were active per event and hour (user_activity_hourly): retention answers several times faster, at about 1.5–2× the ingest CPU. Turned on, it covers hours from the next one on (`tally rollups rebuild` fills in the past); turned off, retention reads the detail rows.',
  },
  {
    flag: '--dashboard',
    env: 'TALLY_DASHBOARD',
    default: 'on',
    doc: '`on`: `tally serve` serves the dashboard at `/` on its port (sign in with a read or admin key); `off`: no dashboard, `/` answers 404 like any unknown path.',
  },
  {
    flag: '--catalog',
    env: 'TALLY_CATALOG',
    default: '(built-in catalogs)',
    doc: 'Path of an ES module whose default export is your `defineCatalog(...)`.',
  },
  {
    flag: '--archive-target',
    env: 'TALLY_ARCHIVE_TARGET',
    default: '<data-dir>/archive',
    doc: 'Where archive files go: a directory, or `s3://bucket/prefix?endpoint=http://host:9000&region=…` (S3 or compatible).',
  },
  {
    flag: '--s3-access-key-id',
    env: 'AWS_ACCESS_KEY_ID',
    default: '(AWS default chain)',
    doc: 'S3 credentials for an `s3://` archive target (with `AWS_SECRET_ACCESS_KEY` / `--s3-secret-access-key`).',
  },
  {
    flag: '--s3-secret-access-key',
    env: 'AWS_SECRET_ACCESS_KEY',
    default: '(AWS default chain)',
    doc: 'See `AWS_ACCESS_KEY_ID`.',
  },
  {
    flag: '--archive-after-days',
    env: 'TALLY_ARCHIVE_AFTER_DAYS',
    default: '3',
    doc: 'Detail rows (events, request logs) older than this many whole UTC days are archived, then cleaned up.',
  },
  {
    flag: '--jobs',
    env: 'TALLY_JOBS',
    default: 'on',
    doc: '`on`: `tally serve` runs the lifecycle jobs on their schedules (one runner per job across processes); `off`: run them from the CLI or cron.',
  },
  {
    flag: '--schedule-archive',
    env: 'TALLY_SCHEDULE_ARCHIVE',
    default: '0 2 * * *',
    doc: 'Cron expression (UTC) of the archive job.',
  },
  {
    flag: '--schedule-cleanup',
    env: 'TALLY_SCHEDULE_CLEANUP',
    default: '0 3 * * *',
    doc: 'Cron expression (UTC) of the cleanup job (deletes only rows whose archive file verifies).',
  },
  {
    flag: '--schedule-stats',
    env: 'TALLY_SCHEDULE_STATS',
    default: '0 4 * * *',
    doc: 'Cron expression (UTC) of the storage statistics job.',
  },
  {
    flag: '--schedule-snapshot-prune',
    env: 'TALLY_SCHEDULE_SNAPSHOT_PRUNE',
    default: '0 5 * * 0',
    doc: 'Cron expression (UTC) of the snapshot pruning job (keeps the newest 5).',
  },
  {
    flag: '--schedule-rollups',
    env: 'TALLY_SCHEDULE_ROLLUPS',
    default: '10 * * * *',
    doc: 'Cron expression (UTC) of the rollups job: with ClickHouse it builds the hourly counts of each day an hour after it ends (and again after late events); the relational store keeps its rollups at insert.',
  },
  {
    flag: '--snapshot-every',
    env: 'TALLY_SNAPSHOT_EVERY',
    default: '10',
    doc: 'A hot-path snapshot (top events and paths, error rates, p95) every this many writer batches.',
  },
  {
    flag: '--config',
    env: 'TALLY_CONFIG',
    default: '(none)',
    doc: 'JSON file of settings keyed by flag name without dashes (`{"port": 9000, "nats-url": "…"}`).',
  },
] as const satisfies readonly Setting[];

type SettingName = (typeof SETTINGS)[number]['flag'] extends `--${infer N}` ? N : never;

export type Flags = Record<string, string | undefined>;

const KNOWN = new Set<string>(SETTINGS.map((s) => s.flag.slice(2)));

export function loadConfig(flags: Flags = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const fromEnv = (name: SettingName) => {
    const s = SETTINGS.find((x) => x.flag === `--${name}`) as Setting;
    return nonEmpty(flags[name]) ?? nonEmpty(env[s.env]);
  };
  const file = readConfigFile(fromEnv('config'));
  const get = (name: SettingName): string | undefined => fromEnv(name) ?? nonEmpty(file[name]);

  const dataDir = resolve(get('data-dir') ?? '.tally');
  const schema = get('schema') ?? 'tally';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new TallyConfigError(
      `TALLY_DB_SCHEMA "${schema}" is not a plain lowercase identifier (a-z, 0-9, _; ≤ 63 chars)`,
    );
  }
  const url = get('database-url');
  let store: StoreConfig;
  if (url === undefined) {
    // PGlite runs Postgres on the thread that owns it: a worker keeps the collector's thread (HTTP,
    // health, metrics) free while it stores.
    store = { kind: 'pglite', dataDir: resolve(dataDir, 'pglite'), schema, worker: true };
  } else {
    const parsed = parseUrl(url, 'DATABASE_URL', 'postgres://user@127.0.0.1:5432/tally');
    if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
      throw new TallyConfigError(`DATABASE_URL must start with postgres:// or postgresql://, not ${parsed.protocol}//`);
    }
    store = { kind: 'postgres', url, schema };
  }

  const clickhouseUrl = get('clickhouse-url');
  let clickhouse: ClickHouseConfig | undefined;
  if (clickhouseUrl !== undefined) {
    const parsed = parseUrl(clickhouseUrl, 'CLICKHOUSE_URL', 'http://default@127.0.0.1:8123');
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new TallyConfigError(`CLICKHOUSE_URL must start with http:// or https://, not ${parsed.protocol}//`);
    }
    const database = get('clickhouse-database') ?? 'tally';
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(database)) {
      throw new TallyConfigError(`TALLY_CLICKHOUSE_DATABASE "${database}" must be letters, digits and _`);
    }
    clickhouse = {
      url: clickhouseUrl,
      database,
      batchRows: integer(get('clickhouse-batch-rows') ?? '20000', 'TALLY_CLICKHOUSE_BATCH_ROWS', 1, 1_000_000),
      flushMs: integer(get('clickhouse-flush-ms') ?? '250', 'TALLY_CLICKHOUSE_FLUSH_MS', 1, 60_000),
    };
  }

  const natsUrl = get('nats-url');
  let nats: NatsConfig | undefined;
  if (natsUrl !== undefined) {
    const servers = natsUrl.split(',').map((s) => s.trim());
    for (const s of servers) {
      const u = parseUrl(s.includes('://') ? s : `nats://${s}`, 'NATS_URL', 'nats://127.0.0.1:4222');
      if (!['nats:', 'tls:', 'ws:', 'wss:'].includes(u.protocol)) {
        throw new TallyConfigError(`NATS_URL must use nats:// (or tls://), not ${u.protocol}//`);
      }
    }
    const prefix = get('nats-prefix') ?? 'tally';
    if (!/^[A-Za-z0-9_-]+$/.test(prefix)) {
      throw new TallyConfigError(`TALLY_NATS_PREFIX "${prefix}" must be one subject token: letters, digits, _ or -`);
    }
    const stream = get('nats-stream') ?? 'ANALYTICS';
    if (!/^[A-Za-z0-9_-]+$/.test(stream)) {
      throw new TallyConfigError(`TALLY_NATS_STREAM "${stream}" must be letters, digits, _ or -`);
    }
    nats = { servers, prefix, stream };
  }

  const port = integer(get('port') ?? '8787', 'TALLY_PORT', 0, 65535);
  const host = get('host') ?? '127.0.0.1';
  const logFormat = get('log-format') ?? 'auto';
  if (logFormat !== 'auto' && logFormat !== 'pretty' && logFormat !== 'json') {
    throw new TallyConfigError(`TALLY_LOG_FORMAT must be "auto", "pretty" or "json", not "${logFormat}"`);
  }
  const maxBodyBytes = integer(get('max-body-bytes') ?? '5242880', 'TALLY_MAX_BODY_BYTES', 1024, 1 << 30);
  const http = httpLimits(get);
  const perSecond = integer(get('rate-limit') ?? '20000', 'TALLY_RATE_LIMIT', 0, 1e9);
  const burst = integer(get('rate-burst') ?? String(perSecond * 5), 'TALLY_RATE_BURST', 0, 1e10);
  if (perSecond > 0 && burst < 1) throw new TallyConfigError('TALLY_RATE_BURST must be at least 1 when a rate is set');
  const unlisted = get('unlisted') ?? 'reject';
  if (unlisted !== 'reject' && unlisted !== 'accept') {
    throw new TallyConfigError(`TALLY_UNLISTED must be "reject" or "accept", not "${unlisted}"`);
  }
  const unplanned = (get('unplanned') ?? 'allow') as UnplannedPolicy;
  if (!UNPLANNED_POLICIES.includes(unplanned)) {
    throw new TallyConfigError(`TALLY_UNPLANNED must be ${UNPLANNED_POLICIES.join(', ')}, not "${unplanned}"`);
  }
  const quarantine = {
    maxRowsPerTenant: integer(get('quarantine-max-rows') ?? '100000', 'TALLY_QUARANTINE_MAX_ROWS', 1, 1e9),
    days: integer(get('quarantine-days') ?? '30', 'TALLY_QUARANTINE_DAYS', 1, 36500),
  };
  const activityRollup = get('activity-rollup') ?? 'off';
  if (activityRollup !== 'on' && activityRollup !== 'off') {
    throw new TallyConfigError(`TALLY_ACTIVITY_ROLLUP must be "on" or "off", not "${activityRollup}"`);
  }
  const dashboard = get('dashboard') ?? 'on';
  if (dashboard !== 'on' && dashboard !== 'off') {
    throw new TallyConfigError(`TALLY_DASHBOARD must be "on" or "off", not "${dashboard}"`);
  }
  const catalog = get('catalog');
  const jobs = get('jobs') ?? 'on';
  if (jobs !== 'on' && jobs !== 'off') throw new TallyConfigError(`TALLY_JOBS must be "on" or "off", not "${jobs}"`);
  const schedule = (name: JobName, fallback: string) => {
    const expr = get(`schedule-${name}`) ?? fallback;
    const fields = expr.trim().split(/\s+/).length;
    if (fields < 5 || fields > 6) {
      throw new TallyConfigError(
        `TALLY_SCHEDULE_${name.toUpperCase().replace('-', '_')} "${expr}" is not a cron expression (5 fields: minute hour day month weekday, UTC)`,
      );
    }
    return expr;
  };
  const lifecycle: LifecycleConfig = {
    target: get('archive-target') ?? resolve(dataDir, 'archive'),
    s3: { accessKeyId: get('s3-access-key-id'), secretAccessKey: get('s3-secret-access-key') },
    archiveAfterDays: integer(get('archive-after-days') ?? '3', 'TALLY_ARCHIVE_AFTER_DAYS', 1, 36500),
    jobs: jobs === 'on',
    schedules: {
      archive: schedule('archive', '0 2 * * *'),
      cleanup: schedule('cleanup', '0 3 * * *'),
      stats: schedule('stats', '0 4 * * *'),
      'snapshot-prune': schedule('snapshot-prune', '0 5 * * 0'),
      rollups: schedule('rollups', '10 * * * *'),
    },
    snapshotEvery: integer(get('snapshot-every') ?? '10', 'TALLY_SNAPSHOT_EVERY', 1, 1e9),
    keepSnapshots: 5,
  };
  const query: QueryConfig = {
    timeoutMs: integer(get('query-timeout-ms') ?? '30000', 'TALLY_QUERY_TIMEOUT_MS', 100, 3_600_000),
    maxRows: integer(get('query-max-rows') ?? '10000', 'TALLY_QUERY_MAX_ROWS', 1, 1_000_000),
    liveMaxClients: integer(get('live-max-clients') ?? '100', 'TALLY_LIVE_MAX_CLIENTS', 0, 100_000),
  };
  return {
    store,
    clickhouse,
    activityRollup: activityRollup === 'on',
    dataDir,
    spoolDir: resolve(dataDir, 'spool'),
    host,
    port,
    nats,
    maxBodyBytes,
    http,
    rateLimit: { perSecond, burst },
    unlisted,
    unplanned,
    quarantine,
    catalogModule: catalog === undefined ? undefined : resolve(catalog),
    lifecycle,
    query,
    logFormat,
    dashboard: dashboard === 'on',
  };
}

function httpLimits(get: (name: SettingName) => string | undefined): HttpLimits {
  const HOUR = 3_600_000;
  const headersTimeoutMs = integer(get('headers-timeout-ms') ?? '10000', 'TALLY_HEADERS_TIMEOUT_MS', 100, HOUR);
  const requestTimeoutMs = integer(get('request-timeout-ms') ?? '30000', 'TALLY_REQUEST_TIMEOUT_MS', 100, HOUR);
  // Node refuses a headers timeout longer than the request timeout (the request would time out first).
  if (headersTimeoutMs > requestTimeoutMs) {
    throw new TallyConfigError(
      `TALLY_HEADERS_TIMEOUT_MS (${headersTimeoutMs}) must not exceed TALLY_REQUEST_TIMEOUT_MS (${requestTimeoutMs}): the headers are part of the request`,
    );
  }
  return {
    headersTimeoutMs,
    requestTimeoutMs,
    keepAliveTimeoutMs: integer(get('keep-alive-timeout-ms') ?? '72000', 'TALLY_KEEP_ALIVE_TIMEOUT_MS', 100, HOUR),
    maxConnections: integer(get('max-connections') ?? '10000', 'TALLY_MAX_CONNECTIONS', 1, 1_000_000),
  };
}

function nonEmpty(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  return String(v);
}

function readConfigFile(path: string | undefined): Record<string, unknown> {
  if (path === undefined) return {};
  let text: string;
  try {
    text = readFileSync(resolve(path), 'utf8');
  } catch (e) {
    throw new TallyConfigError(`config file ${path}: ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new TallyConfigError(`config file ${path} is not JSON: ${(e as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new TallyConfigError(`config file ${path} must hold one JSON object of settings`);
  }
  for (const key of Object.keys(parsed)) {
    if (!KNOWN.has(key) || key === 'config') {
      throw new TallyConfigError(`config file ${path}: unknown setting "${key}" (use flag names without dashes)`);
    }
  }
  return parsed as Record<string, unknown>;
}

function parseUrl(value: string, name: string, example: string): URL {
  try {
    return new URL(value);
  } catch {
    throw new TallyConfigError(`${name} is not a URL; expected e.g. ${example}`);
  }
}

function integer(value: string, name: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new TallyConfigError(`${name} must be an integer from ${min} to ${max}, not "${value}"`);
  }
  return n;
}
