/**
 * Custom queries for postgres_exporter on the Citus nodes (its `--extend.query-path` file). Each becomes metrics
 * named <query>_<column>; the alert rules and dashboards use exactly these names (src/catalog.ts).
 * Run on the coordinator; queries that only make sense there return nothing on workers.
 */
import { PORTS } from "@platform/config";

/** Where the exporters listen: the bootstrap, the firewall and the scrape config read these (config's PORTS). */
export const POSTGRES_EXPORTER_PORT = PORTS.postgresExporter;
export const NODE_EXPORTER_PORT = PORTS.nodeExporter;
export const REDIS_EXPORTER_PORT = PORTS.redisExporter;

export interface ExporterQuery {
  readonly query: string;
  readonly metrics: readonly Record<string, { usage: "LABEL" | "GAUGE" | "COUNTER"; description: string }>[];
  /** Only on the coordinator (citus_* catalog views). */
  readonly coordinatorOnly: boolean;
}

export const EXPORTER_QUERIES: Record<string, ExporterQuery> = {
  citus_node: {
    coordinatorOnly: true,
    query: `SELECT nodename || ':' || nodeport AS node, count(DISTINCT colocation_id || ':' || shardid)::float AS shards, coalesce(sum(shard_size), 0)::float AS shard_bytes
              FROM citus_shards GROUP BY nodename, nodeport`,
    metrics: [
      { node: { usage: "LABEL", description: "worker host:port" } },
      { shards: { usage: "GAUGE", description: "shard placements on the node" } },
      { shard_bytes: { usage: "GAUGE", description: "bytes of shard placements on the node" } },
    ],
  },
  citus_background_jobs: {
    coordinatorOnly: true,
    query: `SELECT state::text AS status, count(*)::float AS count,
                   count(*) FILTER (WHERE finished_at > now() - interval '24 hours')::float AS recent
              FROM pg_dist_background_job GROUP BY state`,
    metrics: [
      { status: { usage: "LABEL", description: "job status (scheduled, running, finished, failed, cancelled, ...)" } },
      { count: { usage: "GAUGE", description: "background jobs (rebalances) in this status" } },
      { recent: { usage: "GAUGE", description: "of which finished in the last 24 hours" } },
    ],
  },
  citus_stat_tenants: {
    coordinatorOnly: true,
    // The busiest tenants only: a label per tenant for all of them would be a million series.
    // Needs citus.stat_tenants_track = 'all' (the bootstrap sets it).
    query: `SELECT tenant_attribute AS tenant, nodeid::text AS node,
                   query_count_in_last_period::float AS queries, read_count_in_last_period::float AS reads,
                   cpu_usage_in_last_period::float AS cpu_seconds
              FROM citus_stat_tenants ORDER BY query_count_in_last_period DESC LIMIT 50`,
    metrics: [
      { tenant: { usage: "LABEL", description: "tenant id (distribution column value)" } },
      { node: { usage: "LABEL", description: "Citus node id" } },
      { queries: { usage: "GAUGE", description: "queries in the last full period (citus.stat_tenants_period)" } },
      { reads: { usage: "GAUGE", description: "read queries in the last full period" } },
      { cpu_seconds: { usage: "GAUGE", description: "CPU seconds in the last full period" } },
    ],
  },
  pg_archiver: {
    coordinatorOnly: false,
    // WAL archiving to the backups bucket (pgBackRest's archive_command). A standby archives nothing until it is
    // promoted; its counters stay at zero.
    query: `SELECT failed_count::float AS failed, archived_count::float AS archived,
                   coalesce(extract(epoch FROM last_failed_time), 0)::float AS last_failed_timestamp,
                   coalesce(extract(epoch FROM last_archived_time), 0)::float AS last_archived_timestamp
              FROM pg_stat_archiver`,
    metrics: [
      { failed: { usage: "COUNTER", description: "failed attempts to archive a WAL file" } },
      { archived: { usage: "COUNTER", description: "WAL files archived" } },
      { last_failed_timestamp: { usage: "GAUGE", description: "Unix time of the last failed attempt (0: none)" } },
      { last_archived_timestamp: { usage: "GAUGE", description: "Unix time of the last archived WAL file (0: none)" } },
    ],
  },
  pg_recovery: {
    coordinatorOnly: false,
    // Whether the node streams from a primary. The Prometheus labels say which VM was built as a standby; after a
    // failover only this says which one serves, and so which node must report backups (CitusBackupMetricsMissing).
    query: "SELECT pg_is_in_recovery()::int::float AS active",
    metrics: [{ active: { usage: "GAUGE", description: "1 on a standby in recovery, 0 on a primary" } }],
  },
  standby_slot: {
    coordinatorOnly: false,
    // The slots a group's leader keeps for its other members: Patroni makes one physical slot per member, named
    // after it. max_slot_wal_keep_size caps the WAL each holds back; when a replica falls that far behind, the leader
    // drops WAL it still needs ('lost') and the replica must be rebuilt (patronictl reinit), which takes hours on a
    // large worker. safe_wal_ratio is the share of that cap still ahead of the replica: 1 healthy, 0 lost.
    query: `SELECT slot_name AS slot,
                   active::int::float AS active,
                   CASE WHEN wal_status = 'lost' THEN 0
                        WHEN current_setting('max_slot_wal_keep_size') = '-1' THEN 1
                        ELSE greatest(0, least(1, coalesce(safe_wal_size, 0)::float
                                                  / pg_size_bytes(current_setting('max_slot_wal_keep_size'))))
                   END AS safe_wal_ratio
              FROM pg_replication_slots
             WHERE slot_type = 'physical' AND NOT temporary`,
    metrics: [
      { slot: { usage: "LABEL", description: "the slot: Patroni names it after the member it keeps WAL for" } },
      { active: { usage: "GAUGE", description: "1 while the standby streams through the slot" } },
      { safe_wal_ratio: { usage: "GAUGE", description: "share of max_slot_wal_keep_size still ahead of the standby (0: lost)" } },
    ],
  },
  citus_move_subscription: {
    coordinatorOnly: false,
    // The subscription a shard move replicates the writes made during it through, on the move's target node. Citus
    // creates it disabled and enables it after the copy; from then on an apply worker that keeps failing (apply_errors
    // rising) or that receives nothing new means the move cannot finish, while its source keeps WAL for it.
    query: `SELECT s.subname AS subscription, s.subenabled::int::float AS enabled, (st.pid IS NOT NULL)::int::float AS applying,
                   coalesce(ss.apply_error_count, 0)::float AS apply_errors,
                   coalesce(pg_wal_lsn_diff(st.latest_end_lsn, '0/0'), 0)::float AS received_lsn_bytes
              FROM pg_subscription s
              LEFT JOIN pg_stat_subscription st ON st.subid = s.oid AND st.relid IS NULL
              LEFT JOIN pg_stat_subscription_stats ss ON ss.subid = s.oid
             WHERE s.subname LIKE 'citus\\_shard\\_%'`,
    metrics: [
      { subscription: { usage: "LABEL", description: "Citus's move or split subscription (exists only while the operation runs)" } },
      { enabled: { usage: "GAUGE", description: "1 once the copy is done and the subscription applies the writes made during it" } },
      { applying: { usage: "GAUGE", description: "1 while its apply worker runs" } },
      { apply_errors: { usage: "COUNTER", description: "errors its apply worker hit (pg_stat_subscription_stats)" } },
      { received_lsn_bytes: { usage: "GAUGE", description: "the last source WAL position it reported, in bytes: flat means no progress" } },
    ],
  },
  citus_background_tasks: {
    coordinatorOnly: true,
    // The background rebalancer's tasks (one shard group move each). A task that fails is retried with a backoff,
    // its error in pg_dist_background_task.message; the job looks 'running' all the while.
    query: `SELECT status::text AS status, count(*)::float AS count, coalesce(max(retry_count), 0)::float AS max_retries
              FROM pg_dist_background_task WHERE status NOT IN ('done', 'cancelled', 'unscheduled') GROUP BY status`,
    metrics: [
      { status: { usage: "LABEL", description: "task status (runnable, running, blocked, error, ...)" } },
      { count: { usage: "GAUGE", description: "background tasks in this status" } },
      { max_retries: { usage: "GAUGE", description: "the most times one of them has been retried" } },
    ],
  },
  replication_slot: {
    coordinatorOnly: false,
    // Every slot but the members' physical ones (standby_slot): a shard move's logical slot on its source node keeps WAL until
    // the move's subscription has applied it. A move that does not catch up keeps it growing toward
    // max_slot_wal_keep_size, after which the slot is lost and the move fails.
    query: `SELECT slot_name AS slot, slot_type AS type, active::int::float AS active,
                   coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::float AS retained_bytes,
                   CASE WHEN wal_status = 'lost' THEN 0
                        WHEN current_setting('max_slot_wal_keep_size') = '-1' THEN 1
                        ELSE greatest(0, least(1, coalesce(safe_wal_size, 0)::float
                                                  / pg_size_bytes(current_setting('max_slot_wal_keep_size'))))
                   END AS safe_wal_ratio
              FROM pg_replication_slots WHERE NOT (slot_type = 'physical' AND NOT temporary)`,
    metrics: [
      { slot: { usage: "LABEL", description: "slot name" } },
      { type: { usage: "LABEL", description: "logical or physical" } },
      { active: { usage: "GAUGE", description: "1 while something reads from the slot" } },
      { retained_bytes: { usage: "GAUGE", description: "WAL the slot keeps on this node" } },
      { safe_wal_ratio: { usage: "GAUGE", description: "share of max_slot_wal_keep_size still ahead of the slot (0: lost)" } },
    ],
  },
  pg_top_statements: {
    coordinatorOnly: false,
    // The statements that took the most execution time on this node since pg_stat_statements was last reset: 20 at
    // most, so the series stay bounded whatever the workload. The queryid names a statement (its text is in
    // pg_stat_statements on that node, docs/runbooks/slow-query.md); the text itself is never a label: it can carry
    // tenant data and is unbounded. On a worker these are the shard queries Citus sends, on the coordinator the
    // distributed ones the service sends. One row per statement, database and role: the view keeps top-level and
    // nested executions apart, summed here so that no two rows carry the same labels.
    query: `SELECT s.queryid::text AS queryid, d.datname AS database, coalesce(r.rolname, s.userid::text) AS "user",
                   sum(s.calls)::float AS calls, (sum(s.total_exec_time) / 1000)::float AS exec_seconds, sum(s.rows)::float AS rows
              FROM pg_stat_statements s
              JOIN pg_database d ON d.oid = s.dbid
              LEFT JOIN pg_roles r ON r.oid = s.userid
             WHERE s.queryid IS NOT NULL
             GROUP BY s.queryid, d.datname, r.rolname, s.userid
             ORDER BY sum(s.total_exec_time) DESC LIMIT 20`,
    metrics: [
      { queryid: { usage: "LABEL", description: "pg_stat_statements' queryid (the text: SELECT query FROM pg_stat_statements WHERE queryid = ...)" } },
      { database: { usage: "LABEL", description: "database the statement ran in" } },
      { user: { usage: "LABEL", description: "role that ran it" } },
      { calls: { usage: "COUNTER", description: "times it was executed" } },
      { exec_seconds: { usage: "COUNTER", description: "execution time spent in it, in seconds" } },
      { rows: { usage: "COUNTER", description: "rows it returned or changed" } },
    ],
  },
  platform_tenants: {
    coordinatorOnly: true,
    // The business view: tenants by plan and status (platform.tenant_counts(), migration 0006: a SECURITY DEFINER
    // function pg_monitor may execute, which returns counts and no tenant's row). A handful of series: four plans
    // times three statuses. On Citus the tenants table is a reference table, so a worker reports the same counts:
    // dashboards read the coordinator's.
    query: "SELECT plan, status, tenants::float AS tenants, created_last_hour::float AS created_last_hour, created_last_day::float AS created_last_day FROM platform.tenant_counts()",
    metrics: [
      { plan: { usage: "LABEL", description: "the tenant's plan (free, starter, business, enterprise)" } },
      { status: { usage: "LABEL", description: "active, suspended or deleting (erasure requested, services/tenant-service README)" } },
      { tenants: { usage: "GAUGE", description: "tenants with this plan and status" } },
      { created_last_hour: { usage: "GAUGE", description: "of which created in the last hour" } },
      { created_last_day: { usage: "GAUGE", description: "of which created in the last 24 hours" } },
    ],
  },
  pg_replication: {
    coordinatorOnly: false,
    query: `SELECT application_name, client_addr::text AS client,
                   coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::float AS lag_bytes,
                   coalesce(extract(epoch FROM replay_lag), 0)::float AS lag_seconds
              FROM pg_stat_replication`,
    metrics: [
      { application_name: { usage: "LABEL", description: "standby name" } },
      { client: { usage: "LABEL", description: "standby address" } },
      { lag_bytes: { usage: "GAUGE", description: "WAL not yet replayed by the standby" } },
      { lag_seconds: { usage: "GAUGE", description: "replay delay of the standby" } },
    ],
  },
};

/**
 * postgres_exporter's --extend.query-path file: the Citus VMs' bootstrap writes it, the monitoring output shows it.
 * Written as JSON, which is YAML too: infra synthesizes it into every startup script, and loading a YAML library
 * there would cost a tenth of synthesis time.
 */
export function postgresExporterQueries(): string {
  const queries = Object.fromEntries(Object.entries(EXPORTER_QUERIES).map(([name, q]) => [name, { query: q.query.replace(/\s+/g, " ").trim(), metrics: q.metrics }]));
  return `${JSON.stringify(queries, null, 2)}\n`;
}
