-- A new tenant's placement (issue 24): the provisioning job records that a tenant created in the home database is
-- placed there, so the registry (platform.tenant_placements, migration 0012) names every tenant, not only the moved
-- ones. The service role only reads the registry; tenantctl, as the migration role, writes it. This function is the
-- one write the service role may make: a row for a tenant that has none, naming the database the tenant row is in.
--
-- Idempotent: a rerun, or a row written meanwhile by tenantctl (a tenant moved before its provisioning job ran),
-- leaves the row as it is. Returns the tenant's placement after the call, or NULL where no such tenant exists in this
-- database (then nothing is written: the registry never names a tenant it does not hold).
--
-- SECURITY DEFINER, owned by the migration role (the registry's owner); `p_database` is never the caller's: it is
-- always 'home', the database tenants are created in (citus/src/databases.ts HOME_DATABASE).
CREATE FUNCTION platform.place_new_tenant(p_tenant uuid)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  placed text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM platform.tenants WHERE id = p_tenant) THEN
    RETURN NULL;
  END IF;
  INSERT INTO platform.tenant_placements (tenant_id, database) VALUES (p_tenant, 'home')
    ON CONFLICT (tenant_id) DO NOTHING;
  SELECT database INTO placed FROM platform.tenant_placements WHERE tenant_id = p_tenant;
  RETURN placed;
END
$$;
REVOKE ALL ON FUNCTION platform.place_new_tenant(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION platform.place_new_tenant(uuid) TO platform_app;
