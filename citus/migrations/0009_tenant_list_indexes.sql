-- migrate:no-transaction
-- The indexes that keep GET /v1/tenants (platform.list_tenants, 0008) fast at a million tenants, each built
-- CONCURRENTLY: platform.tenants is read by nearly every request (the tenant lookup), so a blocking build would stall
-- the service for as long as it takes. On Citus tenants is a reference table: Citus builds each index concurrently on
-- every node's placement. Which index serves which filter: 0008 and services/tenant-service/README.md.
--
-- Each statement runs on its own. A build that fails leaves an INVALID index that IF NOT EXISTS would then skip, so
-- the last statement refuses to record this migration while any of them is invalid: drop that one
-- (DROP INDEX CONCURRENTLY platform.<name>) and run the migration again.
CREATE INDEX CONCURRENTLY IF NOT EXISTS tenants_created ON platform.tenants (created_at DESC, id DESC);
CREATE INDEX CONCURRENTLY IF NOT EXISTS tenants_status_plan_created ON platform.tenants (status, plan, created_at DESC, id DESC);
CREATE INDEX CONCURRENTLY IF NOT EXISTS tenants_code_pattern ON platform.tenants (code text_pattern_ops);
CREATE INDEX CONCURRENTLY IF NOT EXISTS tenants_name_pattern ON platform.tenants (lower(name) text_pattern_ops);

-- 0008's CHECKs, NOT VALID there so that adding them scanned nothing under its lock; validating takes a lock that
-- lets reads and writes go on.
ALTER TABLE platform.tenants VALIDATE CONSTRAINT tenants_requests_per_minute_check;
ALTER TABLE platform.tenants VALIDATE CONSTRAINT tenants_concurrent_requests_check;

DO $$
DECLARE
  invalid text;
BEGIN
  SELECT string_agg(c.relname, ', ') INTO invalid
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
   WHERE i.indrelid = 'platform.tenants'::regclass AND NOT i.indisvalid
     AND c.relname IN ('tenants_created', 'tenants_status_plan_created', 'tenants_code_pattern', 'tenants_name_pattern');
  IF invalid IS NOT NULL THEN
    RAISE EXCEPTION 'invalid index(es) on platform.tenants from an interrupted build: %', invalid
      USING HINT = 'DROP INDEX CONCURRENTLY each of them, then run the migration again';
  END IF;
END
$$;
