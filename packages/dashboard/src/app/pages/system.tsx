/**
 * System, for admin keys: how ingestion is going and what the server holds. The ingestion rate is
 * events per hour from the query API (a trends count of every event), in the header's range and zone. The rest is the admin API: `GET /v1/admin/system` (ingestion lag, the
 * writer's queue and counters, the spool's dead letters), `/jobs`, `/archive`, `/stats` and `/keys`,
 * which tell about the whole server and answer a server-wide admin key only; a tenant's admin key sees
 * the rate and its own tenant's keys, and is told which key shows the rest.
 */
import { type Interval, QUERY_LIMITS } from '@tally/core';
import { type Loaded, type QueryAnswer, records, request, useLoad, useQuery } from '../api.js';
import { Card } from '../components/card.js';
import { rangeText } from '../components/page-head.js';
import { CsvButton } from '../components/csv-button.js';
import { Stat } from '../components/stat.js';
import { DataTable, type TableColumn, tableCsv } from '../components/table.js';
import { TimeChart } from '../components/time-chart.js';
import { formatBytes, formatMs, formatNumber, formatTime } from '../format.js';
import { type Session, tenantOf, useSession } from '../session.js';
import type { View } from '../url.js';
import type { PageProps } from './registry.js';

const HOUR = 3_600_000;
const JOB_RUNS = 30;
const ARCHIVE_SHOWN = 50;

interface WriterStats {
  queued: number;
  inFlight: number;
  stored: number;
  duplicates: number;
  deadLettered: number;
  spooled: number;
  retries: number;
  batches: number;
  overloaded: number;
}

interface SpoolFile {
  file: string;
  kind: 'dead-letters' | 'transport-dead-letters' | 'pending';
  rows: number;
  bytes: number;
  modifiedAt: string;
}

interface SystemStatus {
  takenAt: string;
  lagSeconds: number | null;
  writer: WriterStats;
  transport: { published: number; handled: number; redelivered: number; deadLettered: number; inFlight: number };
  live: { clients: number; queued: number; dropped: number; unresolved: number };
  spool: { dir: string; files: SpoolFile[]; deadLetterRows: number; pendingRows: number };
}

interface JobRun {
  id: string;
  job: string;
  startedAt: string;
  finishedAt: string | null;
  outcome: string;
  counts: Record<string, number>;
  error: string | null;
}

interface ManifestRow {
  tenantId: string;
  table: string;
  day: string;
  part: number;
  location: string;
  rows: number;
  bytes: number;
  rawBytes: number;
  createdAt?: string;
  cleanedAt?: string | null;
  restoredAt?: string | null;
}

interface TableStats {
  table: string;
  rows: number;
  tableBytes: number;
  indexBytes: number;
  totalBytes: number;
  oldest?: string | null;
  newest?: string | null;
}

interface StorageStats {
  takenAt: string;
  tables: TableStats[];
  archive: { files: number; rows: number; bytes: number; rawBytes: number; cleanedRows: number };
}

interface KeyInfo {
  id: string;
  tenantId: string | null;
  scope: string;
  prefix: string;
  name: string | null;
  createdAt: string;
  revokedAt: string | null;
}

