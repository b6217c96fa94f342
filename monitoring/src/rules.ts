/**
 * Recording and alert rules. Alerts page on symptoms users feel (errors, latency, lost replicas) and on the
 * database conditions that precede them (pool saturation, skew, replication lag, disk, Redis memory, failed
 * rebalances), and on the alert path itself (rules failing, Alertmanager unreachable or unable to deliver). Each
 * alert names its runbook.
 */
import { ALERTMANAGER, HEARTBEAT_ALERT } from "./alertmanager.js";
export interface RecordingRule {
  readonly record: string;
  readonly expr: string;
}

export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for: string;
  /** page: someone acts now; ticket: someone acts today; heartbeat: the Watchdog, for the external check only. */
  readonly labels: { readonly severity: "page" | "ticket" | "heartbeat" };
  readonly annotations: { readonly summary: string; readonly description: string; readonly runbook: string };
}

export interface RuleGroup {
  readonly name: string;
  readonly interval?: string;
  readonly rules: readonly (RecordingRule | AlertRule)[];
}

export const runbook = (name: string) => `docs/runbooks/${name}.md`;

/** A maker of alerts that share one runbook (docs/runbooks/<runbookName>.md), for the rule groups built per environment. */
export const alertsWithRunbook =
  (runbookName: string) =>
  (alert: string, expr: string, forDuration: string, severity: "page" | "ticket", summary: string, description: string): AlertRule => ({
    alert,
    expr,
    for: forDuration,
    labels: { severity },
    annotations: { summary, description, runbook: runbook(runbookName) },
  });

/** CitusSlowQuery's threshold and grouping: one series per node and statement (pg_top_statements' labels). */
export const SLOW_QUERY = {
  meanSeconds: 0.5,
  byStatement: (expr: string) => `sum by (instance, citus_role, queryid, database, user) (${expr})`,
} as const;

export const RECORDING_RULES: RuleGroup = {
  name: "platform.recording",
  rules: [
    { record: "job:http_requests:rate5m", expr: 'sum by (job) (rate(http_requests_total{job="tenant-service"}[5m]))' },
    {
      // 0, not nothing, while requests succeed: a service with no 5xx has no status=~"5.." series at all, and the
      // error ratio (and its panel) would be empty instead of 0 (found by test/live-prometheus.test.ts).
      record: "job:http_requests_errors:rate5m",
      expr: 'sum by (job) (rate(http_requests_total{job="tenant-service",status=~"5.."}[5m])) or 0 * sum by (job) (rate(http_requests_total{job="tenant-service"}[5m]))',
    },
    { record: "job:http_requests:error_ratio_rate5m", expr: "job:http_requests_errors:rate5m / job:http_requests:rate5m" },
    {
      record: "job:http_request_duration_seconds:p99_rate5m",
      expr: 'histogram_quantile(0.99, sum by (job, le) (rate(http_request_duration_seconds_bucket{job="tenant-service"}[5m])))',
    },
    { record: "route:http_requests:rate5m", expr: 'sum by (route, status) (rate(http_requests_total{job="tenant-service"}[5m]))' },
    { record: "citus:shard_bytes:skew", expr: "max(citus_node_shard_bytes) / avg(citus_node_shard_bytes)" },
    {
      record: "instance:db_pool:utilization",
      expr: 'db_pool_connections{job="tenant-service",state="in_use"} / ignoring(state) db_pool_max_connections{job="tenant-service"}',
    },
  ],
};

