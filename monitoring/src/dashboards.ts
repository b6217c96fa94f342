import { createRequire } from "node:module";
import { requireCommonJs } from "@platform/cli/commonjs";
import type * as DashboardSdk from "@grafana/grafana-foundation-sdk/dashboard";
import type * as PrometheusSdk from "@grafana/grafana-foundation-sdk/prometheus";
import type * as StatSdk from "@grafana/grafana-foundation-sdk/stat";
import type * as TableSdk from "@grafana/grafana-foundation-sdk/table";
import type * as TimeseriesSdk from "@grafana/grafana-foundation-sdk/timeseries";
import { SLOW_QUERY } from "./rules.js";

/**
 * The Grafana SDK is ~240 small CommonJS files, each with a .js.map beside it: required past tsx's hook and with
 * source maps off (@platform/cli/commonjs), it loads in half the time, in every layer's synthesis (`pnpm bench:synth`).
 * Each id is written out: the main job's bundle inlines only a literal (scripts/bundle/).
 */
const requireHere = createRequire(import.meta.url);
const { DashboardBuilder, DashboardCursorSync, QueryVariableBuilder, RowBuilder } = requireCommonJs(requireHere, "@grafana/grafana-foundation-sdk/dashboard") as typeof DashboardSdk;
type Dashboard = DashboardSdk.Dashboard;
const { DataqueryBuilder, PromQueryFormat } = requireCommonJs(requireHere, "@grafana/grafana-foundation-sdk/prometheus") as typeof PrometheusSdk;
type DataqueryBuilder = PrometheusSdk.DataqueryBuilder;
const { PanelBuilder: StatPanel } = requireCommonJs(requireHere, "@grafana/grafana-foundation-sdk/stat") as typeof StatSdk;
const { PanelBuilder: TablePanel } = requireCommonJs(requireHere, "@grafana/grafana-foundation-sdk/table") as typeof TableSdk;
const { PanelBuilder: TimeseriesPanel } = requireCommonJs(requireHere, "@grafana/grafana-foundation-sdk/timeseries") as typeof TimeseriesSdk;

/** The provisioned Prometheus datasource's uid (the Grafana chart provisions it with this uid). */
export const PROMETHEUS_DATASOURCE = { type: "prometheus", uid: "prometheus" };
/** The Citus health dashboard's uid: the Citus engine's only (monitoring/src/render.ts). */
export const CITUS_DASHBOARD = "platform-citus";

const query = (expr: string, legend?: string) => {
  const q = new DataqueryBuilder().expr(expr).datasource(PROMETHEUS_DATASOURCE);
  return legend ? q.legendFormat(legend) : q;
};

const timeseries = (title: string, unit: string, ...targets: DataqueryBuilder[]) => {
  let panel = new TimeseriesPanel().title(title).unit(unit).datasource(PROMETHEUS_DATASOURCE).height(8).span(12);
  for (const t of targets) panel = panel.withTarget(t);
  return panel;
};

const stat = (title: string, unit: string, expr: string) =>
  new StatPanel().title(title).unit(unit).datasource(PROMETHEUS_DATASOURCE).height(4).span(6).withTarget(query(expr));

const base = (uid: string, title: string, tags: string[]) =>
  new DashboardBuilder(title).uid(uid).tags(["platform", ...tags]).refresh("1m").time({ from: "now-6h", to: "now" }).timezone("utc").tooltip(DashboardCursorSync.Crosshair).editable();