/** `42 s`, `5 min 3 s`, `2 h 5 min`, `3 d 4 h`: a lag people read at a glance. */
export function formatDuration(seconds: unknown): string {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return '–';
  if (seconds < 60) return formatMs(seconds * 1000);
  const s = Math.round(seconds);
  const [d, h, m] = [Math.floor(s / 86_400), Math.floor((s % 86_400) / 3600), Math.floor((s % 3600) / 60)];
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${m} min`;
  return `${m} min ${s % 60} s`;
}

interface Rate {
  interval: Interval;
  times: number[];
  total: number[];
}

/** The buckets of a trends count of every event (one series, `event: null`). */
function rateOf(answer: QueryAnswer, interval: Interval): Rate {
  const rows = records(answer);
  return {
    interval,
    times: rows.map((r) => Date.parse(r.time as string)),
    total: rows.map((r) => Number(r.value ?? 0)),
  };
}

/** Average and peak per hour over the buckets that have begun. */
export function perHour(rate: Rate, now = Date.now()) {
  const hours = rate.interval === 'hour' ? 1 : 24;
  const begun = rate.times.map((t, i) => [t, rate.total[i] ?? 0] as const).filter(([t]) => t <= now);
  const sum = begun.reduce((s, [, v]) => s + v, 0);
  const peak = begun.reduce((m, [, v]) => Math.max(m, v), 0);
  return {
    total: sum,
    average: begun.length === 0 ? null : Math.round((sum / begun.length / hours) * 100) / 100,
    peak: Math.round((peak / hours) * 100) / 100,
  };
}

export default function System({ view }: PageProps) {
  const { session } = useSession();
  const serverWide = session.tenant === null;
  const interval: Interval = view.to - view.from <= QUERY_LIMITS.hourlyRangeDays * 24 * HOUR ? 'hour' : 'day';

  const counts = useQuery({ kind: 'trends', interval, series: [{ event: null, measure: 'count' }] });
  const rate: Loaded<Rate> = { ...counts, data: counts.data && rateOf(counts.data, interval) };
  const admin =
    <T,>(path: string) =>
    (signal: AbortSignal) =>
      request<T>(path, { signal, tenant: false });
  const status = useLoad(serverWide ? 'system' : null, admin<SystemStatus>('/v1/admin/system'));
  const jobs = useLoad(serverWide ? 'jobs' : null, admin<{ runs: JobRun[] }>(`/v1/admin/jobs?limit=${JOB_RUNS}`));
  const archive = useLoad(serverWide ? 'archive' : null, admin<{ parts: ManifestRow[] }>('/v1/admin/archive'));
  const stats = useLoad(serverWide ? 'stats' : null, admin<StorageStats>('/v1/admin/stats'));
  // A tenant's admin key lists its own tenant's keys (the server confines it); a server-wide one, every key.
  const keys = useLoad(`keys|${session.keyId}`, admin<{ keys: KeyInfo[] }>('/v1/admin/keys'));

  const refresh = () => {
    for (const l of [counts, status, jobs, archive, stats, keys]) l.reload();
  };
  const r = rate.data ? perHour(rate.data) : undefined;
  const s = status.data;

  return (
    <>
      <div class="page-head">
        <div>
          <h1>System</h1>
          <p class="page-sub">
            {serverWide ? 'The whole server' : `Tenant ${tenantOf(session)}`}; ingestion rate {rangeText(view)}
            {s && <> · server state at {formatTime(s.takenAt, view.tz)}</>}
          </p>
        </div>
        <button type="button" class="button" onClick={refresh} data-control="refresh">
          Refresh
        </button>
      </div>

      <div class="stats">
        <Stat
          id="ingestion"
          label="Ingestion rate"
          value={r?.average}
          format={(v) => (typeof v === 'number' ? `${formatNumber(v)}/h` : '–')}
          hint={r ? `peak ${formatNumber(r.peak)}/h · ${formatNumber(r.total)} events` : 'events per hour'}
        />
        {serverWide && (
          <>
            <Stat
              id="lag"
              label="Ingestion lag"
              value={s?.lagSeconds}
              format={(v) => (s && s.lagSeconds === null ? 'none yet' : formatDuration(v))}
              hint="now − newest stored event's time"
            />
            <Stat
              id="queue"
              label="Writer queue"
              value={s?.writer.queued}
              hint={s ? `rows waiting; ${formatNumber(s.transport.inFlight)} batches being stored` : 'rows waiting'}
            />
            <Stat
              id="dead-letters"
              label="Dead letters"
              value={s?.spool.deadLetterRows}
              hint={
                s
                  ? `rows in ${s.spool.files.filter((f) => f.kind !== 'pending').length} files to fix and replay`
                  : 'rows'
              }
            />
            <Stat
              id="live"
              label="Live streams"
              value={s?.live.clients}
              hint={s ? `${formatNumber(s.live.dropped)} frames dropped` : 'open now'}
            />
          </>
        )}
      </div>

      <div class="grid">
        <RateCard rate={rate} view={view} />
        {serverWide ? (
          <>
            <WriterCard status={status} />
            <SpoolCard status={status} view={view} />
            <JobsCard jobs={jobs} view={view} />
            <StorageCard stats={stats} view={view} />
            <ArchiveCard archive={archive} stats={stats} />
          </>
        ) : (
          <Card title="Server" id="server">
            <p class="notice" data-needs="server-admin">
              Ingestion lag, the writer's queue, dead letters, job runs, the archive and storage are the whole server's:
              they are shown to a server-wide admin key (<code>tally keys create --scope admin</code>, without{' '}
              <code>--tenant</code>).
            </p>
          </Card>
        )}
        <KeysCard keys={keys} session={session} view={view} />
      </div>
    </>
  );
}

function RateCard({ rate, view }: { rate: Loaded<Rate>; view: View }) {
  const data = rate.data;
  const per = data?.interval === 'day' ? 'day' : 'hour';
  const csv = {
    header: ['time', 'events'],
    rows: data ? data.times.map((t, i) => [new Date(t).toISOString(), data.total[i] ?? 0]) : [],
  };
  return (
    <Card
      title={`Events stored per ${per}`}
      id="ingestion-rate"
      wide
      state={rate}
      actions={<CsvButton filename="ingestion-rate" what={`events per ${per}`} {...csv} />}
    >
      {data && data.times.length === 0 ? (
        <p class="muted">No events in this range.</p>
      ) : (
        data && (
          <TimeChart
            integers
            label={`Events stored per ${per}, every event name`}
            times={data.times}
            series={[{ label: `Events/${per === 'hour' ? 'h' : 'day'}`, values: data.total }]}
            tz={view.tz}
            interval={data.interval}
            kind="bars"
            height={200}
          />
        )
      )}
    </Card>
  );
}

interface Counter {
  part: string;
  name: string;
  value: number;
  meaning: string;
}

function WriterCard({ status }: { status: Loaded<SystemStatus> }) {
  const s = status.data;
  const rows: Counter[] = s
    ? [
        { part: 'writer', name: 'queued', value: s.writer.queued, meaning: 'rows waiting to be written' },
        { part: 'writer', name: 'stored', value: s.writer.stored, meaning: 'rows stored' },
        { part: 'writer', name: 'duplicates', value: s.writer.duplicates, meaning: 'rows already stored (resends)' },
        {
          part: 'writer',
          name: 'deadLettered',
          value: s.writer.deadLettered,
          meaning: 'rows sent to the dead letters',
        },
        {
          part: 'writer',
          name: 'retries',
          value: s.writer.retries,
          meaning: 'inserts retried after a transient error',
        },
        { part: 'writer', name: 'overloaded', value: s.writer.overloaded, meaning: 'rows refused: the queue was full' },
        { part: 'writer', name: 'spooled', value: s.writer.spooled, meaning: 'rows spooled at shutdown' },
        {
          part: 'transport',
          name: 'inFlight',
          value: s.transport.inFlight,
          meaning: 'batches handed over, not yet acknowledged',
        },
        { part: 'transport', name: 'redelivered', value: s.transport.redelivered, meaning: 'batches delivered again' },
        { part: 'transport', name: 'deadLettered', value: s.transport.deadLettered, meaning: 'batches given up on' },
        { part: 'live', name: 'dropped', value: s.live.dropped, meaning: 'live frames not sent to slow clients' },
      ]
    : [];
  const columns: TableColumn<Counter>[] = [
    { key: 'part', label: 'Part', value: (r) => r.part },
    { key: 'name', label: 'Counter', value: (r) => r.name },
    { key: 'value', label: 'Value', numeric: true, value: (r) => r.value, render: (r) => formatNumber(r.value) },
    { key: 'meaning', label: 'Meaning', value: (r) => r.meaning },
  ];
  return (
    <Card
      title="Writer and transport"
      id="writer"
      state={status}
      actions={<CsvButton filename="writer" what="writer and transport counters" {...tableCsv(columns, rows)} />}
    >
      <p class="muted small">Now, and counted since the server started.</p>
      <DataTable
        caption="Writer, transport and live stream counters"
        columns={columns}
        rows={rows}
        rowKey={(r) => `${r.part}.${r.name}`}
      />
    </Card>
  );
}

function SpoolCard({ status, view }: { status: Loaded<SystemStatus>; view: View }) {
  const files = status.data?.spool.files ?? [];
  const columns: TableColumn<SpoolFile>[] = [
    { key: 'file', label: 'File', value: (r) => r.file },
    {
      key: 'kind',
      label: 'Holds',
      value: (r) => r.kind,
      render: (r) =>
        r.kind === 'pending' ? (
          'pending rows, stored at the next start'
        ) : (
          <span class="badge bad">{r.kind === 'dead-letters' ? 'dead letters' : 'NATS dead letters'}</span>
        ),
    },
    { key: 'rows', label: 'Rows', numeric: true, value: (r) => r.rows, render: (r) => formatNumber(r.rows) },
    { key: 'bytes', label: 'Size', numeric: true, value: (r) => r.bytes, render: (r) => formatBytes(r.bytes) },
    {
      key: 'modified_at',
      label: 'Changed',
      value: (r) => r.modifiedAt,
      render: (r) => formatTime(r.modifiedAt, view.tz),
    },
  ];
  return (
    <Card
      title="Dead letters and spool"
      id="spool"
      state={status}
      actions={<CsvButton filename="spool" what="spool files" {...tableCsv(columns, files)} />}
    >
      <p class="muted small">
        Rows the database refused wait in <code>{status.data?.spool.dir ?? 'the spool directory'}</code>: fix them and
        run <code>tally replay &lt;file&gt;</code>.
      </p>
      <DataTable
        caption="Files of rows not stored"
        columns={columns}
        rows={files}
        rowKey={(r) => r.file}
        empty="None: every row the writer took was stored."
      />
    </Card>
  );
}

function JobsCard({ jobs, view }: { jobs: Loaded<{ runs: JobRun[] }>; view: View }) {
  const runs = jobs.data?.runs ?? [];
  const columns: TableColumn<JobRun>[] = [
    { key: 'job', label: 'Job', value: (r) => r.job },
    { key: 'started_at', label: 'Started', value: (r) => r.startedAt, render: (r) => formatTime(r.startedAt, view.tz) },
    {
      key: 'duration_ms',
      label: 'Took',
      numeric: true,
      value: (r) => (r.finishedAt ? Date.parse(r.finishedAt) - Date.parse(r.startedAt) : null),
      render: (r) => (r.finishedAt ? formatMs(Date.parse(r.finishedAt) - Date.parse(r.startedAt)) : 'running'),
    },
    {
      key: 'outcome',
      label: 'Outcome',
      value: (r) => r.outcome,
      render: (r) => (r.outcome === 'failed' ? <span class="badge bad">failed</span> : r.outcome),
    },
    {
      key: 'counts',
      label: 'Counts',
      value: (r) => r.counts,
      render: (r) =>
        Object.entries(r.counts)
          .map(([k, v]) => `${k} ${formatNumber(v)}`)
          .join(', ') || '–',
    },
    { key: 'error', label: 'Error', value: (r) => r.error },
  ];
  return (
    <Card
      title="Job runs"
      id="jobs"
      wide
      state={jobs}
      actions={<CsvButton filename="job-runs" what="job runs" {...tableCsv(columns, runs)} />}
    >
      <DataTable
        caption={`The ${JOB_RUNS} most recent lifecycle job runs, newest first`}
        columns={columns}
        rows={runs}
        rowKey={(r) => r.id}
        empty="No job has run yet."
      />
    </Card>
  );
}

function StorageCard({ stats, view }: { stats: Loaded<StorageStats>; view: View }) {
  const tables = stats.data?.tables ?? [];
  const columns: TableColumn<TableStats>[] = [
    { key: 'table', label: 'Table', value: (r) => r.table },
    { key: 'rows', label: 'Rows', numeric: true, value: (r) => r.rows, render: (r) => formatNumber(r.rows) },
    {
      key: 'total_bytes',
      label: 'Size',
      numeric: true,
      value: (r) => r.totalBytes,
      render: (r) => formatBytes(r.totalBytes),
    },
    {
      key: 'index_bytes',
      label: 'Indexes',
      numeric: true,
      value: (r) => r.indexBytes,
      render: (r) => formatBytes(r.indexBytes),
    },
    {
      key: 'oldest',
      label: 'Oldest',
      value: (r) => r.oldest ?? null,
      render: (r) => formatTime(r.oldest, view.tz, 'day'),
    },
    {
      key: 'newest',
      label: 'Newest',
      value: (r) => r.newest ?? null,
      render: (r) => formatTime(r.newest, view.tz, 'day'),
    },
  ];
  return (
    <Card
      title="Storage"
      id="storage"
      state={stats}
      actions={<CsvButton filename="storage" what="storage by table" {...tableCsv(columns, tables)} />}
    >
      <DataTable caption="Rows and size of each table" columns={columns} rows={tables} rowKey={(r) => r.table} />
    </Card>
  );
}

function ArchiveCard({ archive, stats }: { archive: Loaded<{ parts: ManifestRow[] }>; stats: Loaded<StorageStats> }) {
  const parts = archive.data?.parts ?? [];
  const a = stats.data?.archive;
  const columns: TableColumn<ManifestRow>[] = [
    { key: 'tenant', label: 'Tenant', value: (r) => r.tenantId },
    { key: 'table', label: 'Table', value: (r) => r.table },
    { key: 'day', label: 'Day', value: (r) => r.day },
    { key: 'rows', label: 'Rows', numeric: true, value: (r) => r.rows, render: (r) => formatNumber(r.rows) },
    { key: 'bytes', label: 'Size', numeric: true, value: (r) => r.bytes, render: (r) => formatBytes(r.bytes) },
    {
      key: 'state',
      label: 'Detail',
      value: (r) => (r.restoredAt ? 'restored' : r.cleanedAt ? 'removed' : 'kept'),
    },
    { key: 'location', label: 'Location', value: (r) => r.location },
  ];
  return (
    <Card
      title="Archive"
      id="archive"
      state={archive}
      actions={<CsvButton filename="archive" what="archive parts" {...tableCsv(columns, parts)} />}
    >
      <p class="muted small" data-archive-summary>
        {a
          ? `${formatNumber(a.files)} files, ${formatNumber(a.rows)} rows, ${formatBytes(a.bytes)} compressed (${formatBytes(a.rawBytes)} raw); detail removed for ${formatNumber(a.cleanedRows)} rows.`
          : 'Days older than the archive age are written to files, then removed from the detail tables.'}
      </p>
      <DataTable
        caption="Archived parts, by tenant, table and day"
        columns={columns}
        rows={parts.slice(0, ARCHIVE_SHOWN)}
        rowKey={(r) => `${r.tenantId}|${r.table}|${r.day}|${r.part}`}
        empty="Nothing archived yet."
      />
      {parts.length > ARCHIVE_SHOWN && (
        <p class="muted small">
          The first {ARCHIVE_SHOWN} of {formatNumber(parts.length)} parts are shown; the CSV has all.
        </p>
      )}
    </Card>
  );
}

function KeysCard({ keys, session, view }: { keys: Loaded<{ keys: KeyInfo[] }>; session: Session; view: View }) {
  const list = keys.data?.keys ?? [];
  const columns: TableColumn<KeyInfo>[] = [
    {
      key: 'id',
      label: 'Key',
      value: (r) => r.id,
      render: (r) => (
        <>
          <code>{r.prefix}…</code>
          {r.id === session.keyId && <span class="badge">this session</span>}
        </>
      ),
    },
    { key: 'tenant', label: 'Tenant', value: (r) => r.tenantId, render: (r) => r.tenantId ?? 'server-wide' },
    { key: 'scope', label: 'Scope', value: (r) => r.scope },
    { key: 'name', label: 'Name', value: (r) => r.name },
    { key: 'created_at', label: 'Created', value: (r) => r.createdAt, render: (r) => formatTime(r.createdAt, view.tz) },
    {
      key: 'revoked_at',
      label: 'Revoked',
      value: (r) => r.revokedAt,
      render: (r) => (r.revokedAt ? <span class="badge bad">{formatTime(r.revokedAt, view.tz)}</span> : '–'),
    },
  ];
  return (
    <Card
      title={session.tenant === null ? 'Keys, every tenant' : `Keys of ${session.tenant}`}
      id="keys"
      wide
      state={keys}
      actions={<CsvButton filename="keys" what="keys" {...tableCsv(columns, list)} />}
    >
      <p class="muted small">
        Create and revoke with <code>tally keys create</code> and <code>tally keys revoke</code>; a key is shown once,
        when created.
      </p>
      <DataTable caption="API keys" columns={columns} rows={list} rowKey={(r) => r.id} />
    </Card>
  );
}
