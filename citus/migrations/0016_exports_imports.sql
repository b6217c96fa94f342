-- Tenant export and import (issue 24; services/tenant-service README "Export" and "Import").
--
-- 1. platform.exports: one row per export a tenant (or a platform administrator) asked for. The worker's
--    tenant.export job fills it in: its status, the rows and bytes it wrote per table, where each table's NDJSON
--    object is (a key in the export store, never a URL), and when the objects expire (the bucket's lifecycle deletes
--    them then; GET refuses an expired export). No tenant data: the data is in the objects.
CREATE TABLE platform.exports (
  tenant_id    uuid        NOT NULL,
  id           uuid        NOT NULL DEFAULT gen_random_uuid(),
  status       text        NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
  requested_by text        NOT NULL CHECK (length(requested_by) BETWEEN 1 AND 200),
  request_id   text        CHECK (length(request_id) <= 200),
  requested_at timestamptz NOT NULL DEFAULT now(),
  started_at   timestamptz,
  finished_at  timestamptz,
  -- The store the objects went to (EXPORT_STORE): a GET from a replica configured otherwise says so.
  store        text        NOT NULL CHECK (store IN ('local', 'gcs')),
  -- Per table: {"users": {"rows": 3, "bytes": 512, "key": "tenants/<t>/exports/<id>/users.ndjson"}, ...}
  tables       jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(tables) = 'object'),
  expires_at   timestamptz NOT NULL,
  error        text        CHECK (length(error) <= 2000),
  PRIMARY KEY (tenant_id, id),
  CHECK ((status IN ('done', 'failed')) = (finished_at IS NOT NULL))
);
CREATE INDEX exports_tenant_requested ON platform.exports (tenant_id, requested_at DESC, id DESC);
-- At most one export of a tenant queued or running: each reads every row of the tenant in one long transaction, so a
-- tenant administrator who POSTs in a loop must not queue a copy of the tenant per request. The route answers 409
-- naming the export in progress; this index is the backstop for two requests at once (it includes tenant_id, the
-- distribution column, as a unique index on a distributed table must).
CREATE UNIQUE INDEX exports_one_in_progress ON platform.exports (tenant_id) WHERE status IN ('queued', 'running');

-- 2. platform.import_rows: the client keys an import has applied, per tenant and kind. A row's key is claimed in the
--    transaction that inserts the row, so a file sent again (after a dropped connection, or twice) skips every row
--    already applied, and two imports of the same file at once cannot both apply one row (the primary key makes the
--    second wait for the first, then skip). The users and items tables stay as they are: no import column on the
--    rows every request reads, and a key stays applied after the API edits or deletes its row (a re-run never
--    resurrects a deleted row). It also says which import and which line created each row.
CREATE TABLE platform.import_rows (
  tenant_id   uuid        NOT NULL,
  kind        text        NOT NULL CHECK (kind IN ('user', 'item')),
  import_key  text        NOT NULL CHECK (length(import_key) BETWEEN 1 AND 200),
  entity_id   uuid        NOT NULL,
  import_id   uuid        NOT NULL,
  line        integer     NOT NULL CHECK (line > 0),
  imported_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, kind, import_key)
);

-- Tenant tables: distributed by tenant_id and colocated with users, so a tenant's export record and import keys live
-- on its shard group beside its rows.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
    PERFORM create_distributed_table('platform.exports', 'tenant_id', colocate_with => 'platform.users');
    PERFORM create_distributed_table('platform.import_rows', 'tenant_id', colocate_with => 'platform.users');
  END IF;
END
$$;

ALTER TABLE platform.exports ADD CONSTRAINT exports_tenant_fkey
  FOREIGN KEY (tenant_id) REFERENCES platform.tenants (id) ON DELETE CASCADE;
ALTER TABLE platform.import_rows ADD CONSTRAINT import_rows_tenant_fkey
  FOREIGN KEY (tenant_id) REFERENCES platform.tenants (id) ON DELETE CASCADE;

-- Row-level security as on every tenant table (0002), not FORCEd (0004: a forced policy stops shard moves).
ALTER TABLE platform.exports ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON platform.exports
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
ALTER TABLE platform.import_rows ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON platform.import_rows
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- The service and the worker insert and update export records; only the erasure job deletes them (as 0010 does for
-- the audit log). An import claim is never updated; an import deletes the claim of a row it could not apply, so a
-- corrected file applies it, and the erasure deletes the rest.
GRANT SELECT, INSERT, UPDATE, DELETE ON platform.exports TO platform_app;
GRANT SELECT, INSERT, DELETE ON platform.import_rows TO platform_app;
CREATE POLICY erasure_only ON platform.exports AS RESTRICTIVE FOR DELETE
  USING (current_setting('app.tenant_erasure', true) = 'on');
