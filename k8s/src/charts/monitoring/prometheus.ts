import { Construct } from "constructs";
import { imageRef, runsCitusCluster } from "@platform/config";
import { NODE_EXPORTER_PORT, POSTGRES_EXPORTER_PORT, PROMETHEUS_PORT, RULES_DIR } from "@platform/monitoring";
import { KubeClusterRole, KubeClusterRoleBinding, KubeConfigMap, KubeServiceAccount } from "../../k8s.js";
import { HardenedStatefulSet } from "../../constructs/hardened-statefulset.js";
import { WorkloadNetworkPolicy, addresses, localPods, namespaceOf, tcp } from "../../constructs/network-policy.js";
import { PORTS, PRIORITY_CLASSES, WORKLOADS, type ChartContext } from "../../topology.js";
import { OTEL_COLLECTOR_METRICS_PORT } from "./otel-collector.js";
import { NETWORK_POLICY_EXCEPTION } from "../../policy/exceptions.js";

export interface PrometheusProps {
  /** prometheus.yml and the rules file, rendered by @platform/monitoring. */
  readonly files: Readonly<Record<string, string>>;
  /** @default 500m CPU and 2Gi requested, 2 CPU and 4Gi at most: a few hundred thousand series */
  readonly resources?: { cpuRequest: string; cpuLimit: string; memoryRequest: string; memoryLimit: string; ephemeralStorage: string };
}

/**
 * Prometheus: replicas, storage and retention from `config.monitoring`, the scrape configuration and rules from
 * monitoring/, read-only access to the Kubernetes API for pod discovery, and a NetworkPolicy that opens exactly what
 * it scrapes: the workloads' metrics ports, the monitoring components, and the Citus VMs' exporters.
 */
export class Prometheus extends Construct {
  readonly selector: Record<string, string>;

  constructor(scope: Construct, id: string, ctx: ChartContext, props: PrometheusProps) {
    super(scope, id);
    const { config, peers } = ctx;
    const m = config.monitoring;
    const { namespace, serviceAccount } = config.kubernetes.prometheus;
    new KubeConfigMap(this, "Config", { metadata: { name: "prometheus-config", namespace }, data: { "prometheus.yml": props.files["prometheus.yml"]! } });
    new KubeConfigMap(this, "Rules", { metadata: { name: "prometheus-rules", namespace }, data: { "platform.rules.yml": props.files["platform.rules.yml"]! } });
    new KubeServiceAccount(this, "Account", { metadata: { name: serviceAccount, namespace }, automountServiceAccountToken: true });
    new KubeClusterRole(this, "Role", {
      metadata: { name: "platform-prometheus" },
      rules: [{ apiGroups: [""], resources: ["pods", "services", "endpoints"], verbs: ["get", "list", "watch"] }],
    });
    new KubeClusterRoleBinding(this, "Binding", {
      metadata: { name: "platform-prometheus" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "platform-prometheus" },
      subjects: [{ kind: "ServiceAccount", name: serviceAccount, namespace }],
    });
    const server = new HardenedStatefulSet(this, "Server", {
      exceptions: NETWORK_POLICY_EXCEPTION,
      namespace,
      ...WORKLOADS.prometheus,
      replicas: m.prometheusReplicas,
      singleReplicaReason: m.prometheusReplicas < 2 ? "set to one replica in the environment config (monitoring.prometheusReplicas)" : undefined,
      priorityClassName: PRIORITY_CLASSES.api.name,
      serviceAccount: { name: serviceAccount, automountToken: true, apiAccessReason: "Kubernetes service discovery lists pods (read-only ClusterRole platform-prometheus)" },
      storage: { mountPath: "/prometheus", sizeGi: m.prometheusStorageGi },
      service: { port: PROMETHEUS_PORT, targetPortName: "http" },
      extraVolumes: [
        { name: "config", configMap: { name: "prometheus-config" } },
        { name: "rules", configMap: { name: "prometheus-rules" } },
      ],
      container: {
        name: "prometheus",
        image: imageRef("prometheus"),
        args: [
          "--config.file=/etc/prometheus/prometheus.yml",
          "--storage.tsdb.path=/prometheus",
          `--storage.tsdb.retention.time=${m.prometheusRetentionDays}d`,
          `--storage.tsdb.retention.size=${Math.floor(m.prometheusStorageGi * 0.85)}GB`,
        ],
        ports: [{ name: "http", containerPort: PROMETHEUS_PORT }],
        resources: props.resources ?? { cpuRequest: "500m", cpuLimit: "2", memoryRequest: "2Gi", memoryLimit: "4Gi", ephemeralStorage: "256Mi" },
        readiness: { path: "/-/ready", port: PROMETHEUS_PORT },
        liveness: { path: "/-/healthy", port: PROMETHEUS_PORT },
        startup: { path: "/-/ready", port: PROMETHEUS_PORT, maxStartupSeconds: 600 },
        writableDirs: ["/tmp"],
        readOnlyMounts: [
          { volume: "config", mountPath: "/etc/prometheus" },
          { volume: "rules", mountPath: RULES_DIR },
        ],
      },
    });
    this.selector = server.selector;

    const k = config.kubernetes;
    const scrapeTargets = [
      { namespace: k.tenantService.namespace, ports: [PORTS.tenantService, PORTS.tenantWorkerHealth] },
      { namespace: k.gateway.namespace, ports: [PORTS.kongStatus] },
      { namespace: k.hydra.namespace, ports: [PORTS.hydraAdmin] },
    ];
    new WorkloadNetworkPolicy(this, "NetworkPolicy", {
      namespace,
      name: WORKLOADS.prometheus.name,
      selector: this.selector,
      ingress: [{ peers: [localPods(peers.grafana.selector)], ports: [tcp(PROMETHEUS_PORT)] }],
      egress: [
        ...scrapeTargets.map((t) => ({ peers: [namespaceOf(t.namespace)], ports: t.ports.map(tcp) })),
        // The trace receiver's own metrics: Jaeger's admin port, or the OpenTelemetry Collector's telemetry.
        config.monitoring.traceBackend === "jaeger"
          ? { peers: [localPods(peers.jaeger.selector)], ports: [tcp(PORTS.jaegerAdmin)] }
          : { peers: [localPods(peers.otelCollector.selector)], ports: [tcp(OTEL_COLLECTOR_METRICS_PORT)] },
        { peers: [localPods(peers.alertmanager.selector)], ports: [tcp(PORTS.alertmanager)] },
        { peers: [localPods(peers.redisExporter.selector)], ports: [tcp(PORTS.redisExporter)] },
        // The Citus VMs' exporters, and Patroni's REST API for its metrics, wherever the Citus cluster runs (as the
        // engine or beside Cloud SQL); Cloud SQL has neither.
        ...(runsCitusCluster(config)
          ? [{ peers: [addresses(config.network.dataCidr)], ports: [tcp(POSTGRES_EXPORTER_PORT), tcp(NODE_EXPORTER_PORT), tcp(PORTS.patroniRestApi)] }]
          : []),
        // Pod discovery: the Kubernetes API on the private control plane.
        { peers: [addresses(config.network.controlPlaneCidr)], ports: [tcp(443)] },
      ],
    });
  }
}
