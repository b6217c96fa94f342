-- Tenant erasure (issue 24): DELETE /v1/tenants/{t} marks a tenant `deleting`, and after a grace period the worker's
-- tenant.erase job removes every row of it, in short batches, then the tenant itself
-- (services/tenant-service/src/worker/erasure.ts; README "Erasure").
--
-- 1. A third status. The column's CHECK is replaced by a wider one, NOT VALID so that adding it scans nothing under
--    its lock (every existing row passes the old, narrower one); 0011 validates it without blocking writes.
ALTER TABLE platform.tenants DROP CONSTRAINT tenants_status_check;
ALTER TABLE platform.tenants ADD CONSTRAINT tenants_status_check CHECK (status IN ('active', 'suspended', 'deleting')) NOT VALID;

-- 2. The platform's record of each erasure request: who asked, when, whether it was cancelled (by whom, when), when
--    the rows went and how many per table. It outlives the tenant and holds none of its data: the tenant's id, but
--    not its code, name, users or anything else. Requests and cancellations are recorded here rather than in the
--    tenant's audit log, which the erasure removes. One open (not cancelled) request per tenant.
CREATE TABLE platform.tenant_erasures (
  id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id         uuid        NOT NULL,
  -- What a cancellation gives the tenant back.
  previous_status   text        NOT NULL CHECK (previous_status IN ('active', 'suspended')),
  requested_by      text        NOT NULL CHECK (length(requested_by) BETWEEN 1 AND 200),
  requested_at      timestamptz NOT NULL DEFAULT now(),
  request_id        text        CHECK (length(request_id) <= 200),
  erase_after       timestamptz NOT NULL,
  cancelled_by      text        CHECK (length(cancelled_by) BETWEEN 1 AND 200),
  cancelled_at      timestamptz,
  cancel_request_id text        CHECK (length(cancel_request_id) <= 200),
  started_at        timestamptz,
  erased_at         timestamptz,
  -- Rows removed so far, by table name; each batch adds its count in the transaction that deletes the rows.
  row_counts        jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(row_counts) = 'object'),
  CHECK ((cancelled_by IS NULL) = (cancelled_at IS NULL)),
  CHECK (cancelled_at IS NULL OR (started_at IS NULL AND erased_at IS NULL)),
  CHECK (erased_at IS NULL OR started_at IS NOT NULL)
);
CREATE UNIQUE INDEX tenant_erasures_open ON platform.tenant_erasures (tenant_id) WHERE cancelled_at IS NULL;
CREATE INDEX tenant_erasures_tenant ON platform.tenant_erasures (tenant_id, requested_at DESC);

-- Platform-level, like tenants: a reference table on Citus (a copy on every node; written rarely).
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
    PERFORM create_reference_table('platform.tenant_erasures');
  END IF;
END
$$;

-- No tenant reads or writes it: a platform administrator's transaction (the API), or the erasure job's own
-- transaction for that one tenant (app.tenant_erasure, which only src/worker/erasure.ts sets).
ALTER TABLE platform.tenant_erasures ENABLE ROW LEVEL SECURITY;
CREATE POLICY platform_admin ON platform.tenant_erasures
  USING (current_setting('app.platform_admin', true) = 'on')
  WITH CHECK (current_setting('app.platform_admin', true) = 'on');
CREATE POLICY erasure_job ON platform.tenant_erasures
  USING (current_setting('app.tenant_erasure', true) = 'on' AND tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (current_setting('app.tenant_erasure', true) = 'on' AND tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE ON platform.tenant_erasures TO platform_app;

-- 3. The erasure deletes in the tenant's own context (app.tenant_id), so the tenant_isolation policies bound it as
--    they bound every request. The service role could not delete from these three tables until now: the audit log is
--    append-only, metrics and the tenant row are kept. They stay so for every transaction but the erasure job's:
--    a RESTRICTIVE policy is AND-ed with the permissive ones, so a DELETE also needs app.tenant_erasure (and, for the
--    tenant row, the status `deleting` that only DELETE /v1/tenants/{t} sets).
GRANT DELETE ON platform.tenants, platform.audit_log, platform.tenant_metrics TO platform_app;
CREATE POLICY erasure_only ON platform.audit_log AS RESTRICTIVE FOR DELETE
  USING (current_setting('app.tenant_erasure', true) = 'on');
CREATE POLICY erasure_only ON platform.tenant_metrics AS RESTRICTIVE FOR DELETE
  USING (current_setting('app.tenant_erasure', true) = 'on');
CREATE POLICY erasure_only ON platform.tenants AS RESTRICTIVE FOR DELETE
  USING (current_setting('app.tenant_erasure', true) = 'on' AND status = 'deleting');
