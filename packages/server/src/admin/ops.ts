/**
 * Every administrative operation the CLI performs, as one interface with two implementations: local
 * (over a Store this process holds: the admin routes inside `tally serve`, and the CLI when no server
 * holds the database) and remote (HTTP to the running server's admin API). The CLI only formats
 * results, so its output and exit codes are the same either way.
 *
 * Results are plain JSON values; failures are TallyErrors with their code, on both sides of the wire.
 * Long operations take an `onProgress` callback: locally it is called as they go, remotely the lines
 * arrive streamed (NDJSON) and are passed on as they come.
 */
import type { UnplannedPolicy } from '@tally/core';
import type {
  ApiKeyInfo,
  JobRun,
  KeyScope,
  ManifestRow,
  QuarantinedEvent,
  RebuildResult,
  ReplayReport,
  StorageStats,
  Store,
  Tenant,
} from '@tally/store';
import type { CleanupReport } from '../lifecycle/cleanup.js';
import type { JobOutcome } from '../lifecycle/jobs.js';
import type { RestoreReport } from '../lifecycle/restore.js';
import type { QuarantineReplayReport } from '../quarantine.js';

export type Progress = (line: string) => void;

export interface CreatedKey {
  /** The plain key: shown once, never stored. */
  key: string;
  info: ApiKeyInfo;
}

export interface TenantSettings {
  /** null: back to the server's default. */
  acceptUnlisted?: boolean | null;
  rateLimit?: number | null;
  unplanned?: UnplannedPolicy | null;
}

export interface ArchiveRunResult {
  /** Where the files went (a directory or `s3://…`). */
  location: string;
  olderThanDays: number;
  outcome: JobOutcome;
}

export interface CleanupResult {
  /** `run`: the cleanup job (recorded in job_runs); `direct`: a dry run or one including restored days. */
  mode: 'job' | 'direct';
  outcome?: JobOutcome;
  report?: CleanupReport;
}

export interface ReplayResult extends ReplayReport {
  /** Where rows that still fail went back to. */
  deadLetterFile: string;
}

/** Which refused events: all of them, or those of a tenant, a code, an event name, received since a time. */
export interface RejectedFilter {
  tenant?: string;
  code?: string;
  name?: string;
  /** ISO 8601 time. */
  since?: string;
}

export interface RejectedList {
  /** Newest first, at most `limit`. */
  events: QuarantinedEvent[];
  /** Every matching event, by error code. */
  counts: Record<string, number>;
}

/** A query's answer: columns, rows and how it was answered (see docs/query.md). */
export type QueryAnswer = Awaited<ReturnType<Store['query']>>;

/** Where the operations run: shown by commands that say which database they touched. */
export interface OpsTarget {
  /** `PGlite at /path` or `Postgres host, schema s`. */
  store: string;
  /** Set when the operations go through a running `tally serve`. */
  server?: { pid: number; url: string };
}

export interface AdminOps {
  readonly target: OpsTarget;
  migrate(): Promise<{ applied: string[] }>;

  /** tenant null: a server-wide key (scope admin only). */
  createKey(input: { tenant: string | null; scope: KeyScope; name?: string }): Promise<CreatedKey>;
  listKeys(input: { tenant?: string }): Promise<ApiKeyInfo[]>;
  /**
   * By id (`key_…`) or prefix (`tk_…`), only among the tenant's keys when `tenant` is set (a tenant's
   * admin key); TALLY_NOT_FOUND when no live key matches.
   */
  revokeKey(input: { key: string; tenant?: string }): Promise<{ revoked: string }>;

  listTenants(): Promise<Tenant[]>;
  setTenant(input: { id: string; settings: TenantSettings }): Promise<Tenant>;

  /** Measures and records storage statistics. */
  stats(): Promise<StorageStats>;
  jobs(input: { job?: string; limit?: number }): Promise<JobRun[]>;

  listArchive(input: { tenant?: string }): Promise<ManifestRow[]>;
  runArchive(input: { olderThanDays?: number }, onProgress: Progress): Promise<ArchiveRunResult>;
  restoreArchive(input: { tenant: string; day: string }, onProgress: Progress): Promise<RestoreReport>;
  cleanup(input: { dryRun?: boolean; includeRestored?: boolean }, onProgress: Progress): Promise<CleanupResult>;

  /** Re-ingests a dead-letter or pending spool file (renamed `<file>.replayed-<ms>` first, as the writer does). */
  replay(input: { file: string }, onProgress: Progress): Promise<ReplayResult>;

  /** Events the collector refused, kept in the quarantine. */
  listRejected(input: RejectedFilter & { limit?: number }): Promise<RejectedList>;
  /**
   * Re-checks refused events against the current catalog and tenant settings and stores what now passes,
   * exactly once; `dryRun` only counts.
   */
  replayRejected(input: RejectedFilter & { dryRun?: boolean }, onProgress: Progress): Promise<QuarantineReplayReport>;

  /**
   * Answers a query for one tenant. `query` is untrusted JSON: it is checked here (parseQuery), a mistake
   * is TALLY_BAD_QUERY with `details.path`; an unknown tenant is TALLY_NOT_FOUND.
   */
  query(input: { tenant: string; query: unknown }): Promise<QueryAnswer>;

  /**
   * Recomputes the hourly rollups from the detail rows, a UTC day per transaction (`from`/`to`: ISO dates
   * or times, UTC; default the whole range of detail); a progress line per day.
   */
  rebuildRollups(input: { from?: string; to?: string }, onProgress: Progress): Promise<RebuildResult>;

  /** Releases what the implementation holds (the store, when it opened one). */
  close(): Promise<void>;
}