/** Request rate, errors and latency of the tenant service and the worker's jobs. */
function apiOverview(): Dashboard {
  return base("platform-api-overview", "Platform / API overview", ["api"])
    .withRow(new RowBuilder("Golden signals"))
    .withPanel(stat("Requests/s", "reqps", "sum(job:http_requests:rate5m)"))
    .withPanel(stat("Error ratio", "percentunit", "sum(job:http_requests_errors:rate5m) / sum(job:http_requests:rate5m)"))
    .withPanel(stat("p99 latency", "s", "max(job:http_request_duration_seconds:p99_rate5m)"))
    .withPanel(stat("Replicas up", "none", 'sum(up{job="tenant-service"})'))
    .withPanel(timeseries("Requests by route and status", "reqps", query("sum by (route, status) (route:http_requests:rate5m)", "{{route}} {{status}}")))
    .withPanel(
      timeseries(
        "Latency percentiles",
        "s",
        query('histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket{job="tenant-service"}[$__rate_interval])))', "p50"),
        query('histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{job="tenant-service"}[$__rate_interval])))', "p99"),
      ),
    )
    .withRow(new RowBuilder("Capacity"))
    .withPanel(timeseries("Database pool in use (per pod)", "percentunit", query("instance:db_pool:utilization", "{{pod}}")))
    .withPanel(timeseries("Requests waiting for a connection", "none", query('sum by (pod) (db_pool_waiting_clients{job="tenant-service"})', "{{pod}}")))
    // A lost Citus worker shows here: 503s by cause (57014, then node_busy), its node quarantined, and the connections
    // whose ROLLBACK it left unanswered (services/tenant-service/README.md, "A bulkhead per Citus node").
    .withPanel(timeseries("503s for a database node away, by cause", "reqps", query('sum by (cause) (rate(db_unavailable_total{job="tenant-service"}[$__rate_interval]))', "{{cause}}")))
    .withPanel(
      timeseries(
        "Citus nodes quarantined, connections after an unanswered ROLLBACK",
        "none",
        query('max(db_pool_nodes_quarantined{job="tenant-service"})', "nodes quarantined (most on one pod)"),
        query('sum by (state) (db_pool_connections_after_unanswered_rollback{job="tenant-service"})', "connections {{state}}"),
      ),
    )
    .withPanel(timeseries("Refused requests by reason", "reqps", query('sum by (reason) (rate(tenant_requests_rejected_total{job="tenant-service"}[$__rate_interval]))', "{{reason}}")))
    .withPanel(timeseries("Rate-limit leases from Redis by result", "ops", query('sum by (result) (rate(rate_limit_lease_renewals_total{job="tenant-service"}[$__rate_interval]))', "{{result}}")))
    .withPanel(timeseries("Worker jobs", "ops", query('sum by (task, outcome) (rate(worker_jobs_total{job="tenant-worker"}[$__rate_interval]))', "{{task}} {{outcome}}")))
    // Worker processes that died without a graceful stop, their jobs released to run again: WorkersDying.
    .withPanel(timeseries("Worker processes found dead, per hour", "none", query('sum(increase(worker_processes_found_dead_total{job="tenant-worker"}[1h]))', "dead")))
    // A worker that dies mid-export shows here (stale) before any job fails: ExportsGivenUp.
    .withPanel(timeseries("Exports given up, per hour", "none", query('sum by (reason) (increase(exports_given_up_total{job="tenant-service"}[1h]) or increase(exports_given_up_total{job="tenant-worker"}[1h]))', "{{reason}}")))
    .build();
}

/** The busiest tenants (citus_stat_tenants), and one tenant picked with $tenant. */
function tenants(): Dashboard {
  const top = new TablePanel()
    .title("Busiest tenants (last period)")
    .datasource(PROMETHEUS_DATASOURCE)
    .height(10)
    .span(24)
    .withTarget(query("topk(20, sum by (tenant) (citus_stat_tenants_queries))").format(PromQueryFormat.Table).instant());
  return base("platform-tenants", "Platform / Tenants", ["tenants"])
    .withVariable(new QueryVariableBuilder("tenant").label("Tenant").query("label_values(citus_stat_tenants_queries, tenant)").datasource(PROMETHEUS_DATASOURCE))
    .withPanel(top)
    .withPanel(timeseries("Queries of $tenant", "none", query('sum by (tenant) (citus_stat_tenants_queries{tenant="$tenant"})', "queries")))
    .withPanel(timeseries("CPU of $tenant", "s", query('sum by (tenant) (citus_stat_tenants_cpu_seconds{tenant="$tenant"})', "cpu")))
    .build();
}

