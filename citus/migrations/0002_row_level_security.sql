-- Row-level security: the second wall behind the service's explicit tenant predicates.
--
-- The service runs every request in a transaction that first sends, each as its own statement,
--   SET LOCAL app.tenant_id = '<uuid>'         (and, for platform-admin tenant management, app.platform_admin = 'on')
-- With citus.propagate_set_commands = 'local' Citus forwards SET LOCAL to the workers it opens in that transaction,
-- so the policies see the same value in router queries (evaluated on a worker) and multi-shard queries. set_config()
-- is not forwarded, and a multi-statement string is forwarded whole and fails on the workers: neither is used.
--
-- Outside such a transaction app.tenant_id is unset or '' and NULLIF(...)::uuid is NULL: no rows, and no writes.
-- FORCE makes the policies apply to the tables' owner too.

ALTER TABLE platform.tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform.tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_self ON platform.tenants
  USING (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
-- Platform administrators create and manage tenants; resolving a tenant code to its id before a tenant context
-- exists is a read-only lookup the service does with app.tenant_lookup = 'on'.
CREATE POLICY platform_admin ON platform.tenants
  USING (current_setting('app.platform_admin', true) = 'on')
  WITH CHECK (current_setting('app.platform_admin', true) = 'on');
CREATE POLICY tenant_lookup ON platform.tenants FOR SELECT
  USING (current_setting('app.tenant_lookup', true) = 'on');

ALTER TABLE platform.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform.users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON platform.users
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE platform.items ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform.items FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON platform.items
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE platform.audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform.audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON platform.audit_log
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE platform.tenant_metrics ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform.tenant_metrics FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON platform.tenant_metrics
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
