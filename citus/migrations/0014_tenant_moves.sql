-- Tenant moves (issue 25): what `tenantctl move` has done for each tenant it moves between the deployment's
-- databases (citus/src/tenantctl/), so that a killed run resumes from its last recorded phase to the same end, and
-- `tenantctl status` can show every move in flight with its phase and lag.
--
-- 1. The moves. Read and written in the home database only (citus/src/tenantctl/state.ts), like the placements
--    registry; the table exists wherever the migrations run. One row a tenant: a new move of a tenant replaces its
--    completed one.
CREATE TABLE platform.tenant_moves (
  tenant_id           uuid        PRIMARY KEY,
  -- Database names as the configuration knows them (DATABASE_URL_<NAME>, citus/src/databases.ts).
  source              text        NOT NULL CHECK (source ~ '^[a-z][a-z0-9_]{0,31}$'),
  target              text        NOT NULL CHECK (target ~ '^[a-z][a-z0-9_]{0,31}$' AND target <> source),
  direction           text        NOT NULL CHECK (direction IN ('forward', 'reverse')),
  -- The phases in order (state.ts, PHASES): fencing the target, copying from a snapshot, streaming later changes,
  -- the cutover, switched (the placement names the target), the rollback window (a reverse stream kept), reversed
  -- (moved back), completed (the side left behind emptied and fenced).
  phase               text        NOT NULL CHECK (phase IN ('fencing', 'copying', 'streaming', 'cutover', 'switched', 'rollback_window', 'reversed', 'completed')),
  -- The logical replication slots and publications of the forward and reverse streams: named here so a resumed or
  -- completing run drops exactly what this move created.
  slot                text        CHECK (slot ~ '^[a-z0-9_]{1,63}$'),
  publication         text        CHECK (publication ~ '^[a-z0-9_]{1,63}$'),
  reverse_slot        text        CHECK (reverse_slot ~ '^[a-z0-9_]{1,63}$'),
  reverse_publication text        CHECK (reverse_publication ~ '^[a-z0-9_]{1,63}$'),
  -- Where the copy's snapshot stands in the source's WAL, where the cutover's final catch-up ended, and where the
  -- reverse stream starts (the target's position at the switch).
  copy_lsn            pg_lsn,
  cutover_lsn         pg_lsn,
  reverse_from_lsn    pg_lsn,
  rows_copied         bigint      NOT NULL DEFAULT 0 CHECK (rows_copied >= 0),
  -- The tenant's window without writes (fence to unfence), and how many cutovers were tried (one gives up and
  -- unfences when its catch-up or verify takes too long).
  cutover_ms          integer     CHECK (cutover_ms >= 0),
  cutover_attempts    integer     NOT NULL DEFAULT 0 CHECK (cutover_attempts >= 0),
  -- The last failure, as tenantctl printed it (never a secret: database names, not URLs).
  error               text        CHECK (length(error) <= 2000),
  started_at          timestamptz NOT NULL DEFAULT now(),
  phase_at            timestamptz NOT NULL DEFAULT now(),
  finished_at         timestamptz
);
-- tenantctl status lists the moves not completed, oldest phase first.
CREATE INDEX tenant_moves_in_flight ON platform.tenant_moves (phase_at) WHERE phase <> 'completed';

-- 2. Stream positions. In the database a stream applies to: the end LSN of the last source transaction applied,
--    written in the same transaction as that transaction's rows (stream.ts), so a run killed between applying and
--    acknowledging to the slot resumes exactly after what the target committed. Also the cutover's own position
--    marker (engine.ts). Keyed by slot name.
CREATE TABLE platform.tenant_move_progress (
  slot       text        PRIMARY KEY CHECK (slot ~ '^[a-z0-9_]{1,63}$'),
  lsn        pg_lsn      NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Platform-level and small: reference tables on Citus, as the placements are (0012). The position must be a
-- reference table on a Citus target: it commits in the same distributed transaction as the applied rows, and a
-- coordinator-local table there would not be.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
    PERFORM create_reference_table('platform.tenant_moves');
    PERFORM create_reference_table('platform.tenant_move_progress');
  END IF;
END
$$;

-- tenantctl alone reads and writes both, as the migration role (the owner); the service role gets nothing, and RLS
-- with no policy keeps it so should a grant ever be added by mistake.
ALTER TABLE platform.tenant_moves ENABLE ROW LEVEL SECURITY;
ALTER TABLE platform.tenant_move_progress ENABLE ROW LEVEL SECURITY;
