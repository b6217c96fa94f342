import { Construct } from "constructs";
import { stringify } from "yaml";
import { imageRef, platformNames, type EnvironmentConfig } from "@platform/config";
import { KubeConfigMap } from "../../k8s.js";
import { HardenedDeployment } from "../../constructs/hardened-deployment.js";
import { WorkloadNetworkPolicy, addresses, localPods, podsOf, tcp } from "../../constructs/network-policy.js";
import { engineExceptionAnnotations, NETWORK_POLICY_EXCEPTION } from "../../policy/exceptions.js";
import { memoryMi } from "../../quantities.js";
import { PORTS, PRIORITY_CLASSES, WORKLOADS, type ChartContext } from "../../topology.js";

/** The collector's own metrics (Prometheus scrapes them) and its health_check extension (the probes). */
export const OTEL_COLLECTOR_METRICS_PORT = 8888;
const HEALTH_PORT = 13133;
const CONFIG_DIR = "/etc/otelcol-contrib";

/**
 * The collector's configuration (otelcol's YAML), a function of the environment alone so that
 * k8s/test/otel-collector.test.ts can hand it to a real collector's `validate`.
 *
 * OTLP/HTTP in from Kong, Hydra, the tenant service and its worker; memory_limiter first, so a burst is refused
 * (the senders drop and count it) instead of the pod being killed by its memory limit; batch, because Cloud Trace
 * takes spans in batches; the googlecloud exporter writes to the environment's project as the pod's Google service
 * account (Workload Identity: no key file), retrying through its in-memory queue while the API is unreachable.
 * Sampling is Kong's (monitoring.traceSamplingRate): every replica forwards whatever it is sent, so any replica can
 * take any span and the replicas need no coordination.
 */
export function otelCollectorConfig(config: EnvironmentConfig): Record<string, unknown> {
  return {
    extensions: { health_check: { endpoint: `0.0.0.0:${HEALTH_PORT}` } },
    receivers: { otlp: { protocols: { http: { endpoint: `0.0.0.0:${PORTS.otlpHttp}` } } } },
    processors: {
      // Percentages of the container's memory limit (the cgroup's), so the config follows the sizes in the config.
      memory_limiter: { check_interval: "1s", limit_percentage: 80, spike_limit_percentage: 20 },
      batch: { send_batch_size: 512, send_batch_max_size: 1024, timeout: "5s" },
    },
    exporters: {
      googlecloud: {
        project: config.gcp.projectId,
        // A minute of spans at production's rate in batches of 512; beyond it the newest are dropped and counted
        // (otelcol_exporter_enqueue_failed_spans), never the pod's memory.
        sending_queue: { enabled: true, num_consumers: 4, queue_size: 200 },
      },
    },
    service: {
      extensions: ["health_check"],
      pipelines: { traces: { receivers: ["otlp"], processors: ["memory_limiter", "batch"], exporters: ["googlecloud"] } },
      telemetry: {
        logs: { encoding: "json" },
        metrics: { level: "normal", readers: [{ pull: { exporter: { prometheus: { host: "0.0.0.0", port: OTEL_COLLECTOR_METRICS_PORT } } } }] },
      },
    },
  };
}

/**
 * The OpenTelemetry Collector, where the environment keeps its traces in Google Cloud Trace
 * (monitoring.traceBackend cloudTrace; docs/OBSERVABILITY.md, "Where traces go"). It replaces Jaeger's single
 * writer there: the replicas are stateless, so any of them takes any span, a drained node or a lost zone costs only
 * the spans in that pod's queue, and the store is Google's, replicated and kept 30 days, with nothing to size or
 * back up here. Replicas and sizes from `config.kubernetes.workloads.otelCollector` (an HPA on CPU, a PDB, spread
 * over zones and hosts by HardenedDeployment); its Kubernetes account acts as its own Google service account
 * (infra/src/stack.ts: roles/cloudtrace.agent and nothing else).
 */
