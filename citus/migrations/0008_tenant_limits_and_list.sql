-- Per-tenant limits over plans, and the platform administrators' list of tenants (issue 24).
--
-- Limits: a plan (services/tenant-service/src/plans.ts) sets max users, storage, requests a minute and concurrent
-- requests; a tenant's own value, where set, wins. max_users and max_storage_gb become overrides (NULL: the plan's),
-- and two overrides join them. Every change here is a catalog change, instant at any size: a nullable column without
-- a default rewrites nothing, dropping NOT NULL or a default checks nothing, and the CHECKs are NOT VALID (a new
-- column holds only NULLs; 0009 validates them without blocking writes). Rows written before keep their max_users
-- and max_storage_gb, now read as overrides: what they were given, they keep.
ALTER TABLE platform.tenants ALTER COLUMN max_users DROP NOT NULL, ALTER COLUMN max_users DROP DEFAULT,
  ALTER COLUMN max_storage_gb DROP NOT NULL, ALTER COLUMN max_storage_gb DROP DEFAULT;
ALTER TABLE platform.tenants ADD COLUMN requests_per_minute integer, ADD COLUMN concurrent_requests integer;
ALTER TABLE platform.tenants ADD CONSTRAINT tenants_requests_per_minute_check CHECK (requests_per_minute > 0) NOT VALID;
ALTER TABLE platform.tenants ADD CONSTRAINT tenants_concurrent_requests_check CHECK (concurrent_requests > 0) NOT VALID;

-- The list: one statement per call, built here so tests and the README can EXPLAIN exactly what runs. Newest first
-- by (created_at, id), a keyset page after (p_after_created, p_after_id). Which index serves which filter (0009):
--   no filter                 tenants_created (created_at DESC, id DESC)
--   status and/or plan        tenants_status_plan_created (status, plan, created_at DESC, id DESC): one ordered
--                             branch per (status, plan) pair, merged (Merge Append), so a filter on one of the two
--                             reads at most limit rows per value of the other: p_statuses and p_plans are the values
--                             the caller knows of, to enumerate the one it does not filter on
--   q (code or name prefix)   tenants_code_pattern (code text_pattern_ops) and tenants_name_pattern
--                             (lower(name) text_pattern_ops), OR-ed: the planner takes the matches by bitmap and sorts
--                             them when they are few, or walks tenants_created and filters when they are many
-- Values are quoted with format(%L) into the text, so every call is planned with them (a LIKE prefix needs its
-- pattern at planning time to become an index range).
CREATE FUNCTION platform.tenant_list_query(p_status text, p_plan text, p_q text, p_after_created timestamptz, p_after_id uuid,
                                           p_limit integer, p_statuses text[], p_plans text[])
  RETURNS text
  LANGUAGE plpgsql IMMUTABLE
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  page text;
  filters text := '';
  branches text[] := '{}';
  s text;
  p text;
  pattern text;
BEGIN
  IF p_limit IS NULL OR p_limit < 1 OR p_limit > 1001 THEN
    RAISE EXCEPTION 'tenant_list_query: limit must be 1 to 1001 (got %)', p_limit;
  END IF;
  IF (p_after_created IS NULL) <> (p_after_id IS NULL) THEN
    RAISE EXCEPTION 'tenant_list_query: a page starts after both a created_at and an id, or neither';
  END IF;
  page := format(' ORDER BY created_at DESC, id DESC LIMIT %s', p_limit);
  IF p_after_created IS NOT NULL THEN
    filters := format(' AND (created_at, id) < (%L::timestamptz, %L::uuid)', p_after_created, p_after_id);
  END IF;
  IF p_q IS NOT NULL THEN
    -- Codes are lowercase (CHECK), names are compared lowercased; LIKE's own characters in q are literal.
    pattern := replace(replace(replace(lower(p_q), '\', '\\'), '%', '\%'), '_', '\_') || '%';
    filters := filters || format(' AND (code LIKE %L OR lower(name) LIKE %L)', pattern, pattern);
  END IF;
  IF p_q IS NOT NULL OR (p_status IS NULL AND p_plan IS NULL) THEN
    IF p_status IS NOT NULL THEN filters := filters || format(' AND status = %L', p_status); END IF;
    IF p_plan IS NOT NULL THEN filters := filters || format(' AND plan = %L', p_plan); END IF;
    RETURN 'SELECT * FROM platform.tenants WHERE true' || filters || page;
  END IF;
  FOREACH s IN ARRAY CASE WHEN p_status IS NULL THEN p_statuses ELSE ARRAY[p_status] END LOOP
    FOREACH p IN ARRAY CASE WHEN p_plan IS NULL THEN p_plans ELSE ARRAY[p_plan] END LOOP
      branches := branches || format('(SELECT * FROM platform.tenants WHERE status = %L AND plan = %L%s%s)', s, p, filters, page);
    END LOOP;
  END LOOP;
  IF cardinality(branches) = 0 THEN
    RAISE EXCEPTION 'tenant_list_query: with a status or plan filter, pass the statuses and plans to enumerate';
  END IF;
  RETURN 'SELECT * FROM (' || array_to_string(branches, ' UNION ALL ') || ') t' || page;
END
$$;

-- Why SECURITY DEFINER (reviewed; listed in citus/test/migrations.test.ts): under row-level security the planner may
-- use a condition as an index condition only when its operator is leakproof, and LIKE and lower() are not, so for the
-- service role a prefix search scanned all million rows (0.6 s); and the policies' OR of current_setting() tests is
-- estimated to keep about 1% of rows, so plans chose a sort over an ordered index for a filter (0.47 s for suspended
-- tenants). As the owner, whom row-level security exempts (0004), the query is planned on the real numbers. It opens
-- nothing the policies do not: it refuses unless the transaction is a platform administrator's (app.platform_admin,
-- the same setting the platform_admin policy admits), returns only platform.tenants rows, and is executable by the
-- service role alone, search_path pinned.
CREATE FUNCTION platform.list_tenants(p_status text, p_plan text, p_q text, p_after_created timestamptz, p_after_id uuid,
                                      p_limit integer, p_statuses text[], p_plans text[])
  RETURNS SETOF platform.tenants
  LANGUAGE plpgsql STABLE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF current_setting('app.platform_admin', true) IS DISTINCT FROM 'on' THEN
    RAISE EXCEPTION 'platform.list_tenants is for platform administrators only' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN QUERY EXECUTE platform.tenant_list_query(p_status, p_plan, p_q, p_after_created, p_after_id, p_limit, p_statuses, p_plans);
END
$$;

REVOKE ALL ON FUNCTION platform.tenant_list_query(text, text, text, timestamptz, uuid, integer, text[], text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION platform.list_tenants(text, text, text, timestamptz, uuid, integer, text[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION platform.list_tenants(text, text, text, timestamptz, uuid, integer, text[], text[]) TO platform_app;
