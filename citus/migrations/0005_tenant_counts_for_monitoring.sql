-- Tenants by plan and status, for the business dashboard (monitoring/src/exporter-queries.ts, platform_tenants).
--
-- postgres_exporter connects as the prometheus role, a member of pg_monitor and of nothing else: it may not read
-- platform.tenants, and row-level security would show it no rows if it could. This view is owned by the migration
-- role, the tables' owner, which row-level security does not filter (0004): pg_monitor reads the counts through it,
-- and no tenant's row, name or code. A few rows: four plans times two statuses.
CREATE VIEW platform.tenant_counts AS
  SELECT plan, status, count(*) AS tenants,
         count(*) FILTER (WHERE created_at > now() - interval '1 hour') AS created_last_hour,
         count(*) FILTER (WHERE created_at > now() - interval '1 day') AS created_last_day
    FROM platform.tenants
   GROUP BY plan, status;

GRANT USAGE ON SCHEMA platform TO pg_monitor;
GRANT SELECT ON platform.tenant_counts TO pg_monitor;
