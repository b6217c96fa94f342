-- Entering a tenant and reading its row in one statement (issue 22). At a million tenants with uniform access, nearly
-- every request names a tenant its replica has not cached within TENANT_CACHE_TTL_MS, and the service then read the
-- tenant's row (status, plan, limits) in the request's transaction with a statement of its own, after entering the
-- tenant: about 0.1 ms of the service's CPU and 0.2 ms of the database's per request more than a cached tenant costs
-- (`pnpm bench:tenant-scale`, "CPU/request"). This returns the row from the statement that enters the tenant, which
-- every tenant transaction sends anyway (services/tenant-service/src/db/database.ts).
--
-- SECURITY INVOKER: the row is read as the caller, under row-level security (tenant_self, migration 0002), after
-- enter_tenant (0012) has set app.tenant_id; so a caller reads the row of the tenant it entered and no other, and a
-- fenced tenant is refused (PT001) before anything is read. No row: no such tenant in this database.
CREATE FUNCTION platform.enter_tenant_row(p_tenant uuid)
RETURNS SETOF platform.tenants
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM platform.enter_tenant(p_tenant);
  RETURN QUERY SELECT * FROM platform.tenants t WHERE t.id = p_tenant;
END
$$;
REVOKE ALL ON FUNCTION platform.enter_tenant_row(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION platform.enter_tenant_row(uuid) TO platform_app;
