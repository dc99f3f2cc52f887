-- Per-tenant overrides of the collector's defaults; NULL means "the server's setting".
ALTER TABLE tenants ADD COLUMN accept_unlisted boolean;
ALTER TABLE tenants ADD COLUMN rate_limit integer CHECK (rate_limit IS NULL OR rate_limit >= 0);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);
