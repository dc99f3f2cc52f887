-- Keys have scopes: `write` (ingest only: safe to ship inside apps), `read` (the tenant's analytics and
-- request history), `admin` (keys, tenants, jobs, quarantine). Existing keys were write keys. An admin
-- key without a tenant is server-wide; every other key belongs to one tenant.
ALTER TABLE api_keys ADD COLUMN scope text NOT NULL DEFAULT 'write' CHECK (scope IN ('write', 'read', 'admin'));
ALTER TABLE api_keys ALTER COLUMN tenant_id DROP NOT NULL;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_tenant_or_admin CHECK (tenant_id IS NOT NULL OR scope = 'admin');

-- Per-tenant policy for properties the catalog does not declare; NULL: the server's `--unplanned`.
ALTER TABLE tenants ADD COLUMN unplanned text CHECK (unplanned IN ('reject', 'allow', 'strip'));

-- Events the collector refused one by one, kept so that nothing refused is lost: `tally rejected list`
-- shows them, `tally rejected replay` re-checks them against the current catalog and stores what now
-- passes. `item` is the candidate envelope in Tally's shape (Segment and PostHog messages already
-- translated), capped in size (`truncated`: it cannot be replayed). The key (tenant, event id) makes a
-- resent batch quarantine each refused event once; an event without a usable id gets one derived from
-- its content. `sent_at` and `received_at` let a replay judge the event's clock as the collector did.
CREATE TABLE quarantine (
  tenant_id    text NOT NULL,
  event_id     uuid NOT NULL,
  seq          bigserial NOT NULL,
  name         text,
  code         text NOT NULL,
  message      text NOT NULL,
  item         text NOT NULL,
  truncated    boolean NOT NULL DEFAULT false,
  source       text NOT NULL,
  key_id       text,
  sent_at      text,
  received_at  timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, event_id)
);
-- Listing newest first and trimming the oldest beyond a tenant's cap both walk this one.
CREATE INDEX quarantine_tenant_seq ON quarantine (tenant_id, seq);

GRANT SELECT, INSERT, UPDATE, DELETE ON quarantine TO tally_service;
GRANT USAGE ON SEQUENCE quarantine_seq_seq TO tally_service;
ALTER TABLE quarantine ENABLE ROW LEVEL SECURITY;
CREATE POLICY service_all ON quarantine FOR ALL TO tally_service USING (true) WITH CHECK (true);
CREATE POLICY tenant_read ON quarantine FOR SELECT TO tally_tenant
  USING (tenant_id = current_setting('tally.tenant_id', true));
GRANT SELECT ON quarantine TO tally_tenant;
