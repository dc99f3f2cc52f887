-- Who did what, per UTC hour: what retention reads instead of every return event of its range.

-- One row per (tenant, event name, UTC hour, user key) for each user key (coalesce(user_id,
-- anonymous_id)) that did the event in that hour; events with neither id are not in it. Presence only, so
-- an insert adds what is missing and a resent row changes nothing. Fed like event_counts_hourly from the
-- rows an insert really returned, in the same transaction.
CREATE TABLE user_activity_hourly (
  tenant_id  text NOT NULL,
  name       text NOT NULL,
  hour       timestamptz NOT NULL,
  user_key   text NOT NULL,
  PRIMARY KEY (tenant_id, name, hour, user_key)
);

-- From when a rollup holds every stored event: hours from `complete_from` on are complete, earlier ones
-- hold only what was stored since the rollup began. '-infinity' when nothing was stored before it began
-- (or once a full rebuild from detail filled it in).
CREATE TABLE rollup_coverage (
  rollup         text PRIMARY KEY,
  complete_from  timestamptz NOT NULL
);

-- Events stored before this migration are not in user_activity_hourly until a rebuild; writers running
-- the code before it may still store events in the current hour, so it is complete from the next one.
INSERT INTO rollup_coverage (rollup, complete_from)
SELECT 'user_activity_hourly',
       CASE WHEN EXISTS (SELECT 1 FROM events) THEN date_trunc('hour', now(), 'UTC') + interval '1 hour'
            ELSE '-infinity'::timestamptz END;

GRANT SELECT, INSERT, UPDATE, DELETE ON user_activity_hourly, rollup_coverage TO tally_service;
GRANT SELECT ON user_activity_hourly, rollup_coverage TO tally_tenant;

ALTER TABLE user_activity_hourly ENABLE ROW LEVEL SECURITY;
CREATE POLICY service_all ON user_activity_hourly FOR ALL TO tally_service USING (true) WITH CHECK (true);
CREATE POLICY tenant_read ON user_activity_hourly FOR SELECT TO tally_tenant
  USING (tenant_id = current_setting('tally.tenant_id', true));
