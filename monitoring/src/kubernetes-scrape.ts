/**
 * Scrape jobs for the Kubernetes layer: kube-state-metrics (the objects' state: pods, Deployments, StatefulSets,
 * HPAs, Jobs, nodes) and each node's kubelet (volume usage) and cAdvisor (containers' CPU and memory).
 */
import type { EnvironmentConfig } from "@platform/config";
import type { ScrapeJob } from "./catalog.js";

/** kube-state-metrics' metrics port (its own telemetry is on the next one, not scraped). */
export const KUBE_STATE_METRICS_PORT = 8080;
/** The API server as every pod reaches it: its in-cluster Service, whose certificate the cluster CA verifies. */
export const API_SERVER_ADDRESS = "kubernetes.default.svc:443";
/** What Prometheus's pod token and the cluster CA are mounted as. */
const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** cAdvisor's metrics the dashboards read; the rest (per-cgroup filesystem, network, tasks) are dropped at scrape. */
export const CADVISOR_KEPT = ["container_cpu_usage_seconds_total", "container_memory_working_set_bytes"] as const;

/**
 * The kubelets, found by node discovery and scraped through the API server's node proxy
 * (/api/v1/nodes/<node>/proxy/metrics and /metrics/cadvisor), as Prometheus's own Kubernetes example does, with
 * Prometheus's token (nodes/proxy get) and the cluster CA. Not at the node's address on the kubelet port: on GKE
 * Dataplane V2 (Cilium, the cluster's datapath) a NetworkPolicy ipBlock does not match the nodes' own addresses,
 * which Cilium gives the reserved host and remote-node identities, and GKE offers no setting to change that, so a
 * direct scrape is dropped however the policy is written. The API server is on the private control plane, which
 * Prometheus already reaches for discovery; its certificate is verified, where the kubelet's own would not be.
 * The cost, kept small: nodes/proxy (k8s/src/charts/monitoring/kubernetes-scraping.ts, docs/OBSERVABILITY.md).
 */
function kubeletJob(job: ScrapeJob, kubeletPath: string, keep?: readonly string[]) {
  return {
    job_name: job,
    scheme: "https",
    authorization: { credentials_file: `${SERVICE_ACCOUNT_DIR}/token` },
    tls_config: { ca_file: `${SERVICE_ACCOUNT_DIR}/ca.crt` },
    kubernetes_sd_configs: [{ role: "node" }],
    relabel_configs: [
      { source_labels: ["__meta_kubernetes_node_name"], target_label: "node" },
      // Every target is the API server; the node is in the path, and names the target.
      { source_labels: ["__meta_kubernetes_node_name"], target_label: "instance" },
      { target_label: "__address__", replacement: API_SERVER_ADDRESS },
      { source_labels: ["__meta_kubernetes_node_name"], regex: "(.+)", target_label: "__metrics_path__", replacement: `/api/v1/nodes/$1/proxy${kubeletPath}` },
    ],
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
