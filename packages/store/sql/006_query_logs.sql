-- Indexes of the routes, logs and explore queries (src/query/).

-- The logs query pages a tenant's request logs newest first, whatever the user: keyset-paged on
-- (ts, id), a page is one index range read backwards from the cursor, where the BRIN index on ts alone
-- would sort every row of the range for each page. request_logs_history keeps serving one user's logs.
CREATE INDEX request_logs_tenant_ts ON request_logs (tenant_id, ts DESC, id DESC);

-- The routes query sums a range of hours over all of a tenant's routes: the primary key leads with
-- (method, route), so without this index the range is found by reading every hour the tenant has.
-- Rollup rows are few (one per route and hour), so keeping it costs the writer little.
CREATE INDEX path_stats_hourly_tenant_hour ON path_stats_hourly (tenant_id, hour);
