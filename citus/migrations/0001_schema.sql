-- The tenant data model. Runs unchanged on plain PostgreSQL 15 (one node) and on Citus 13, where tenants becomes a
-- reference table and every tenant table is distributed by tenant_id and colocated, so a tenant's rows live on one
-- shard group and every query that names the tenant is routed to a single worker.
--
-- Tables are owned by the role running the migrations (platform_migrator on a cluster); the service's role,
-- platform_app, gets DML grants only and is subject to row-level security (0002).

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'platform_app') THEN
    RAISE EXCEPTION 'role platform_app does not exist'
      USING HINT = 'Create it first (the Citus bootstrap does; on a single node: CREATE ROLE platform_app LOGIN PASSWORD ''...''): the service connects as this role.';
  END IF;
END
$$;

CREATE SCHEMA platform;

CREATE TABLE platform.tenants (
  id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  code           text        NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
  name           text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  status         text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  plan           text        NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'starter', 'business', 'enterprise')),
  max_users      integer     NOT NULL DEFAULT 10 CHECK (max_users > 0),
  max_storage_gb integer     NOT NULL DEFAULT 1 CHECK (max_storage_gb > 0),
  features       jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(features) = 'object'),
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE platform.users (
  tenant_id    uuid        NOT NULL,
  id           uuid        NOT NULL DEFAULT gen_random_uuid(),
  email        text        NOT NULL CHECK (length(email) <= 320 AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
  display_name text        NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
  role         text        NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'member')),
  status       text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
-- Unique per tenant, case-insensitively; the distribution column leads, as Citus requires of unique indexes.
CREATE UNIQUE INDEX users_tenant_email_key ON platform.users (tenant_id, lower(email));
CREATE INDEX users_tenant_created ON platform.users (tenant_id, created_at DESC, id DESC);

CREATE TABLE platform.items (
  tenant_id  uuid        NOT NULL,
  id         uuid        NOT NULL DEFAULT gen_random_uuid(),
  owner_id   uuid        NOT NULL,
  title      text        NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
  body       text        NOT NULL DEFAULT '' CHECK (length(body) <= 100000),
  tags       text[]      NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 50),
  size_bytes bigint      GENERATED ALWAYS AS (octet_length(title) + octet_length(body)) STORED,
  search     tsvector    GENERATED ALWAYS AS (to_tsvector('simple', title || ' ' || body)) STORED,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX items_tenant_created ON platform.items (tenant_id, created_at DESC, id DESC);
CREATE INDEX items_tenant_owner ON platform.items (tenant_id, owner_id, created_at DESC, id DESC);
CREATE INDEX items_search ON platform.items USING gin (search);
CREATE INDEX items_tags ON platform.items USING gin (tags);

-- Append-only for the service; monthly partitions, created ahead and dropped for retention by the worker.
CREATE TABLE platform.audit_log (
  tenant_id   uuid        NOT NULL,
  id          uuid        NOT NULL DEFAULT gen_random_uuid(),
  occurred_at timestamptz NOT NULL DEFAULT now(),
  actor       text        NOT NULL,
  action      text        NOT NULL,
  entity_type text        NOT NULL,
  entity_id   uuid,
  request_id  text,
  details     jsonb       NOT NULL DEFAULT '{}',
  PRIMARY KEY (tenant_id, occurred_at, id)
) PARTITION BY RANGE (occurred_at);
CREATE INDEX audit_log_tenant_entity ON platform.audit_log (tenant_id, entity_type, entity_id);

CREATE TABLE platform.tenant_metrics (
  tenant_id     uuid        NOT NULL,
  day           date        NOT NULL,
  users         integer     NOT NULL,
  items         integer     NOT NULL,
  storage_bytes bigint      NOT NULL,
  writes        integer     NOT NULL,
  computed_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, day)
);

-- Creates the monthly audit_log partitions from last month through `months_ahead` months ahead. On Citus a
-- partition created on a distributed table is distributed automatically. SECURITY DEFINER: only the owner may
-- create partitions, and the worker calling this runs as the service role.
CREATE FUNCTION platform.ensure_audit_log_partitions(months_ahead integer DEFAULT 6)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  month date;
  created integer := 0;
  partition_name text;