export class OtelCollector extends Construct {
  readonly selector: Record<string, string>;

  constructor(scope: Construct, id: string, ctx: ChartContext) {
    super(scope, id);
    const { config, peers } = ctx;
    const { namespace, serviceAccount } = config.kubernetes.otelCollector;
    const size = config.kubernetes.workloads.otelCollector;
    new KubeConfigMap(this, "Config", {
      metadata: {
        name: "otel-collector-config",
        namespace,
        annotations: engineExceptionAnnotations({
          trivy: {
            "KSV-01010":
              "the collector's configuration holds no credential (it authenticates as its Google service account through Workload Identity, no key file); Trivy's content patterns match its listen addresses and pipeline names, not a username, e-mail or key",
          },
        }),
      },
      data: { "config.yaml": stringify(otelCollectorConfig(config)) },
    });
    const deployment = new HardenedDeployment(this, "Deployment", {
      exceptions: NETWORK_POLICY_EXCEPTION,
      namespace,
      ...WORKLOADS.otelCollector,
      priorityClassName: PRIORITY_CLASSES.batch.name,
      replicas: { min: size.minReplicas, max: size.maxReplicas },
      serviceAccount: { name: serviceAccount, googleServiceAccount: platformNames(config).serviceAccounts.otelCollector.email },
      service: { port: PORTS.otlpHttp, targetPortName: "otlp-http" },
      metrics: { port: OTEL_COLLECTOR_METRICS_PORT, path: "/metrics" },
      extraVolumes: [{ name: "config", configMap: { name: "otel-collector-config" } }],
      container: {
        name: "otel-collector",
        image: imageRef("otelCollector"),
        args: [`--config=${CONFIG_DIR}/config.yaml`],
        ports: [
          { name: "otlp-http", containerPort: PORTS.otlpHttp },
          { name: "metrics", containerPort: OTEL_COLLECTOR_METRICS_PORT },
          { name: "health", containerPort: HEALTH_PORT },
        ],
        resources: size,
        // The Go runtime collects before the cgroup limit is reached; memory_limiter refuses spans before that.
        env: { GOMEMLIMIT: `${Math.floor(memoryMi(size.memoryLimit) * 0.9)}MiB` },
        // Ready once its pipeline runs (health_check); alive while it serves its own metrics, as Jaeger is probed.
        readiness: { path: "/", port: HEALTH_PORT },
        liveness: { path: "/metrics", port: OTEL_COLLECTOR_METRICS_PORT },
        readOnlyMounts: [{ volume: "config", mountPath: CONFIG_DIR }],
      },
    });
    this.selector = deployment.selector;
    new WorkloadNetworkPolicy(this, "NetworkPolicy", {
      namespace,
      name: WORKLOADS.otelCollector.name,
      selector: this.selector,
      ingress: [
        // The senders: Kong, Hydra, the tenant service and its worker.
        { peers: [podsOf(peers.gateway), podsOf(peers.hydra), podsOf(peers.tenantService), podsOf(peers.tenantWorker)], ports: [tcp(PORTS.otlpHttp)] },
        { peers: [localPods(peers.prometheus.selector)], ports: [tcp(OTEL_COLLECTOR_METRICS_PORT)] },
      ],
      egress: [
        // Cloud Trace's API (cloudtrace.googleapis.com) and Google's token endpoint: HTTPS out through Private Google
        // Access or Cloud NAT, never to the private ranges.
        { peers: [addresses("0.0.0.0/0", ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"])], ports: [tcp(443)] },
        // The GKE metadata server, which answers Workload Identity's token requests: 169.254.169.254:80, and on
        // GKE Dataplane V2 (the cluster's datapath) 169.254.169.252:988, as GKE's documentation for network
        // policies with Workload Identity asks.
        { peers: [addresses("169.254.169.254/32")], ports: [tcp(80)] },
        { peers: [addresses("169.254.169.252/32")], ports: [tcp(988)] },
      ],
    });
  }
}