/** Shard placement, skew, replication, backups and disks of the Citus cluster. */
function citusHealth(): Dashboard {
  return base(CITUS_DASHBOARD, "Platform / Citus health", ["citus"])
    .withPanel(stat("Shard skew (max / mean bytes)", "none", "citus:shard_bytes:skew"))
    .withPanel(stat("Nodes up", "none", 'sum(pg_up{job="citus-postgres"})'))
    .withPanel(stat("Failed rebalances (24 h)", "none", 'sum(citus_background_jobs_recent{status="failed"})'))
    .withPanel(stat("Max replication lag", "s", "max(pg_replication_lag_seconds)"))
    // The age of each stanza's newest backup, worst first: CitusBackupTooOld fires past 36 hours.
    .withPanel(stat("Oldest latest backup", "s", "max(time() - max by (stanza) (pgbackrest_backup_last_completion_timestamp_seconds))"))
    .withPanel(stat("WAL archive failures (1 h)", "none", "sum(increase(pg_archiver_failed[1h]))"))
    // How far back the newest consistent whole-cluster restore target is (docs/runbooks/restore-points.md).
    .withPanel(stat("Newest restore point age", "s", "time() - max(citus_restore_point_last_timestamp_seconds)"))
    .withPanel(timeseries("Shard bytes per node", "bytes", query("citus_node_shard_bytes", "{{node}}")))
    .withPanel(timeseries("Shards per node", "none", query("citus_node_shards", "{{node}}")))
    .withPanel(timeseries("Replication lag", "s", query("pg_replication_lag_seconds", "{{instance}} → {{application_name}}")))
    .withPanel(timeseries("Standby slot reserve (share of max_slot_wal_keep_size)", "percentunit", query("standby_slot_safe_wal_ratio", "{{instance}}")))
    // Patroni (each Citus group a Patroni cluster): who leads each group, and how far each replica is behind its
    // leader in the terms CitusReplicaBehindFailoverLimit uses (the further of received and replayed WAL).
    .withPanel(stat("Groups without a leader", "none", 'count(group by (citus_group) (up{job="patroni"}) unless on (citus_group) (patroni_primary{job="patroni"} == 1)) or vector(0)'))
    .withPanel(stat("Promotions (24 h)", "none", 'sum(changes((max by (citus_group) (patroni_postgres_timeline{job="patroni"} > 0))[24h:1m])) or vector(0)'))
    .withPanel(timeseries("Patroni leader per group (1 = leads)", "none", query('patroni_primary{job="patroni"}', "group {{citus_group}} {{instance}}")))
    .withPanel(
      timeseries(
        "Replica behind its group's leader",
        "bytes",
        query(
          'max by (citus_group) (patroni_xlog_location{job="patroni"}) - on (citus_group) group_right () ((patroni_xlog_received_location{job="patroni"} > patroni_xlog_replayed_location{job="patroni"} or patroni_xlog_replayed_location{job="patroni"}) and on (instance) patroni_replica{job="patroni"} == 1)',
          "group {{citus_group}} {{instance}}",
        ),
      ),
    )
    .withPanel(
      timeseries(
        "Data disk free",
        "percentunit",
        query('node_filesystem_avail_bytes{job="citus-node",mountpoint="/var/lib/postgresql"} / node_filesystem_size_bytes{job="citus-node",mountpoint="/var/lib/postgresql"}', "{{instance}}"),
      ),
    )
    .withPanel(
      timeseries("Age of the newest backup", "s", query("time() - max by (stanza) (pgbackrest_backup_last_completion_timestamp_seconds)", "{{stanza}}")),
    )
    .withPanel(timeseries("Connections", "none", query('sum by (instance) (pg_stat_database_numbackends{job="citus-postgres"})', "{{instance}}")))
    // Each node's heaviest statements (pg_top_statements, 20 per node): where its execution time goes now, and which
    // are slow per call (CitusSlowQuery). The text is on the node: docs/runbooks/slow-query.md.
    .withPanel(
      new TablePanel()
        .title("Top statements by execution time (share of a second, per node)")
        .datasource(PROMETHEUS_DATASOURCE)
        .height(10)
        .span(24)
        .withTarget(query(`topk(20, ${SLOW_QUERY.byStatement('rate(pg_top_statements_exec_seconds{job="citus-postgres"}[$__rate_interval])')})`).format(PromQueryFormat.Table).instant()),
    )
    .withPanel(
      timeseries(
        "Mean time per call of the top statements",
        "s",
        query(
          `${SLOW_QUERY.byStatement('rate(pg_top_statements_exec_seconds{job="citus-postgres"}[$__rate_interval])')} / ${SLOW_QUERY.byStatement('rate(pg_top_statements_calls{job="citus-postgres"}[$__rate_interval])')}`,
          "{{instance}} {{queryid}}",
        ),
      ),
    )
    .withPanel(timeseries("Redis memory used", "percentunit", query('redis_memory_used_bytes{job="redis"} / (redis_memory_max_bytes{job="redis"} > 0)', "redis")))
    .build();
}

/**
 * The business view: tenants by plan and status, and how many arrive (platform_tenants, from the coordinator; a
 * worker holds the same reference table, and a standby the same data, hence max).
 */
function business(): Dashboard {
  // max by (plan, status): one value per combination however many nodes report it.
  const counts = (metric: string, status?: string) =>
    `max by (plan, status) (platform_tenants_${metric}{job="citus-postgres",citus_role="coordinator"${status ? `,status="${status}"` : ""}})`;
  return base("platform-business", "Platform / Business", ["business"])
    .withPanel(stat("Tenants", "none", `sum(${counts("tenants")})`))
    .withPanel(stat("Active tenants", "none", `sum(${counts("tenants", "active")})`))
    .withPanel(stat("Suspended tenants", "none", `sum(${counts("tenants", "suspended")})`))
    .withPanel(stat("Tenants created (24 h)", "none", `sum(${counts("created_last_day")})`))
    .withPanel(timeseries("Active tenants per plan", "none", query(`sum by (plan) (${counts("tenants", "active")})`, "{{plan}}")))
    .withPanel(timeseries("Suspended tenants per plan", "none", query(`sum by (plan) (${counts("tenants", "suspended")})`, "{{plan}}")))
    .withPanel(timeseries("Tenants created in the last hour, per plan", "none", query(`sum by (plan) (${counts("created_last_hour")})`, "{{plan}}")))
    .build();
}

