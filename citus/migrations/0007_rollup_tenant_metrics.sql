-- The daily metrics rollup, one statement per batch of tenants instead of one transaction per tenant.
--
-- Why: at a million tenants the worker's rollup ran a router transaction per tenant (two round trips and four
-- counts each): about 130 tenants a second on the 2-core build machine, so a day's rollup would take hours. Counting
-- a batch's tenants at once, grouped by tenant_id, is one pushed-down query per table (on Citus: per shard the batch
-- touches, pruned by tenant_id = ANY).
--
-- Why SECURITY DEFINER (reviewed; listed in citus/test/migrations.test.ts): the service role sees one tenant per
-- transaction under row-level security, and this reads many. It runs as the owner, the migration role, which row-level
-- security exempts (0004). What it may do is narrow: it writes only tenant_metrics, only counts, only for the
-- tenants it is given that exist, and returns only how many rows it wrote. No tenant's data reaches the caller.
-- Executable by the service role alone (the worker runs as it), search_path pinned.
--
-- A tenant whose row for the day was computed after the day ended is final and left alone, so a batch retried
-- after a crash computes only the tenants it had not finished.
CREATE FUNCTION platform.rollup_tenant_metrics(p_day date, p_tenants uuid[])
  RETURNS integer
  LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  written integer;
BEGIN
  IF p_day IS NULL OR p_tenants IS NULL THEN
    RAISE EXCEPTION 'rollup_tenant_metrics needs a day and an array of tenant ids';
  END IF;
  IF cardinality(p_tenants) > 10000 THEN
    RAISE EXCEPTION 'rollup_tenant_metrics takes at most 10000 tenants a call (got %): split the batch', cardinality(p_tenants);
  END IF;
  INSERT INTO platform.tenant_metrics AS m (tenant_id, day, users, items, storage_bytes, writes, computed_at)
  SELECT t.id, p_day, coalesce(u.n, 0), coalesce(i.n, 0), coalesce(i.bytes, 0), coalesce(a.n, 0), now()
    FROM platform.tenants t
    LEFT JOIN (SELECT tenant_id FROM platform.tenant_metrics
                WHERE day = p_day AND tenant_id = ANY (p_tenants)
                  AND computed_at >= (p_day + 1)::timestamp AT TIME ZONE 'UTC') final ON final.tenant_id = t.id
    LEFT JOIN (SELECT tenant_id, count(*) AS n FROM platform.users
                WHERE tenant_id = ANY (p_tenants) GROUP BY tenant_id) u ON u.tenant_id = t.id
    LEFT JOIN (SELECT tenant_id, count(*) AS n, sum(size_bytes) AS bytes FROM platform.items
                WHERE tenant_id = ANY (p_tenants) GROUP BY tenant_id) i ON i.tenant_id = t.id
    LEFT JOIN (SELECT tenant_id, count(*) AS n FROM platform.audit_log
                WHERE tenant_id = ANY (p_tenants) AND occurred_at >= p_day AND occurred_at < p_day + 1
                GROUP BY tenant_id) a ON a.tenant_id = t.id
   WHERE t.id = ANY (p_tenants) AND final.tenant_id IS NULL
  ON CONFLICT (tenant_id, day) DO UPDATE SET users = EXCLUDED.users, items = EXCLUDED.items,
    storage_bytes = EXCLUDED.storage_bytes, writes = EXCLUDED.writes, computed_at = EXCLUDED.computed_at;
  GET DIAGNOSTICS written = ROW_COUNT;
  RETURN written;
END
$$;

REVOKE ALL ON FUNCTION platform.rollup_tenant_metrics(date, uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION platform.rollup_tenant_metrics(date, uuid[]) TO platform_app;
