-- Tenants by plan and status for the business dashboard, as a function instead of 0005's view.
--
-- On Citus the view failed for the prometheus role: platform.tenants is a reference table, and Citus checks the
-- permission on its shard (tenants_102009) as the user who queries, not as the view's owner ("permission denied for
-- table tenants_102009"). A SECURITY DEFINER function runs its query as its owner, the migration role, on plain
-- PostgreSQL and on Citus alike. It returns counts only: no tenant's row, name or code reaches pg_monitor.
DROP VIEW platform.tenant_counts;

CREATE FUNCTION platform.tenant_counts()
  RETURNS TABLE (plan text, status text, tenants bigint, created_last_hour bigint, created_last_day bigint)
  LANGUAGE sql STABLE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
  SELECT t.plan, t.status, count(*),
         count(*) FILTER (WHERE t.created_at > now() - interval '1 hour'),
         count(*) FILTER (WHERE t.created_at > now() - interval '1 day')
    FROM platform.tenants t
   GROUP BY t.plan, t.status
$$;

REVOKE ALL ON FUNCTION platform.tenant_counts() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION platform.tenant_counts() TO pg_monitor;
