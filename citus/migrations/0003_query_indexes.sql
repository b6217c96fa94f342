-- Indexes for the service's filtered reads. Each leads with tenant_id: on Citus every shard holds many tenants,
-- and a tenant's rows must be found without scanning its neighbours'.
--
-- Not here, on purpose: a "recent audit entries" partial index (WHERE occurred_at > now() - interval '30 days') is
-- invalid, since an index predicate must be immutable; monthly partitions already confine such scans.

-- Active users by email (login, invitations); disabled users are rare and excluded.
CREATE INDEX users_tenant_active_email ON platform.users (tenant_id, lower(email)) WHERE status = 'active';

-- Audit entries by action, newest first (e.g. "who deleted items this week").
CREATE INDEX audit_log_tenant_action ON platform.audit_log (tenant_id, action, occurred_at DESC);

-- Containment queries on audit details (details @> '{"code": "acme"}').
CREATE INDEX audit_log_details ON platform.audit_log USING gin (details jsonb_path_ops);

-- Suspended tenants, for the platform's periodic review; a handful of rows out of millions.
CREATE INDEX tenants_suspended ON platform.tenants (updated_at) WHERE status = 'suspended';
