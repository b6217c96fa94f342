import { Construct } from "constructs";
import { imageRef } from "@platform/config";
import { KUBE_STATE_METRICS_PORT } from "@platform/monitoring";
import { IntOrString, KubeClusterRole, KubeClusterRoleBinding, KubeDeployment, KubePodDisruptionBudget, KubeService, KubeServiceAccount } from "../../k8s.js";
import { hardenedPodTemplate, tokenExemption, type HardenedPodProps } from "../../constructs/hardened-deployment.js";
import { WorkloadNetworkPolicy, addresses, localPods, tcp } from "../../constructs/network-policy.js";
import { PULL_POLICY_EXCEPTION, engineExceptionAnnotations } from "../../policy/exceptions.js";
import { PRIORITY_CLASSES, controllerLabels, selectorOf, type ChartContext, type WorkloadIdentity } from "../../topology.js";

/** Not in the config's workload table: it has no Google identity and lives in the monitoring namespace. */
export const KUBE_STATE_METRICS: WorkloadIdentity & { readonly serviceAccount: string } = {
  name: "kube-state-metrics",
  component: "exporter",
  partOf: "monitoring",
  serviceAccount: "kube-state-metrics",
};

/** Its own telemetry and readiness (`/readyz`); the objects' metrics and liveness are on KUBE_STATE_METRICS_PORT. */
const TELEMETRY_PORT = KUBE_STATE_METRICS_PORT + 1;

/**
 * What kube-state-metrics reads, and so exports: only what the Kubernetes alerts and the workloads dashboard use
 * (monitoring/src/kubernetes-rules.ts). No Secrets or ConfigMaps: list on Secrets would read every credential in
 * the cluster, and no rule needs them.
 */
const RESOURCES = [
  { apiGroup: "", resources: ["nodes", "pods", "persistentvolumeclaims"] },
  { apiGroup: "apps", resources: ["deployments", "statefulsets", "daemonsets", "replicasets"] },
  { apiGroup: "batch", resources: ["jobs", "cronjobs"] },
  { apiGroup: "autoscaling", resources: ["horizontalpodautoscalers"] },
] as const;

export interface KubeStateMetricsProps {
  /** @default 2: each replica exports every object; Prometheus scrapes the Service, so one answering is enough */
  readonly replicas?: number;
  /** @default 50m CPU and 128Mi requested, 200m and 256Mi at most: a few thousand objects */
  readonly resources?: { cpuRequest: string; cpuLimit: string; memoryRequest: string; memoryLimit: string; ephemeralStorage: string };
}

/**
 * kube-state-metrics: the Kubernetes objects' state as metrics (pods, Deployments, StatefulSets, HPAs, Jobs,
 * nodes), for the Kubernetes alerts. Its ServiceAccount may list and watch those kinds and nothing else
 * (ClusterRole platform-kube-state-metrics); its NetworkPolicy lets Prometheus scrape it and it reach the API server.
 * Two replicas behind a Service, no autoscaler: the work is the cluster's object count, not traffic.
 */
export class KubeStateMetrics extends Construct {
  readonly selector: Record<string, string>;

  constructor(scope: Construct, id: string, ctx: ChartContext, props: KubeStateMetricsProps = {}) {
    super(scope, id);
    const { config, peers } = ctx;
    const namespace = config.kubernetes.prometheus.namespace;
    const replicas = props.replicas ?? 2;
    if (replicas < 2) throw new Error(`kube-state-metrics: replicas must be 2 or more (got ${replicas}): the Kubernetes alerts go blind with its one pod`);
    this.selector = selectorOf(KUBE_STATE_METRICS);
    const labels = controllerLabels(KUBE_STATE_METRICS);
    const metadata = { name: KUBE_STATE_METRICS.name, namespace, labels };

    new KubeServiceAccount(this, "Account", { metadata: { name: KUBE_STATE_METRICS.serviceAccount, namespace, labels }, automountServiceAccountToken: true });
    new KubeClusterRole(this, "Role", {
      metadata: { name: "platform-kube-state-metrics", labels },
      rules: RESOURCES.map((r) => ({ apiGroups: [r.apiGroup], resources: [...r.resources], verbs: ["list", "watch"] })),
    });
    new KubeClusterRoleBinding(this, "Binding", {
      metadata: { name: "platform-kube-state-metrics", labels },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "platform-kube-state-metrics" },
      subjects: [{ kind: "ServiceAccount", name: KUBE_STATE_METRICS.serviceAccount, namespace }],
    });

    const pod: HardenedPodProps = {
      priorityClassName: PRIORITY_CLASSES.batch.name,
      serviceAccount: { name: KUBE_STATE_METRICS.serviceAccount, automountToken: true, apiAccessReason: "kube-state-metrics lists and watches the objects it reports (read-only ClusterRole platform-kube-state-metrics)" },
      container: {
        name: "kube-state-metrics",
        image: imageRef("kubeStateMetrics"),
        args: [`--port=${KUBE_STATE_METRICS_PORT}`, `--telemetry-port=${TELEMETRY_PORT}`, `--resources=${RESOURCES.flatMap((r) => r.resources).sort().join(",")}`],
        ports: [
          { name: "http-metrics", containerPort: KUBE_STATE_METRICS_PORT },
          { name: "telemetry", containerPort: TELEMETRY_PORT },
        ],
        resources: props.resources ?? { cpuRequest: "50m", cpuLimit: "200m", memoryRequest: "128Mi", memoryLimit: "256Mi", ephemeralStorage: "16Mi" },
        // As its own manifests probe it: alive while it serves, ready once its informers have synced.
        liveness: { path: "/livez", port: KUBE_STATE_METRICS_PORT },
        readiness: { path: "/readyz", port: TELEMETRY_PORT },
      },
    };
    new KubeDeployment(this, "Deployment", {
      metadata: { ...metadata, annotations: { ...tokenExemption(pod), ...engineExceptionAnnotations(PULL_POLICY_EXCEPTION) } },
      spec: {
        replicas,
        selector: { matchLabels: this.selector },
        revisionHistoryLimit: 5,
        strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: IntOrString.fromNumber(1), maxUnavailable: IntOrString.fromNumber(0) } },
        template: hardenedPodTemplate(pod, labels, this.selector),
      },
    });
    new KubePodDisruptionBudget(this, "DisruptionBudget", {
      metadata,
      spec: { maxUnavailable: IntOrString.fromNumber(1), selector: { matchLabels: this.selector }, unhealthyPodEvictionPolicy: "AlwaysAllow" },
    });
    // monitoring/src/kubernetes-scrape.ts scrapes kube-state-metrics.<namespace>.svc on this port.
    new KubeService(this, "Service", {
      metadata,
      spec: { type: "ClusterIP", selector: this.selector, ports: [{ name: "http-metrics", port: KUBE_STATE_METRICS_PORT, targetPort: IntOrString.fromString("http-metrics"), protocol: "TCP" }] },
    });
    new WorkloadNetworkPolicy(this, "NetworkPolicy", {
      namespace,
      name: KUBE_STATE_METRICS.name,
      selector: this.selector,
      ingress: [{ peers: [localPods(peers.prometheus.selector)], ports: [tcp(KUBE_STATE_METRICS_PORT)] }],
      // The Kubernetes API on the private control plane.
      egress: [{ peers: [addresses(config.network.controlPlaneCidr)], ports: [tcp(443)] }],
    });
  }
}
