-- Lifecycle jobs: their runs, the archive manifest, storage statistics and hot-path snapshots.

CREATE TABLE job_runs (
  id           bigserial PRIMARY KEY,
  job          text NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  -- running | ok | failed | skipped (another process held the job's lock)
  outcome      text NOT NULL DEFAULT 'running',
  counts       jsonb NOT NULL DEFAULT '{}',
  error        text
);
CREATE INDEX job_runs_job_started ON job_runs (job, started_at DESC);

-- One row per archive file: a (tenant, table, UTC day) may have several parts when late rows arrive
-- after the day was archived and cleaned. Cleanup deletes exactly the ids in a verified file.
CREATE TABLE archive_metadata (
  tenant_id    text NOT NULL,
  table_name   text NOT NULL CHECK (table_name IN ('events', 'request_logs')),
  day          date NOT NULL,
  part         integer NOT NULL,
  key          text NOT NULL,
  location     text NOT NULL,
  rows         bigint NOT NULL,
  min_ts       timestamptz NOT NULL,
  max_ts       timestamptz NOT NULL,
  bytes        bigint NOT NULL,
  raw_bytes    bigint NOT NULL,
  sha256       text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  cleaned_at   timestamptz,
  restored_at  timestamptz,
  PRIMARY KEY (tenant_id, table_name, day, part)
);

CREATE TABLE storage_stats (
  taken_at  timestamptz PRIMARY KEY DEFAULT now(),
  stats     jsonb NOT NULL
);

CREATE TABLE snapshots (
  version     bigserial PRIMARY KEY,
  created_at  timestamptz NOT NULL DEFAULT now(),
  body        jsonb NOT NULL
);

GRANT SELECT, INSERT, UPDATE, DELETE ON job_runs, archive_metadata, storage_stats, snapshots TO tally_service;
