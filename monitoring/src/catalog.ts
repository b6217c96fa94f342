/**
 * The metrics each scrape target exports, by job. Rules and dashboards may only use names listed here, and the
 * tests check that they do: a renamed metric breaks a test, not a dashboard at 3 a.m.
 */
import { EXPORTER_QUERIES } from "./exporter-queries.js";

const histogram = (name: string) => [`${name}_bucket`, `${name}_sum`, `${name}_count`];
const exporterMetrics = Object.entries(EXPORTER_QUERIES).flatMap(([prefix, q]) =>
  q.metrics.flatMap((m) => Object.entries(m).filter(([, v]) => v.usage !== "LABEL").map(([column]) => `${prefix}_${column}`)),
);

export const SCRAPE_JOBS = {
  /** services/tenant-service/src/metrics.ts */
  "tenant-service": ["up", "http_requests_total", ...histogram("http_request_duration_seconds"), "tenant_requests_rejected_total", "rate_limit_lease_renewals_total", "exports_given_up_total", "db_unavailable_total", "db_pool_connections", "db_pool_waiting_clients", "db_pool_max_connections", "db_pool_connections_after_unanswered_rollback", "db_pool_nodes_quarantined", "process_resident_memory_bytes", "nodejs_eventloop_lag_p99_seconds"],
  /** services/tenant-service/src/worker.ts, its registry from src/metrics.ts: the service's process and pool metrics */
  "tenant-worker": ["up", "worker_jobs_total", "webhook_deliveries_total", "exports_given_up_total", "worker_processes_found_dead_total", "worker_dead_jobs_released_total", ...histogram("worker_job_duration_seconds"), "db_pool_connections", "db_pool_waiting_clients", "db_pool_max_connections", "db_pool_connections_after_unanswered_rollback", "db_pool_nodes_quarantined", "process_resident_memory_bytes", "nodejs_eventloop_lag_p99_seconds"],
  /** Kong's Prometheus plugin */
  kong: ["up", "kong_http_requests_total", ...histogram("kong_request_latency_ms"), "kong_nginx_connections_total"],
  /** postgres_exporter on each Citus VM, with src/exporter-queries.ts */
  "citus-postgres": ["up", "pg_up", "pg_stat_database_numbackends", "pg_settings_max_connections", ...exporterMetrics],
  /**
   * node_exporter on each Citus VM, and in its textfile collector pgBackRest's view of the node's stanza, written on
   * primaries by the bootstrap's citus-backup-metrics (infra/src/citus/bootstrap.sh; infra/test/bootstrap-backups),
   * and on the serving coordinator the newest cluster-wide restore point, written by citus-restore-point
   * (infra/test/bootstrap-restore-points)
   */
  "citus-node": [
    "up", "node_filesystem_avail_bytes", "node_filesystem_size_bytes", "node_cpu_seconds_total", "node_memory_MemAvailable_bytes",
    "pgbackrest_stanza_status_code", "pgbackrest_backup_last_completion_timestamp_seconds", "pgbackrest_backup_error",
    "citus_restore_point_last_timestamp_seconds", "citus_restore_point_interval_seconds",
  ],
  /**
   * Patroni 3.0's REST /metrics on each Citus VM (patroni/api.py, do_GET_metrics), labelled only with its scope;
   * the scrape adds citus_group. monitoring/test/patroni-metrics.test.ts scrapes a real Patroni for these names.
   */
  patroni: [
    "up", "patroni_postgres_running", "patroni_primary", "patroni_replica", "patroni_sync_standby",
    "patroni_xlog_location", "patroni_xlog_received_location", "patroni_xlog_replayed_location",
    "patroni_postgres_timeline", "patroni_cluster_unlocked", "patroni_is_paused", "patroni_dcs_last_seen",
  ],
  /** redis_exporter pointed at Memorystore */
  redis: ["up", "redis_up", "redis_memory_used_bytes", "redis_memory_max_bytes", "redis_connected_clients"],
  hydra: ["up", ...histogram("http_request_duration_seconds")],
  /** kube-state-metrics 2.x (k8s/src/charts/monitoring/kube-state-metrics.ts), the resources it is given */
  "kube-state-metrics": [
    "up", "kube_pod_container_status_waiting_reason", "kube_pod_container_status_restarts_total", "kube_pod_status_phase", "kube_pod_status_ready", "kube_pod_owner",
    "kube_deployment_spec_replicas", "kube_deployment_status_replicas_available", "kube_deployment_status_replicas_updated",
    "kube_statefulset_status_replicas", "kube_statefulset_status_replicas_ready", "kube_statefulset_status_replicas_updated",
    "kube_horizontalpodautoscaler_status_current_replicas", "kube_horizontalpodautoscaler_spec_max_replicas", "kube_job_failed", "kube_node_status_condition",
  ],
  /** Each node's kubelet /metrics: the volumes mounted there */
  kubelet: ["up", "kubelet_volume_stats_available_bytes", "kubelet_volume_stats_capacity_bytes", "kubelet_volume_stats_used_bytes"],
  /** Each node's cAdvisor, only what src/kubernetes-scrape.ts keeps */
  cadvisor: ["up", "container_cpu_usage_seconds_total", "container_memory_working_set_bytes"],
  /** Each Prometheus replica scraping itself: whether rules evaluate and alerts leave */
  prometheus: ["up", "prometheus_rule_evaluation_failures_total", "prometheus_notifications_alertmanagers_discovered", "prometheus_notifications_errors_total", "prometheus_notifications_dropped_total", "prometheus_notifications_sent_total"],
  /**
   * The OpenTelemetry Collector's own telemetry (k8s/src/charts/monitoring/otel-collector.ts), where the environment
   * keeps its traces in Cloud Trace. The names are the collector's at the pinned version (config/src/images.ts), as
   * its Prometheus reader exports them: counters without `_total`. test/live-prometheus.test.ts scrapes a real one.
   * `otelcol_exporter_send_failed_spans` exists only once an export has failed.
   */
  "otel-collector": ["up", "otelcol_receiver_accepted_spans", "otelcol_receiver_refused_spans", "otelcol_exporter_sent_spans", "otelcol_exporter_send_failed_spans"],
  /** Alertmanager's replicas: whether notifications reach the receiver */
  alertmanager: ["up", "alertmanager_notifications_total", "alertmanager_notifications_failed_total", "alertmanager_cluster_members"],
} as const;

export type ScrapeJob = keyof typeof SCRAPE_JOBS;

/** Every metric some target exports, plus the recording rules' outputs. */
export function knownMetrics(recorded: readonly string[] = []): Set<string> {
  return new Set([...Object.values(SCRAPE_JOBS).flat(), ...recorded]);
}
