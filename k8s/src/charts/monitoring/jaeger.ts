import { Construct } from "constructs";
import { imageRef } from "@platform/config";
import { IntOrString, KubeService, KubeServiceAccount } from "../../k8s.js";
import { HardenedStatefulSet } from "../../constructs/hardened-statefulset.js";
import { WorkloadNetworkPolicy, localPods, podsOf, tcp } from "../../constructs/network-policy.js";
import { JAEGER_SERVICES, PORTS, PRIORITY_CLASSES, WORKLOADS, type ChartContext } from "../../topology.js";
import { NETWORK_POLICY_EXCEPTION } from "../../policy/exceptions.js";

/**
 * Jaeger collecting OTLP from Kong, Hydra, the tenant service and its worker, where it is the environment's trace
 * store (monitoring.traceBackend jaeger: dev): one replica on badger storage, retention and size from
 * `config.monitoring`, a collector Service for the senders and a query Service for Grafana. Badger has one writer,
 * so this replica is the single point the availability rule exempts; environments whose traces must survive a node
 * drain send them to Cloud Trace through the OpenTelemetry Collector instead (otel-collector.ts), and the config
 * refuses Jaeger in production.
 */
export class Jaeger extends Construct {
  readonly selector: Record<string, string>;

  constructor(scope: Construct, id: string, ctx: ChartContext) {
    super(scope, id);
    const { config, peers } = ctx;
    const m = config.monitoring;
    const { namespace, serviceAccount } = config.kubernetes.jaeger;
    const server = new HardenedStatefulSet(this, "Server", {
      exceptions: NETWORK_POLICY_EXCEPTION,
      namespace,
      ...WORKLOADS.jaeger,
      replicas: 1,
      singleReplicaReason: "badger storage has one writer; traces are sampled diagnostics, and a restart loses only in-flight spans",
      priorityClassName: PRIORITY_CLASSES.batch.name,
      serviceAccount: { name: serviceAccount },
      storage: { mountPath: "/badger", sizeGi: m.jaegerStorageGi },
      service: { port: PORTS.jaegerQuery, targetPortName: "query" },
      metrics: { port: PORTS.jaegerAdmin, path: "/metrics" },
      container: {
        name: "jaeger",
        image: imageRef("jaeger"),
        ports: [
          { name: "query", containerPort: PORTS.jaegerQuery },
          { name: "otlp-http", containerPort: PORTS.otlpHttp },
          { name: "admin", containerPort: PORTS.jaegerAdmin },
        ],
        resources: { cpuRequest: "250m", cpuLimit: "1", memoryRequest: "512Mi", memoryLimit: "1Gi", ephemeralStorage: "256Mi" },
        readiness: { path: "/", port: PORTS.jaegerAdmin },
        liveness: { path: "/metrics", port: PORTS.jaegerAdmin },
        writableDirs: ["/tmp"],
        env: {
          SPAN_STORAGE_TYPE: "badger",
          BADGER_EPHEMERAL: "false",
          BADGER_DIRECTORY_KEY: "/badger/key",
          BADGER_DIRECTORY_VALUE: "/badger/data",
          BADGER_SPAN_STORE_TTL: `${m.jaegerRetentionHours}h`,
          COLLECTOR_OTLP_ENABLED: "true",
        },
      },
    });
    this.selector = server.selector;
    new KubeServiceAccount(this, "Account", { metadata: { name: serviceAccount, namespace }, automountServiceAccountToken: false });
    for (const [name, port, target] of [[JAEGER_SERVICES.collector, PORTS.otlpHttp, "otlp-http"], [JAEGER_SERVICES.query, PORTS.jaegerQuery, "query"]] as const) {
      new KubeService(this, name, {
        metadata: { name, namespace, labels: { "app.kubernetes.io/name": WORKLOADS.jaeger.name, "app.kubernetes.io/part-of": WORKLOADS.jaeger.partOf } },
        spec: { type: "ClusterIP", selector: this.selector, ports: [{ name: "http", port, targetPort: IntOrString.fromString(target), protocol: "TCP" }] },
      });
    }
    new WorkloadNetworkPolicy(this, "NetworkPolicy", {
      namespace,
      name: WORKLOADS.jaeger.name,
      selector: this.selector,
      ingress: [
        // The senders: Kong, Hydra, the tenant service and its worker.
        { peers: [podsOf(peers.gateway), podsOf(peers.hydra), podsOf(peers.tenantService), podsOf(peers.tenantWorker)], ports: [tcp(PORTS.otlpHttp)] },
        { peers: [localPods(peers.grafana.selector)], ports: [tcp(PORTS.jaegerQuery)] },
        { peers: [localPods(peers.prometheus.selector)], ports: [tcp(PORTS.jaegerAdmin)] },
      ],
    });
  }
}
