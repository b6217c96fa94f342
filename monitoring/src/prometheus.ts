import { PORTS, platformNames, type EnvironmentConfig } from "@platform/config";
import { ALERTMANAGER, alertmanagerPeers } from "./alertmanager.js";
import type { ScrapeJob } from "./catalog.js";
import { NODE_EXPORTER_PORT, POSTGRES_EXPORTER_PORT, REDIS_EXPORTER_PORT } from "./exporter-queries.js";

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
 * Patroni's REST API on every Citus VM, found by GCE discovery rather than by DNS name: with Patroni any member of a
 * group may lead, and the group a VM belongs to is its `citus-group` label (0 the coordinator), which becomes the
 * `citus_group` label the rules group by. One discovery per zone of the region (GCE discovery lists one zone), and
 * only this environment's Citus VMs: the API filter takes the labelled VMs, the relabelling keeps this prefix's.
 * Prometheus needs compute.instances.list in the project for it (roles/compute.viewer).
 */
function patroniJob(config: EnvironmentConfig) {
  return {
    job_name: "patroni" satisfies ScrapeJob,
    gce_sd_configs: config.gcp.zones.map((zone) => ({ project: config.gcp.projectId, zone, port: PATRONI_PORT, filter: "labels.citus-group:*" })),
    relabel_configs: [
      { source_labels: ["__meta_gce_instance_name"], regex: `${config.prefix}-citus-.+`, action: "keep" },
      { source_labels: ["__meta_gce_label_citus_group"], target_label: "citus_group" },
      // The VM's name is the Patroni member's name (patronictl list), so alerts name what the runbooks act on.
      { source_labels: ["__meta_gce_instance_name"], target_label: "instance" },
      { source_labels: ["__meta_gce_zone"], regex: ".*/zones/([^/]+)", target_label: "zone" },
    ],
  };
}

/** prometheus.yml for one environment: Kubernetes pod discovery for the workloads, the Citus VMs by DNS name, Patroni on them by GCE discovery. */
export function prometheusConfig(config: EnvironmentConfig) {
  const names = platformNames(config);
  // citus_node (the primary's DNS name) is shared by a primary and its standby, so rules can join a pair.
  const nodes = [names.citus.coordinator, ...names.citus.workers].flatMap((n) => [
    { host: n.host, role: n.role, standby: "false", node: n.host },
    ...(n.standby ? [{ host: n.standby.host, role: n.role, standby: "true", node: n.host }] : []),
  ]);
  const vmJob = (job: ScrapeJob, port: number) => ({
    job_name: job,
    static_configs: nodes.map((n) => ({ targets: [`${n.host}:${port}`], labels: { citus_role: n.role, standby: n.standby, citus_node: n.node } })),
    relabel_configs: [{ source_labels: ["__address__"], regex: "([^:]+):\\d+", target_label: "instance" }],
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
      vmJob("citus-postgres", POSTGRES_EXPORTER_PORT),
      vmJob("citus-node", NODE_EXPORTER_PORT),
      patroniJob(config),
      { job_name: "redis", static_configs: [{ targets: [`redis-exporter.${config.kubernetes.redisExporter.namespace}.svc.cluster.local:${REDIS_EXPORTER_PORT}`] }] },
      // The alert path itself: a Prometheus that cannot evaluate rules or reach Alertmanager, or an Alertmanager
      // whose receiver rejects it, is otherwise silent.
      { job_name: "prometheus", static_configs: [{ targets: [`localhost:${PROMETHEUS_PORT}`] }] },
      { job_name: "alertmanager", static_configs: [{ targets: alertmanagerPeers(config, ALERTMANAGER.port) }] },
    ],
  };
}