/**
 * The Kubernetes layer for the platform's namespaces ($namespace): what is not ready or crashing, replicas against
 * what each controller wants, autoscalers against their maximum, CPU and memory per pod, volumes (kube-state-metrics,
 * the kubelets, cAdvisor).
 */
function kubernetesWorkloads(): Dashboard {
  const ksm = (metric: string, extra = "") => `${metric}{job="kube-state-metrics",namespace=~"$namespace"${extra}}`;
  const kubelet = (metric: string) => `${metric}{job="kubelet",namespace=~"$namespace"}`;
  return base("platform-kubernetes", "Platform / Kubernetes workloads", ["kubernetes"])
    .withVariable(
      new QueryVariableBuilder("namespace").label("Namespace").query('label_values(kube_deployment_spec_replicas{job="kube-state-metrics"}, namespace)').datasource(PROMETHEUS_DATASOURCE).multi(true).includeAll(true),
    )
    .withPanel(stat("Pods not ready", "none", `sum(${ksm("kube_pod_status_ready", ',condition="false"')}) or vector(0)`))
    .withPanel(stat("Containers crash looping", "none", `count(${ksm("kube_pod_container_status_waiting_reason", ',reason="CrashLoopBackOff"')} == 1) or vector(0)`))
    .withPanel(stat("Failed Jobs", "none", `sum(${ksm("kube_job_failed")}) or vector(0)`))
    .withPanel(stat("Nodes not ready", "none", 'count(kube_node_status_condition{job="kube-state-metrics",condition="Ready",status="true"} == 0) or vector(0)'))
    .withPanel(
      timeseries(
        "Deployments: available of desired replicas",
        "percentunit",
        query(`${ksm("kube_deployment_status_replicas_available")} / on (namespace, deployment) ${ksm("kube_deployment_spec_replicas")}`, "{{namespace}}/{{deployment}}"),
      ),
    )
    .withPanel(
      timeseries(
        "StatefulSets: ready of their replicas",
        "percentunit",
        query(`${ksm("kube_statefulset_status_replicas_ready")} / on (namespace, statefulset) ${ksm("kube_statefulset_status_replicas")}`, "{{namespace}}/{{statefulset}}"),
      ),
    )
    // KubeHpaMaxedOut fires when this stays at 1 for 15 minutes.
    .withPanel(
      timeseries(
        "Autoscalers: replicas of their maximum",
        "percentunit",
        query(`${ksm("kube_horizontalpodautoscaler_status_current_replicas")} / on (namespace, horizontalpodautoscaler) ${ksm("kube_horizontalpodautoscaler_spec_max_replicas")}`, "{{namespace}}/{{horizontalpodautoscaler}}"),
      ),
    )
    .withPanel(timeseries("Container restarts (1 h)", "none", query(`sum by (namespace, pod) (increase(${ksm("kube_pod_container_status_restarts_total")}[1h]))`, "{{namespace}}/{{pod}}")))
    .withPanel(
      timeseries("CPU per pod", "cores", query('sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{job="cadvisor",namespace=~"$namespace",container!=""}[$__rate_interval]))', "{{namespace}}/{{pod}}")),
    )
    .withPanel(timeseries("Memory per pod (working set)", "bytes", query('sum by (namespace, pod) (container_memory_working_set_bytes{job="cadvisor",namespace=~"$namespace",container!=""})', "{{namespace}}/{{pod}}")))
    .withPanel(
      timeseries("Persistent volumes used", "percentunit", query(`${kubelet("kubelet_volume_stats_used_bytes")} / ${kubelet("kubelet_volume_stats_capacity_bytes")}`, "{{namespace}}/{{persistentvolumeclaim}}")),
    )
    .build();
}

/** Traffic through Kong. */
function gateway(): Dashboard {
  return base("platform-gateway", "Platform / Gateway", ["gateway"])
    .withPanel(timeseries("Requests by status", "reqps", query('sum by (code) (rate(kong_http_requests_total{job="kong"}[$__rate_interval]))', "{{code}}")))
    .withPanel(
      timeseries("Latency p99", "ms", query('histogram_quantile(0.99, sum by (le) (rate(kong_request_latency_ms_bucket{job="kong"}[$__rate_interval])))', "p99")),
    )
    .withPanel(timeseries("Connections", "none", query('sum by (state) (kong_nginx_connections_total{job="kong"})', "{{state}}")))
    .build();
}

export function dashboards(): Dashboard[] {
  return [apiOverview(), tenants(), citusHealth(), business(), kubernetesWorkloads(), gateway()];
}
