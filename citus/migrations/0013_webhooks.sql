-- Webhooks (issue 24): a tenant administrator subscribes an HTTPS URL to the tenant's item and user events, and the
-- worker delivers each event, signed, with retries (services/tenant-service/src/routes/webhooks.ts,
-- src/worker/webhooks.ts; README "Webhooks").
--
-- 1. The subscriptions. The secret signs every delivery, so it is kept readable (the worker signs with it): behind
--    row-level security, granted to the service role only, and never returned after the answer that created it.
--    consecutive_failures and paused_until are the webhook's circuit: while a receiver keeps failing, its deliveries
--    wait for paused_until instead of each taking a worker slot for a timeout.
CREATE TABLE platform.webhooks (
  tenant_id            uuid        NOT NULL,
  id                   uuid        NOT NULL DEFAULT gen_random_uuid(),
  url                  text        NOT NULL CHECK (length(url) <= 2000 AND url LIKE 'https://%'),
  events               text[]      NOT NULL CHECK (cardinality(events) >= 1 AND events <@ ARRAY['item.created', 'item.updated', 'item.deleted', 'user.created', 'user.updated', 'user.deleted']),
  description          text        NOT NULL DEFAULT '' CHECK (length(description) <= 200),
  secret               text        NOT NULL CHECK (length(secret) BETWEEN 32 AND 200),
  created_by           text        NOT NULL CHECK (length(created_by) BETWEEN 1 AND 200),
  created_at           timestamptz NOT NULL DEFAULT now(),
  consecutive_failures integer     NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
  paused_until         timestamptz,
  PRIMARY KEY (tenant_id, id)
);
-- The list, newest first. A write looks a tenant's subscriptions up by the primary key's leading tenant_id: for the
-- many tenants with none, one probe of an index that holds no entry for them.
CREATE INDEX webhooks_tenant_created ON platform.webhooks (tenant_id, created_at DESC, id DESC);

-- 2. The deliveries: one row per event and subscribed webhook, written in the transaction of the change (the outbox),
--    and the log GET .../webhooks/{id}/deliveries pages through. The event's body is kept as it was sent, so a retry
--    sends the same bytes (with a new timestamp and signature). attempt_log holds one entry per attempt (at most
--    WEBHOOK_MAX_ATTEMPTS of them).
CREATE TABLE platform.webhook_deliveries (
  tenant_id       uuid        NOT NULL,
  id              uuid        NOT NULL DEFAULT gen_random_uuid(),
  webhook_id      uuid        NOT NULL,
  event_id        uuid        NOT NULL,
  event_type      text        NOT NULL CHECK (event_type IN ('item.created', 'item.updated', 'item.deleted', 'user.created', 'user.updated', 'user.deleted')),
  body            text        NOT NULL,
  status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at timestamptz,
  last_attempt_at timestamptz,
  response_status integer,
  last_error      text        CHECK (length(last_error) <= 500),
  attempt_log     jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(attempt_log) = 'array'),
  created_at      timestamptz NOT NULL DEFAULT now(),
  delivered_at    timestamptz,
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX webhook_deliveries_webhook_created ON platform.webhook_deliveries (tenant_id, webhook_id, created_at DESC, id DESC);

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
    PERFORM create_distributed_table('platform.webhooks', 'tenant_id', colocate_with => 'platform.users');
    PERFORM create_distributed_table('platform.webhook_deliveries', 'tenant_id', colocate_with => 'platform.users');
  END IF;
END
$$;

-- After distribution (0001's reason). Deleting a webhook takes its log with it.
ALTER TABLE platform.webhooks ADD CONSTRAINT webhooks_tenant_fkey
  FOREIGN KEY (tenant_id) REFERENCES platform.tenants (id) ON DELETE CASCADE;
ALTER TABLE platform.webhook_deliveries ADD CONSTRAINT webhook_deliveries_webhook_fkey
  FOREIGN KEY (tenant_id, webhook_id) REFERENCES platform.webhooks (tenant_id, id) ON DELETE CASCADE;

-- Row-level security as on every tenant table (0002, not forced: 0004).
ALTER TABLE platform.webhooks ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON platform.webhooks
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
ALTER TABLE platform.webhook_deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON platform.webhook_deliveries
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON platform.webhooks, platform.webhook_deliveries TO platform_app;