BEGIN
  IF months_ahead < 0 OR months_ahead > 36 THEN
    RAISE EXCEPTION 'months_ahead must be between 0 and 36 (got %)', months_ahead;
  END IF;
  FOR month IN SELECT generate_series(date_trunc('month', now()) - interval '1 month',
                                      date_trunc('month', now()) + make_interval(months => months_ahead),
                                      interval '1 month')::date
  LOOP
    partition_name := format('audit_log_%s', to_char(month, 'YYYY_MM'));
    IF to_regclass(format('platform.%I', partition_name)) IS NULL THEN
      EXECUTE format('CREATE TABLE platform.%I PARTITION OF platform.audit_log FOR VALUES FROM (%L) TO (%L)',
                     partition_name, month, (month + interval '1 month')::date);
      created := created + 1;
    END IF;
  END LOOP;
  RETURN created;
END
$$;

-- Drops whole audit_log partitions that end before `keep_after`; never touches the current or a future month.
CREATE FUNCTION platform.drop_audit_log_partitions_before(keep_after date)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  part record;
  dropped integer := 0;
BEGIN
  IF keep_after > date_trunc('month', now())::date THEN
    RAISE EXCEPTION 'refusing to drop the current month''s audit_log partition (keep_after % is after %)', keep_after, date_trunc('month', now())::date;
  END IF;
  FOR part IN
    SELECT c.relname
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_class p ON p.oid = i.inhparent
    JOIN pg_namespace n ON n.oid = p.relnamespace
    WHERE n.nspname = 'platform' AND p.relname = 'audit_log' AND c.relname ~ '^audit_log_[0-9]{4}_[0-9]{2}$'
      AND (to_date(substring(c.relname FROM 11), 'YYYY_MM') + interval '1 month')::date <= keep_after
  LOOP
    EXECUTE format('DROP TABLE platform.%I', part.relname);
    dropped := dropped + 1;
  END LOOP;
  RETURN dropped;
END
$$;

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
    PERFORM create_reference_table('platform.tenants');
    PERFORM create_distributed_table('platform.users', 'tenant_id');
    PERFORM create_distributed_table('platform.items', 'tenant_id', colocate_with => 'platform.users');
    PERFORM create_distributed_table('platform.audit_log', 'tenant_id', colocate_with => 'platform.users');
    PERFORM create_distributed_table('platform.tenant_metrics', 'tenant_id', colocate_with => 'platform.users');
  END IF;
END
$$;

-- Foreign keys come after distribution: Citus accepts keys between distributed tables (colocated, including the
-- distribution column) and from distributed to reference tables, but not from a still-local table.
ALTER TABLE platform.users ADD CONSTRAINT users_tenant_fkey
  FOREIGN KEY (tenant_id) REFERENCES platform.tenants (id) ON DELETE CASCADE;
ALTER TABLE platform.items ADD CONSTRAINT items_tenant_fkey
  FOREIGN KEY (tenant_id) REFERENCES platform.tenants (id) ON DELETE CASCADE;
-- The owner must be a user of the same tenant; deleting a user who still owns items is refused.
ALTER TABLE platform.items ADD CONSTRAINT items_owner_fkey
  FOREIGN KEY (tenant_id, owner_id) REFERENCES platform.users (tenant_id, id) ON DELETE RESTRICT;
ALTER TABLE platform.tenant_metrics ADD CONSTRAINT tenant_metrics_tenant_fkey
  FOREIGN KEY (tenant_id) REFERENCES platform.tenants (id) ON DELETE CASCADE;

SELECT platform.ensure_audit_log_partitions(6);

REVOKE ALL ON SCHEMA platform FROM PUBLIC;
GRANT USAGE ON SCHEMA platform TO platform_app;
GRANT SELECT, INSERT, UPDATE ON platform.tenants TO platform_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON platform.users, platform.items TO platform_app;
GRANT SELECT, INSERT ON platform.audit_log TO platform_app;
GRANT SELECT, INSERT, UPDATE ON platform.tenant_metrics TO platform_app;
REVOKE ALL ON FUNCTION platform.ensure_audit_log_partitions(integer), platform.drop_audit_log_partitions_before(date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION platform.ensure_audit_log_partitions(integer), platform.drop_audit_log_partitions_before(date) TO platform_app;
