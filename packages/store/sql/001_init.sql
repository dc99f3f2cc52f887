-- Tally schema, version 1. Plain Postgres SQL that runs unchanged on PGlite and on a Postgres server.
-- Unqualified names: the store sets search_path, so one database can hold many isolated schemas.

CREATE TABLE tenants (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Write keys are stored as SHA-256 hashes: a leaked database does not leak usable keys.
CREATE TABLE api_keys (
  id          text PRIMARY KEY,
  tenant_id   text NOT NULL REFERENCES tenants (id),
  key_hash    text NOT NULL UNIQUE,
  prefix      text NOT NULL,
  name        text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);

-- Detail events. The UUIDv7 id is the primary key: time-ordered (cheap to index, FACTS.md: 41k vs 33k
-- rows/s for v4) and the idempotency key of every insert. Not partitioned (see README "Storage").
CREATE TABLE events (
  id            uuid PRIMARY KEY,
  tenant_id     text NOT NULL,
  name          text NOT NULL,
  user_id       text,
  anonymous_id  text,
  properties    jsonb NOT NULL,
  context       jsonb NOT NULL,
  ts            timestamptz NOT NULL,
  received_at   timestamptz NOT NULL
);
CREATE INDEX events_tenant_name_ts ON events (tenant_id, name, ts DESC);
CREATE INDEX events_tenant_user_ts ON events (tenant_id, user_id, ts DESC) WHERE user_id IS NOT NULL;
-- Time-range scans (archive, "last hour of a tenant") use BRIN: nearly free to maintain for ordered ids.
CREATE INDEX events_ts_brin ON events USING brin (ts);

CREATE TABLE request_logs (
  id              uuid PRIMARY KEY,
  tenant_id       text NOT NULL,
  request_id      text,
  method          text NOT NULL,
  route           text,
  url             text NOT NULL,
  status          integer NOT NULL,
  duration_ms     double precision NOT NULL,
  request_bytes   integer,
  response_bytes  integer,
  user_id         text,
  api_key_id      text,
  ip              text,
  user_agent      text,
  headers         jsonb,
  request_body    text,
  response_body   text,
  body_truncated  boolean NOT NULL DEFAULT false,
  stream_body     text,
  aborted         boolean NOT NULL DEFAULT false,
  error           text,
  ts              timestamptz NOT NULL,
  received_at     timestamptz NOT NULL
);
-- The history API: a user's own requests, newest first, keyset-paged on (ts, id).
CREATE INDEX request_logs_history ON request_logs (tenant_id, user_id, ts DESC, id DESC);
CREATE INDEX request_logs_ts_brin ON request_logs USING brin (ts);

-- Rollups are kept forever and only ever fed from rows an insert really returned, in the same
-- statement, so SUM(count) always equals COUNT(*) of the detail they summarize.
CREATE TABLE event_counts_hourly (
  tenant_id  text NOT NULL,
  name       text NOT NULL,
  hour       timestamptz NOT NULL,
  count      bigint NOT NULL,
  -- Σ 1/sampleRate: the estimated true count of sampled events.
  weighted   double precision NOT NULL,
  PRIMARY KEY (tenant_id, name, hour)
);

-- Latency histogram buckets (upper bounds, ms): 1 2 5 10 25 50 100 250 500 1000 2500 5000 10000 30000 60000 +inf.
-- Fixed buckets merge by addition, so p50/p95/p99 over any range of hours are exact to a bucket.
CREATE TABLE path_stats_hourly (
  tenant_id     text NOT NULL,
  method        text NOT NULL,
  route         text NOT NULL,
  hour          timestamptz NOT NULL,
  count         bigint NOT NULL,
  status_2xx    bigint NOT NULL,
  status_3xx    bigint NOT NULL,
  status_4xx    bigint NOT NULL,
  status_5xx    bigint NOT NULL,
  duration_sum  double precision NOT NULL,
  duration_min  double precision NOT NULL,
  duration_max  double precision NOT NULL,
  latency_buckets bigint[] NOT NULL,
  PRIMARY KEY (tenant_id, method, route, hour)
);

-- Dead letters: one row per event the writer could not store for good (the JSONL spool holds the payload).
CREATE TABLE dead_letters (
  event_id    uuid NOT NULL,
  tenant_id   text,
  kind        text NOT NULL,
  code        text NOT NULL,
  reason      text NOT NULL,
  file        text NOT NULL,
  first_seen  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (event_id, kind)
);

-- Row-level security: a service role writes; a tenant role reads only rows of the tenant named by the
-- session setting `tally.tenant_id`. Roles are cluster-wide, so they are created once and reused. Only
-- when missing: CREATE ROLE asks for CREATEROLE before it looks for the name, and a database owner on
-- managed Postgres rarely has it. The handler covers two databases migrating at the same moment.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tally_service') THEN
    BEGIN
      CREATE ROLE tally_service NOLOGIN;
    EXCEPTION WHEN duplicate_object THEN NULL;
    END;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tally_tenant') THEN
    BEGIN
      CREATE ROLE tally_tenant NOLOGIN;
    EXCEPTION WHEN duplicate_object THEN NULL;
    END;
  END IF;
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO tally_service, tally_tenant', current_schema());
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, api_keys, events, request_logs, event_counts_hourly,
  path_stats_hourly, dead_letters TO tally_service;
GRANT SELECT ON events, request_logs, event_counts_hourly, path_stats_hourly TO tally_tenant;

ALTER TABLE events ENABLE ROW LEVEL SECURITY;
ALTER TABLE request_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE event_counts_hourly ENABLE ROW LEVEL SECURITY;
ALTER TABLE path_stats_hourly ENABLE ROW LEVEL SECURITY;

CREATE POLICY service_all ON events FOR ALL TO tally_service USING (true) WITH CHECK (true);
CREATE POLICY service_all ON request_logs FOR ALL TO tally_service USING (true) WITH CHECK (true);
CREATE POLICY service_all ON event_counts_hourly FOR ALL TO tally_service USING (true) WITH CHECK (true);
CREATE POLICY service_all ON path_stats_hourly FOR ALL TO tally_service USING (true) WITH CHECK (true);

CREATE POLICY tenant_read ON events FOR SELECT TO tally_tenant
  USING (tenant_id = current_setting('tally.tenant_id', true));
CREATE POLICY tenant_read ON request_logs FOR SELECT TO tally_tenant
  USING (tenant_id = current_setting('tally.tenant_id', true));
CREATE POLICY tenant_read ON event_counts_hourly FOR SELECT TO tally_tenant
  USING (tenant_id = current_setting('tally.tenant_id', true));
CREATE POLICY tenant_read ON path_stats_hourly FOR SELECT TO tally_tenant
  USING (tenant_id = current_setting('tally.tenant_id', true));
