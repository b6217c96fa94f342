/**
 * Scrape jobs for the Kubernetes layer: kube-state-metrics (the objects' state: pods, Deployments, StatefulSets,
 * HPAs, Jobs, nodes) and each node's kubelet (volume usage) and cAdvisor (containers' CPU and memory).
 */
import type { EnvironmentConfig } from "@platform/config";
import type { ScrapeJob } from "./catalog.js";

/** kube-state-metrics' metrics port (its own telemetry is on the next one, not scraped). */
export const KUBE_STATE_METRICS_PORT = 8080;
/** The kubelet's authenticated HTTPS port, where GKE serves /metrics and /metrics/cadvisor. */
export const KUBELET_PORT = 10250;
/** What Prometheus's pod token and the cluster CA are mounted as. */
const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** cAdvisor's metrics the dashboards read; the rest (per-cgroup filesystem, network, tasks) are dropped at scrape. */
export const CADVISOR_KEPT = ["container_cpu_usage_seconds_total", "container_memory_working_set_bytes"] as const;

/**
 * The kubelets, found by node discovery on the node's InternalIP and the kubelet port, authenticated with
 * Prometheus's own token (the kubelet asks the API server whether it may get nodes/metrics).
 * insecure_skip_verify, as kube-prometheus does for kubelets: a GKE kubelet's serving certificate is not one the
 * cluster CA verifies for the node's address. The token is still checked by the kubelet, and the path is the
 * cluster's own network.
 */
function kubeletJob(job: ScrapeJob, metricsPath: string, keep?: readonly string[]) {
  return {
    job_name: job,
    scheme: "https",
    metrics_path: metricsPath,
    authorization: { credentials_file: `${SERVICE_ACCOUNT_DIR}/token` },
    tls_config: { ca_file: `${SERVICE_ACCOUNT_DIR}/ca.crt`, insecure_skip_verify: true },
    kubernetes_sd_configs: [{ role: "node" }],
    relabel_configs: [{ source_labels: ["__meta_kubernetes_node_name"], target_label: "node" }],
    ...(keep ? { metric_relabel_configs: [{ source_labels: ["__name__"], regex: keep.join("|"), action: "keep" }] } : {}),
  };
}

export function kubernetesScrapeJobs(config: EnvironmentConfig) {
  return [
    // Through its Service: each of its replicas exports every object, so whichever answers, the series are the same
    // and never doubled.
    {
      job_name: "kube-state-metrics" satisfies ScrapeJob,
      static_configs: [{ targets: [`kube-state-metrics.${config.kubernetes.prometheus.namespace}.svc.cluster.local:${KUBE_STATE_METRICS_PORT}`] }],
    },
    kubeletJob("kubelet", "/metrics"),
    kubeletJob("cadvisor", "/metrics/cadvisor", CADVISOR_KEPT),
  ];
}
