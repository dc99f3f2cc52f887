-- The logs query (src/query/logs.ts) pages a tenant's request logs newest first, whatever the user:
-- keyset-paged on (ts, id), a page is one index range read backwards from the cursor, where the BRIN
-- index on ts alone would sort every row of the range for each page. request_logs_history keeps serving
-- one user's requests.
CREATE INDEX request_logs_tenant_ts ON request_logs (tenant_id, ts DESC, id DESC);
