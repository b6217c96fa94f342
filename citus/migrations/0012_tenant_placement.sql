-- Tenant placement (issue 25): a platform that starts on one PostgreSQL and moves tenants into Citus one at a time
-- runs two databases side by side, and every request must reach the one that holds its tenant's rows.
--
-- 1. The registry. In the home database (the service's DATABASE_URL, where tenants are created), which database holds
--    each tenant's rows. No row: the home database. `tenantctl move` writes it at the cutover; the service and the
--    worker read it with the tenant (repositories/tenants.ts) and route to that database's pool. The table exists in
--    every database the migrations run on, and is only read in the home one.
CREATE TABLE platform.tenant_placements (
  tenant_id  uuid        PRIMARY KEY,
  -- A name the service's configuration knows (DATABASE_URL_<NAME>, citus/src/databases.ts).
  database   text        NOT NULL CHECK (database ~ '^[a-z][a-z0-9_]{0,31}$'),
  placed_at  timestamptz NOT NULL DEFAULT now(),
  -- Bumped by each cutover: a reader can tell a placement it holds is older than the registry's.
  version    integer     NOT NULL DEFAULT 1 CHECK (version > 0)
);

-- 2. The fence. In the database a tenant's rows are leaving (or have left), a row here refuses every transaction that
--    enters that tenant: reads and writes, the service's and the worker's. The service enters a tenant by calling
--    platform.enter_tenant (below) as the first statement of each tenant transaction (db/database.ts), so a replica
--    that still routes a moved tenant to its old database is refused there, by the database, whatever its cache
--    says; it then re-reads the placement and goes to the new one. No cache bound is needed for correctness.
CREATE TABLE platform.tenant_fences (
  tenant_id uuid        PRIMARY KEY,
  reason    text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 200),
  fenced_at timestamptz NOT NULL DEFAULT now()
);

-- Platform-level and small: reference tables on Citus (a copy on every node, so the coordinator reads them locally).
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
    PERFORM create_reference_table('platform.tenant_placements');
    PERFORM create_reference_table('platform.tenant_fences');
  END IF;
END
$$;

-- The service role reads placements when it resolves a tenant (app.tenant_lookup, like the tenants row) and as a
-- platform administrator; it never writes either table: tenantctl does, as the migration role. Fences are read only
-- through enter_tenant.
ALTER TABLE platform.tenant_placements ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_lookup ON platform.tenant_placements FOR SELECT
  USING (current_setting('app.tenant_lookup', true) = 'on' OR current_setting('app.platform_admin', true) = 'on'
         OR tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT ON platform.tenant_placements TO platform_app;
ALTER TABLE platform.tenant_fences ENABLE ROW LEVEL SECURITY;

-- 3. Entering a tenant. Sets the transaction's tenant (app.tenant_id, what the tenant_isolation policies read), takes
--    the tenant's cutover lock in shared mode for the transaction, then refuses if the tenant is fenced here. Setting
--    the tenant here lets the service open a tenant transaction on plain PostgreSQL with this one statement instead
--    of SET LOCAL and this (db/database.ts): entering costs no statement more than before. On Citus the service still
--    sends SET LOCAL first, which alone reaches the workers. tenantctl's cutover fences the tenant, then takes the same lock exclusively (await_tenant_quiet),
--    which waits for every transaction that entered before the fence to end: after that, no write of the tenant can
--    commit in this database, and the final catch-up is complete. The lock is the transaction's own: nothing to
--    release, and a lock held by a stuck request is bounded by the statement timeout.
--
--    The key: class 1413828161 ('TENA') and the tenant id's hash, so it meets no other advisory lock (graphile-worker
--    uses the single-key form). Two tenants sharing a hash only means one's cutover briefly waits on the other's
--    in-flight requests.
--
--    SQLSTATE PT001 (tenant_fenced): the service maps it to a re-read of the placement, then 503 with Retry-After if
--    the tenant is still being cut over. SECURITY DEFINER: the service role cannot read the fences table itself.
CREATE FUNCTION platform.enter_tenant(p_tenant uuid)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  why text;
BEGIN
  IF p_tenant IS NULL THEN
    RAISE EXCEPTION 'enter_tenant needs a tenant id';
  END IF;
  PERFORM set_config('app.tenant_id', p_tenant::text, true);
  PERFORM pg_advisory_xact_lock_shared(1413828161, hashtext(p_tenant::text));
  SELECT reason INTO why FROM platform.tenant_fences WHERE tenant_id = p_tenant;
  IF FOUND THEN
    RAISE EXCEPTION 'tenant % is fenced in this database: %', p_tenant, why
      USING ERRCODE = 'PT001', HINT = 'its placement changed or is changing: read it again from the home database';
  END IF;
END
$$;
REVOKE ALL ON FUNCTION platform.enter_tenant(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION platform.enter_tenant(uuid) TO platform_app;

-- For tenantctl (the migration role): waits until every transaction that entered the tenant has ended, at most
-- lock_timeout (the caller sets it), and holds nothing afterwards.
CREATE FUNCTION platform.await_tenant_quiet(p_tenant uuid)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(1413828161, hashtext(p_tenant::text));
END
$$;
REVOKE ALL ON FUNCTION platform.await_tenant_quiet(uuid) FROM PUBLIC;
