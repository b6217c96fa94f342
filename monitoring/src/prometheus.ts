import { PORTS, platformNames, type EnvironmentConfig } from "@platform/config";
import { ALERTMANAGER, alertmanagerPeers } from "./alertmanager.js";
import type { ScrapeJob } from "./catalog.js";
import { NODE_EXPORTER_PORT, POSTGRES_EXPORTER_PORT, REDIS_EXPORTER_PORT } from "./exporter-queries.js";

export const RULES_DIR = "/etc/prometheus/rules";
export const PROMETHEUS_PORT = PORTS.prometheus;
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

/** prometheus.yml for one environment: Kubernetes pod discovery for the workloads, the Citus VMs by DNS name. */
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
      { job_name: "redis", static_configs: [{ targets: [`redis-exporter.${config.kubernetes.redisExporter.namespace}.svc.cluster.local:${REDIS_EXPORTER_PORT}`] }] },
      // The alert path itself: a Prometheus that cannot evaluate rules or reach Alertmanager, or an Alertmanager
      // whose receiver rejects it, is otherwise silent.
      { job_name: "prometheus", static_configs: [{ targets: [`localhost:${PROMETHEUS_PORT}`] }] },
      { job_name: "alertmanager", static_configs: [{ targets: alertmanagerPeers(config, ALERTMANAGER.port) }] },
    ],
  };
}
