import { PORTS, platformNames, runsCitusCluster, type EnvironmentConfig } from "@platform/config";
import { ALERTMANAGER, alertmanagerPeers } from "./alertmanager.js";
import type { ScrapeJob } from "./catalog.js";
import { NODE_EXPORTER_PORT, POSTGRES_EXPORTER_PORT, REDIS_EXPORTER_PORT } from "./exporter-queries.js";
import { kubernetesScrapeJobs } from "./kubernetes-scrape.js";
import { hasOtelCollector } from "./otel-collector-rules.js";

export const RULES_DIR = "/etc/prometheus/rules";
export const PROMETHEUS_PORT = PORTS.prometheus;
export const PATRONI_PORT = PORTS.patroniRestApi;
export { POSTGRES_EXPORTER_PORT, NODE_EXPORTER_PORT, REDIS_EXPORTER_PORT };

/** Pods that opt in with prometheus.io/scrape, in one namespace, one app label: the charts' annotations. */
function podJob(job: ScrapeJob, namespace: string, app: string) {
  return {
    job_name: job,
    kubernetes_sd_configs: [{ role: "pod", namespaces: { names: [namespace] } }],
    relabel_configs: [
      { source_labels: ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], regex: app, action: "keep" },
      { source_labels: ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], regex: "true", action: "keep" },
      { source_labels: ["__meta_kubernetes_pod_annotation_prometheus_io_path"], regex: "(.+)", target_label: "__metrics_path__" },
      {
        source_labels: ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
        regex: "([^:]+)(?::\\d+)?;(\\d+)",
        replacement: "$1:$2",
        target_label: "__address__",
      },
      { source_labels: ["__meta_kubernetes_pod_name"], target_label: "pod" },
      { source_labels: ["__meta_kubernetes_namespace"], target_label: "namespace" },
    ],
  };
}

/**
 * prometheus.yml for one environment: Kubernetes pod discovery for the workloads; every Citus VM by its own DNS name
 * for its exporters and for Patroni's REST API.
 *
 * Each VM is a member of a Patroni group, and either member may lead, so the targets are the members' own names, never
 * a node's client name (the coordinator's is its load balancer's, which forwards PostgreSQL only). The members are
 * known from the config, so no discovery (and no Google permission for Prometheus) is needed. Labels: `citus_group`
 * (0 the coordinator, as Patroni's Citus mode numbers them), `citus_node` (the node's client name, shared by its
 * members, so rules can join a pair), `standby` ("true" on the second VM of a pair: which one, not its role now) and
 * `instance` (the VM's name, which is the Patroni member's name in patronictl, so alerts name what runbooks act on).
 */
export function prometheusConfig(config: EnvironmentConfig) {
  const names = platformNames(config);
  const members = [names.citus.coordinator, ...names.citus.workers].flatMap((n) => [
    { vm: n.member, role: n.role, group: n.group, standby: "false", node: n.host },
    ...(n.standby ? [{ vm: n.standby, role: n.role, group: n.group, standby: "true", node: n.host }] : []),
  ]);
  const vmJob = (job: ScrapeJob, port: number) => ({
    job_name: job,
    static_configs: members.map((m) => ({
      targets: [`${m.vm.host}:${port}`],
      labels: { instance: m.vm.instance, citus_role: m.role, citus_group: String(m.group), standby: m.standby, citus_node: m.node },
    })),
  });
  return {
    global: { scrape_interval: "30s", scrape_timeout: "10s", evaluation_interval: "30s", external_labels: { environment: config.name } },
    rule_files: [`${RULES_DIR}/*.yml`],
    // Every Prometheus replica sends to every Alertmanager replica; they deduplicate among themselves.
    alerting: { alertmanagers: [{ static_configs: [{ targets: alertmanagerPeers(config, ALERTMANAGER.port) }] }] },
    scrape_configs: [
      podJob("tenant-service", config.kubernetes.tenantService.namespace, "tenant-service"),
      podJob("tenant-worker", config.kubernetes.tenantWorker.namespace, "tenant-worker"),
      podJob("kong", config.kubernetes.gateway.namespace, "kong"),
      podJob("hydra", config.kubernetes.hydra.namespace, "hydra"),
      // The trace pipeline's own health, where there is one to watch (src/otel-collector-rules.ts).
      ...(hasOtelCollector(config) ? [podJob("otel-collector", config.kubernetes.otelCollector.namespace, "otel-collector")] : []),
      // The Citus VMs' exporters and Patroni, wherever the Citus cluster runs (as the engine or beside Cloud SQL): none
      // with the postgres engine alone, whose Cloud SQL reports to Cloud Monitoring.
      ...(runsCitusCluster(config) ? [vmJob("citus-postgres", POSTGRES_EXPORTER_PORT), vmJob("citus-node", NODE_EXPORTER_PORT), vmJob("patroni", PATRONI_PORT)] : []),
      { job_name: "redis", static_configs: [{ targets: [`redis-exporter.${config.kubernetes.redisExporter.namespace}.svc.cluster.local:${REDIS_EXPORTER_PORT}`] }] },
      // The alert path itself: a Prometheus that cannot evaluate rules or reach Alertmanager, or an Alertmanager
      // whose receiver rejects it, is otherwise silent.
      { job_name: "prometheus", static_configs: [{ targets: [`localhost:${PROMETHEUS_PORT}`] }] },
      { job_name: "alertmanager", static_configs: [{ targets: alertmanagerPeers(config, ALERTMANAGER.port) }] },
      // The cluster itself: kube-state-metrics, the kubelets and cAdvisor (src/kubernetes-scrape.ts).
      ...kubernetesScrapeJobs(config),
    ],
  };
}