export const ALERT_RULES: RuleGroup = {
  name: "platform.alerts",
  rules: [
    {
      alert: "TenantServiceErrorRateHigh",
      expr: "job:http_requests:error_ratio_rate5m > 0.02 and job:http_requests:rate5m > 1",
      for: "5m",
      labels: { severity: "page" },
      annotations: {
        summary: "More than 2% of tenant-service requests fail",
        description: "{{ $value | humanizePercentage }} of requests returned 5xx over 5 minutes.",
        runbook: runbook("tenant-service-errors"),
      },
    },
    {
      alert: "TenantServiceLatencyHigh",
      expr: "job:http_request_duration_seconds:p99_rate5m > 0.5",
      for: "10m",
      labels: { severity: "page" },
      annotations: { summary: "tenant-service p99 latency above 500 ms", description: "p99 is {{ $value | humanizeDuration }}.", runbook: runbook("tenant-service-latency") },
    },
    {
      alert: "TenantServiceReplicasDown",
      expr: 'sum(up{job="tenant-service"}) < 2 or absent(up{job="tenant-service"})',
      for: "5m",
      labels: { severity: "page" },
      annotations: { summary: "Fewer than two tenant-service replicas are up", description: "Only {{ $value }} replicas answer scrapes.", runbook: runbook("tenant-service-errors") },
    },
    {
      alert: "DatabasePoolSaturated",
      expr: 'max by (pod) (instance:db_pool:utilization) > 0.9 and max by (pod) (db_pool_waiting_clients{job="tenant-service"}) > 0',
      for: "5m",
      labels: { severity: "ticket" },
      annotations: {
        summary: "A tenant-service pod's database pool is full and requests queue for it",
        description: "Pod {{ $labels.pod }} has its pool at {{ $value | humanizePercentage }} with clients waiting.",
        runbook: runbook("database-pool"),
      },
    },
    {
      alert: "CitusShardSkewHigh",
      expr: "citus:shard_bytes:skew > 1.3",
      for: "1h",
      labels: { severity: "ticket" },
      annotations: { summary: "The largest Citus worker holds 30% more than the average", description: "Skew is {{ $value }}; plan a rebalance.", runbook: runbook("rebalance") },
    },
    {
      alert: "CitusReplicationLagHigh",
      expr: "max by (instance, application_name) (pg_replication_lag_seconds) > 60",
      for: "5m",
      labels: { severity: "page" },
      annotations: {
        summary: "A Citus standby is more than a minute behind",
        description: "{{ $labels.instance }} standby {{ $labels.application_name }} lags {{ $value }}s: failover now would lose that much.",
        runbook: runbook("citus-failover"),
      },
    },
    {
      alert: "CitusStandbyNotStreaming",
      // The serving primary of a pair that has a standby VM (production) with no standby streaming from it: the
      // standby is down, still cloning, or its slot was invalidated by max_slot_wal_keep_size. Lag alerts cannot see
      // this: a standby that is gone has no lag series. After a failover it fires for the new leader until the old
      // primary rejoins as its standby (docs/runbooks/citus-reinit.md when it cannot).
      expr: 'pg_recovery_active{job="citus-postgres"} == 0 and on (citus_node) up{job="citus-postgres",standby="true"} unless on (instance) pg_replication_lag_seconds',
      for: "15m",
      labels: { severity: "ticket" },
      annotations: {
        summary: "A Citus primary has no streaming standby",
        description: "{{ $labels.instance }}: nothing streams from it, so a failover would have to restore from backups instead.",
        runbook: runbook("standby-not-streaming"),
      },
    },
    {
      alert: "CitusStandbySlotNearLimit",
      // Paged, not ticketed: acting before the slot is lost saves a clone of the whole node and hours without a standby.
      expr: "min by (instance) (standby_slot_safe_wal_ratio) < 0.25",
      for: "5m",
      labels: { severity: "page" },
      annotations: {
        summary: "A Citus standby is about to fall out of its replication slot",
        description: "{{ $labels.instance }}: {{ $value | humanizePercentage }} of max_slot_wal_keep_size is left before the primary drops WAL its standby still needs; then the standby must be cloned again.",
        runbook: runbook("standby-not-streaming"),
      },
    },
    {
      alert: "CitusWalArchivingFailing",
      // Failures in the window and the latest attempt failed: a single retried failure does not page.
      expr: "increase(pg_archiver_failed[15m]) > 0 and pg_archiver_last_failed_timestamp > pg_archiver_last_archived_timestamp",
      for: "15m",
      labels: { severity: "page" },
      annotations: {
        summary: "A Citus node cannot archive WAL to the backups bucket",
        description: "{{ $labels.instance }}: point-in-time recovery stops at its last archived WAL, and pg_wal grows until the disk is full.",
        runbook: runbook("wal-archiving"),
      },
    },
    // The five below read what citus-backup-metrics writes for node_exporter on each primary after every scheduled
    // backup and at boot (infra/src/citus/bootstrap.sh): pgBackRest's own view of the repository.
    {
      alert: "CitusBackupTooOld",
      // A diff backup runs every night but Sunday's, when the full one runs, each up to 30 minutes late: 36 hours is
      // one missed night. max by stanza: after a failover the fenced old primary may still show its last file.
      expr: "time() - max by (stanza) (pgbackrest_backup_last_completion_timestamp_seconds) > 36 * 3600",
      for: "30m",
      labels: { severity: "ticket" },
      annotations: {
        summary: "A Citus node has had no successful backup for more than 36 hours",
        description: "Stanza {{ $labels.stanza }}: the newest backup finished {{ $value | humanizeDuration }} ago. A restore replays all the WAL archived since.",
        runbook: runbook("backups"),
      },
    },
    {
      alert: "CitusFullBackupTooOld",
      // The full backup runs on Sundays; the nightly diffs are relative to it and grow until the next one.
      expr: 'time() - max by (stanza) (pgbackrest_backup_last_completion_timestamp_seconds{type="full"}) > 8 * 86400',
      for: "30m",
      labels: { severity: "ticket" },
      annotations: {
        summary: "A Citus node's newest full backup is more than 8 days old",
        description: "Stanza {{ $labels.stanza }}: the newest full backup finished {{ $value | humanizeDuration }} ago; Sunday's failed or did not run.",
        runbook: runbook("backups"),
      },
    },
    {
      alert: "CitusBackupRepositoryUnhealthy",
      expr: "max by (stanza) (pgbackrest_stanza_status_code) > 0",
      for: "1h",
      labels: { severity: "ticket" },
      annotations: {
        summary: "pgBackRest reports a problem with a Citus node's backups repository",
        description: "Stanza {{ $labels.stanza }} has status code {{ $value }} (1: missing stanza path, 2: no valid backups, 3: missing stanza data).",
        runbook: runbook("backups"),
      },
    },
    {
      alert: "CitusBackupFoundCorruptPages",
      // pgBackRest checks every page's checksum as it copies it (the clusters are created with data checksums).
      expr: "max by (stanza, type) (pgbackrest_backup_error) > 0",
      for: "5m",
      labels: { severity: "page" },
      annotations: {
        summary: "The newest backup of a Citus node found pages with invalid checksums",
        description: "Stanza {{ $labels.stanza }}, {{ $labels.type }} backup: data on the primary's disk is corrupt. Find the relations before the retention expires the backups taken before it.",
        runbook: runbook("backups"),
      },
    },
    {
      alert: "CitusBackupMetricsMissing",
      // A node serving as a primary (in recovery: 0; a promoted standby included, a fenced node excluded since its
      // PostgreSQL is down) whose node_exporter shows no backup metrics: backups cannot be watched there.
      expr: 'pg_recovery_active{job="citus-postgres"} == 0 unless on (instance) pgbackrest_stanza_status_code',
      for: "2h",
      labels: { severity: "ticket" },
      annotations: {
        summary: "A Citus primary reports no backup metrics",
        description: "{{ $labels.instance }}: node_exporter has no pgbackrest.prom; whether its backups run is unknown.",
        runbook: runbook("backups"),
      },
    },
    {
      alert: "CitusRestorePointTooOld",
      // A whole-cluster restore is consistent only at a restore point, so it can go back no later than the newest
      // one. Two intervals and ten minutes: one missed run does not alert. max: after a failover the fenced old
      // coordinator may still show its last file; the interval comes from the coordinator, as configured.
      expr: "time() - max(citus_restore_point_last_timestamp_seconds) > 2 * max(citus_restore_point_interval_seconds) + 600",
      for: "15m",
      labels: { severity: "ticket" },
      annotations: {
        summary: "The coordinator has written no cluster-wide restore point for two intervals",
        description: "The newest restore point is {{ $value | humanizeDuration }} old, over two intervals: a consistent restore of the whole cluster would lose everything written since.",
        runbook: runbook("restore-points"),
      },
    },
    {
      alert: "CitusRestorePointsMissing",
      // A coordinator serving as the primary, and no node reports any restore point: the timer never wrote one, or
      // node_exporter cannot read its file. CitusRestorePointTooOld cannot see this: it has no series to age.
      expr: 'pg_recovery_active{job="citus-postgres",citus_role="coordinator"} == 0 unless on () group(citus_restore_point_last_timestamp_seconds)',
      for: "2h",
      labels: { severity: "ticket" },
      annotations: {
        summary: "No Citus restore point is reported",
        description: "{{ $labels.instance }} serves as the coordinator, but no node reports a cluster-wide restore point: a whole-cluster restore has no consistent target.",
        runbook: runbook("restore-points"),
      },
    },
    {
      alert: "CitusDiskFillingUp",
      expr: 'node_filesystem_avail_bytes{job="citus-node",mountpoint="/var/lib/postgresql"} / node_filesystem_size_bytes{job="citus-node",mountpoint="/var/lib/postgresql"} < 0.15',
      for: "10m",
      labels: { severity: "page" },
      annotations: { summary: "A Citus data disk is over 85% full", description: "{{ $labels.instance }} has {{ $value | humanizePercentage }} free.", runbook: runbook("disk-full") },
    },
    {
      alert: "CitusDiskWillFillIn24h",
      expr: 'predict_linear(node_filesystem_avail_bytes{job="citus-node",mountpoint="/var/lib/postgresql"}[6h], 24 * 3600) < 0',
      for: "30m",
      labels: { severity: "ticket" },
      annotations: { summary: "A Citus data disk will be full within a day", description: "{{ $labels.instance }} at its current rate.", runbook: runbook("disk-full") },
    },
    {
      alert: "RedisMemoryHigh",
      // Without a maxmemory (0) the ratio is +Inf and fired on a healthy Redis (test/live-prometheus.test.ts);
      // Memorystore always has one, so a 0 means the exporter read no limit, not that memory is short.
      expr: 'redis_memory_used_bytes{job="redis"} / (redis_memory_max_bytes{job="redis"} > 0) > 0.9',
      for: "10m",
      labels: { severity: "ticket" },
      annotations: { summary: "Memorystore is above 90% of its memory", description: "Used {{ $value | humanizePercentage }}; rate-limit keys will be evicted first.", runbook: runbook("redis-memory") },
    },
    {
      // redis_exporter answers but cannot reach Memorystore (auth, TLS, network, or the instance itself). Both
      // rate limiters fail open (the service's and Kong's): the API still answers, but no tenant is limited. Three
      // minutes outlasts a Standard-tier failover.
      alert: "RedisDown",
      expr: 'redis_up{job="redis"} == 0',
      for: "3m",
      labels: { severity: "ticket" },
      annotations: {
        summary: "Memorystore cannot be reached: per-tenant rate limits are not enforced",
        description: "redis_exporter ({{ $labels.instance }}) has not reached Memorystore for 3 minutes; requests are admitted unlimited until it answers.",
        runbook: runbook("redis-down"),
      },
    },
    {
      // Without the exporter nothing watches Memorystore: RedisDown and RedisMemoryHigh have no series to fire on.
      alert: "RedisExporterDown",
      expr: 'up{job="redis"} == 0 or absent(up{job="redis"})',
      for: "10m",
      labels: { severity: "ticket" },
      annotations: {
        summary: "redis_exporter is not scraped: Memorystore is unwatched",
        description: "Prometheus has not scraped redis_exporter for 10 minutes; the Redis alerts cannot fire.",
        runbook: runbook("redis-down"),
      },
    },
    {
      // Both limiters fail open when Memorystore is unreachable (the service's and Kong's): the API keeps answering,
      // but no tenant is limited, so one tenant can take the database. The service's failed lease renewals say so.
      alert: "RateLimitNotEnforced",
      expr: 'sum(rate(rate_limit_lease_renewals_total{job="tenant-service",result="error"}[5m])) > 0',
      for: "5m",
      labels: { severity: "ticket" },
      annotations: {
        summary: "The tenant service cannot reach Redis: per-tenant rate limits are not enforced",
        description: "{{ $value }} failed lease renewals per second; requests are admitted unlimited until Redis answers.",
        runbook: runbook("rate-limit-redis"),
      },
    },
    {
      alert: "CitusRebalanceFailed",
      expr: 'max(citus_background_jobs_recent{status="failed"}) > 0',
      for: "0m",
      labels: { severity: "page" },
      annotations: { summary: "A Citus rebalance job failed in the last 24 hours", description: "{{ $value }} failed job(s): shards may be mid-move.", runbook: runbook("rebalance") },
    },
    {
      // A shard move's subscription, after its copy, that fails to apply or hears nothing for 15 minutes: the move
      // cannot finish (forced row-level security did exactly this), and its source keeps WAL for it meanwhile.
      alert: "CitusShardMoveNotProgressing",
      expr:
        "max by (instance, subscription) (increase(citus_move_subscription_apply_errors[10m])) > 0" +
        " or max by (instance, subscription) (citus_move_subscription_enabled == 1 and citus_move_subscription_applying == 0)" +
        " or max by (instance, subscription) (citus_move_subscription_enabled == 1 and changes(citus_move_subscription_received_lsn_bytes[15m]) == 0)",
      for: "10m",
      labels: { severity: "page" },
      annotations: {
        summary: "A Citus shard move is not catching up",
        description: "{{ $labels.instance }}: subscription {{ $labels.subscription }} is not applying the writes made during the move; `pnpm shardctl status` names the cause.",
        runbook: runbook("shard-move-stalled"),
      },
    },
    {
      alert: "CitusRebalanceTaskRetrying",
      expr: 'max(citus_background_tasks_max_retries{status=~"runnable|running|blocked|error"}) > 0',
      for: "30m",
      labels: { severity: "ticket" },
      annotations: {
        summary: "A Citus rebalance task keeps failing and being retried",
        description: "A background move has been retried {{ $value }} times; its error is in pg_dist_background_task.message (`pnpm shardctl status`).",
        runbook: runbook("shard-move-stalled"),
      },
    },
    {
      // Paged: once the slot passes max_slot_wal_keep_size it is lost and the move must start over; without that cap
      // the WAL would fill the node's disk.
      alert: "CitusReplicationSlotRetainingWal",
      expr: "min by (instance, slot) (replication_slot_safe_wal_ratio) < 0.5",
      for: "10m",
      labels: { severity: "page" },
      annotations: {
        summary: "A replication slot keeps too much WAL on a Citus node",
        description: "{{ $labels.instance }}: slot {{ $labels.slot }} has {{ $value | humanizePercentage }} of max_slot_wal_keep_size left before it is lost.",
        runbook: runbook("shard-move-stalled"),
      },
    },
    {
      alert: "CitusReplicationSlotInactive",
      expr: "max by (instance, slot) (replication_slot_active == 0 and replication_slot_retained_bytes > 1073741824)",
      for: "30m",
      labels: { severity: "ticket" },
      annotations: {
        summary: "A replication slot with no reader keeps WAL on a Citus node",
        description: "{{ $labels.instance }}: slot {{ $labels.slot }} has had no reader for 30 minutes and keeps {{ $value | humanize1024 }}B of WAL.",
        runbook: runbook("shard-move-stalled"),
      },
    },
    {
      // One of a node's top statements (pg_top_statements: the 20 with the most execution time) averaging over half
      // a second per call over 15 minutes while it runs at least once a minute: slow, and not a one-off. Per node,
      // so a shard query slow on one worker (a hot tenant, a missing index on its shards) is named there.
      alert: "CitusSlowQuery",
      expr:
        `${SLOW_QUERY.byStatement("rate(pg_top_statements_exec_seconds[15m])")} / ${SLOW_QUERY.byStatement("rate(pg_top_statements_calls[15m])")} > ${SLOW_QUERY.meanSeconds}` +
        ` and ${SLOW_QUERY.byStatement("rate(pg_top_statements_calls[15m])")} > 1 / 60`,
      for: "15m",
      labels: { severity: "ticket" },
      annotations: {
        summary: "A statement on a Citus node is slow",
        description: "{{ $labels.instance }} ({{ $labels.citus_role }}): queryid {{ $labels.queryid }} in {{ $labels.database }} as {{ $labels.user }} takes {{ $value | humanizeDuration }} per call on average.",
        runbook: runbook("slow-query"),
      },
    },
    {
      alert: "WorkerJobsFailing",
      expr: 'sum by (task) (rate(worker_jobs_total{job="tenant-worker",outcome="failed"}[15m])) > 0.01',
      for: "15m",
      labels: { severity: "ticket" },
      annotations: { summary: "Queue jobs keep failing", description: "Task {{ $labels.task }} fails {{ $value }} times per second.", runbook: runbook("worker-jobs") },
    },
    {
      alert: "WorkersDying",
      // A worker process found dead by the sweep (services/tenant-service/src/worker/dead-workers.ts) died without a
      // graceful stop: an OOM kill, a node lost, a SIGKILL after the grace period (a rollout's SIGTERM does not count).
      // Its jobs ran again within minutes, but several an hour say the worker dies under its load.
      expr: 'sum(increase(worker_processes_found_dead_total{job="tenant-worker"}[1h])) >= 3',
      for: "0m",
      labels: { severity: "ticket" },
      annotations: {
        summary: "Worker processes keep dying without a graceful stop",
        description: "{{ $value }} worker processes died in the last hour (OOM kill, node lost); their jobs were released to run again.",
        runbook: runbook("worker-jobs"),
      },
    },
    {
      alert: "ExportsGivenUp",
      // An export that would never end (its worker died mid-export, or its job left the queue) is failed by the service
      // when the tenant next polls or asks again, or by the worker's sweep within 5 minutes; the tenant must then ask
      // again. One is a worker killed by a rollout or an OOM; several an hour say the worker dies under exports, which
      // the tenants feel before any job fails.
      expr: 'sum by (reason) (increase(exports_given_up_total{job="tenant-service"}[1h]) or increase(exports_given_up_total{job="tenant-worker"}[1h])) >= 3',
      for: "0m",
      labels: { severity: "ticket" },
      annotations: {
        summary: "Tenant exports are being given up",
        description: "{{ $value }} exports given up in the last hour ({{ $labels.reason }}): their worker stopped mid-export or their job left the queue.",
        runbook: runbook("export-stuck"),
      },
    },
    {
      alert: "WebhookDeliveriesFailing",
      // One tenant's receiver being down is that tenant's (its delivery log says so). Most attempts failing across the
      // platform, with enough of them to judge, is ours: egress, DNS, the NetworkPolicy, the CA bundle.
      expr:
        'sum(rate(webhook_deliveries_total{job="tenant-worker",outcome=~"retry|failed|refused"}[15m])) / sum(rate(webhook_deliveries_total{job="tenant-worker",outcome=~"delivered|retry|failed|refused"}[15m])) > 0.5' +
        ' and sum(rate(webhook_deliveries_total{job="tenant-worker",outcome=~"delivered|retry|failed|refused"}[15m])) > 0.05',
      for: "30m",
      labels: { severity: "ticket" },
      annotations: {
        summary: "Most webhook deliveries fail, platform-wide",
        description: "{{ $value | humanizePercentage }} of webhook delivery attempts failed over 15 minutes.",
        runbook: runbook("webhook-deliveries"),
      },
    },
    {
      alert: HEARTBEAT_ALERT,
      expr: "vector(1)",
      for: "0m",
      labels: { severity: "heartbeat" },
      annotations: {
        summary: "Always firing: the alert path is alive",
        description: "Sent every minute to the external heartbeat check (<prefix>-alert-heartbeat); that check alerts when it stops.",
        runbook: runbook("alerting-pipeline"),
      },
    },
    {
      alert: "PrometheusRuleEvaluationFailing",
      expr: 'sum by (instance) (rate(prometheus_rule_evaluation_failures_total{job="prometheus"}[5m])) > 0',
      for: "15m",
      labels: { severity: "page" },
      annotations: { summary: "Prometheus fails to evaluate rules", description: "{{ $labels.instance }}: {{ $value }} failed evaluations per second; the alerts those rules define cannot fire.", runbook: runbook("alerting-pipeline") },
    },
    {
      alert: "PrometheusAlertmanagerUnreachable",
      expr: `min by (instance) (prometheus_notifications_alertmanagers_discovered{job="prometheus"}) < ${ALERTMANAGER.replicas} or sum by (instance) (rate(prometheus_notifications_errors_total{job="prometheus"}[5m])) > 0`,
      for: "10m",
      labels: { severity: "ticket" },
      annotations: { summary: "Prometheus cannot reach every Alertmanager replica", description: "{{ $labels.instance }}: one replica lost means one failure away from no alerts at all.", runbook: runbook("alerting-pipeline") },
    },
    {
      alert: "AlertmanagerNotificationsFailing",
      expr: 'sum by (integration) (rate(alertmanager_notifications_failed_total{job="alertmanager"}[5m])) > 0',
      for: "10m",
      labels: { severity: "page" },
      annotations: { summary: "Alertmanager cannot deliver to {{ $labels.integration }}", description: "Notifications fail ({{ $value }} per second): check the alert-receiver secret and the egress to the receiver.", runbook: runbook("alerting-pipeline") },
    },
    {
      alert: "AlertmanagerClusterDegraded",
      expr: `min(alertmanager_cluster_members{job="alertmanager"}) < ${ALERTMANAGER.replicas} or count(up{job="alertmanager"} == 1) < ${ALERTMANAGER.replicas}`,
      for: "10m",
      labels: { severity: "ticket" },
      annotations: { summary: "An Alertmanager replica is down or out of the cluster", description: "Silences and deduplication are not shared; one more failure stops notifications.", runbook: runbook("alerting-pipeline") },
    },
  ],
};
