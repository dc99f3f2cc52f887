-- What the query engine reads besides detail: a rollup of chosen top-level properties, the list of
-- what that rollup covers, and an index that funnels and retention read without visiting the table.

-- One row per (tenant, event name, top-level property key, its value as text, UTC hour): the count of
-- events whose property was a JSON string, number or boolean (`properties->>key`). Only the (name, key)
-- pairs in rollup_dimensions are kept, fed like event_counts_hourly from the rows an insert really
-- returned, in the same transaction. `hour` before `value` in the key: a range of hours of one property
-- is one index range, whatever its values.
CREATE TABLE event_props_hourly (
  tenant_id  text NOT NULL,
  name       text NOT NULL,
  key        text NOT NULL,
  value      text NOT NULL,
  hour       timestamptz NOT NULL,
  count      bigint NOT NULL,
  PRIMARY KEY (tenant_id, name, key, hour, value)
);

-- The (event name, property key) pairs the writers roll up, and from which hour on event_props_hourly
-- holds every stored event of the pair: the start of the hour after the pair was first registered
-- (earlier hours hold only what arrived since), or '-infinity' once a full rebuild from detail filled
-- them in. Hours before `complete_from` are answered from detail.
CREATE TABLE rollup_dimensions (
  name           text NOT NULL,
  key            text NOT NULL,
  complete_from  timestamptz NOT NULL,
  PRIMARY KEY (name, key)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON event_props_hourly, rollup_dimensions TO tally_service;
GRANT SELECT ON event_props_hourly, rollup_dimensions TO tally_tenant;

ALTER TABLE event_props_hourly ENABLE ROW LEVEL SECURITY;
CREATE POLICY service_all ON event_props_hourly FOR ALL TO tally_service USING (true) WITH CHECK (true);
CREATE POLICY tenant_read ON event_props_hourly FOR SELECT TO tally_tenant
  USING (tenant_id = current_setting('tally.tenant_id', true));

-- Covering: a funnel or a retention grid reads (user, anonymous id, time) of a tenant's events of a few
-- names, which an index-only scan answers from this index alone. Ascending: a scan newest first walks
-- it backwards.
DROP INDEX events_tenant_name_ts;
CREATE INDEX events_tenant_name_ts ON events (tenant_id, name, ts) INCLUDE (user_id, anonymous_id);
