/**
 * What the charts share about each other: ports, priority classes, and each workload's identity (name, component,
 * the application it is part of), from which its pods' selector follows. Namespaces and service accounts are not
 * here: they come from the environment config (`config.kubernetes.<workload>`), like every other name.
 */
import { PORTS, platformNames, type EnvironmentConfig, type PlatformNames } from "@platform/config";
import type { PodPeer } from "./constructs/network-policy.js";

export const PRIORITY_CLASSES = {
  /** The gateway: every request passes through it. */
  edge: { name: "platform-edge", value: 100_000 },
  /** Request-serving APIs. */
  api: { name: "platform-api", value: 50_000 },
  /** Queue workers and jobs: first to yield under pressure. */
  batch: { name: "platform-batch", value: 10_000 },
} as const;

/** Ports one chart serves and another calls or scrapes: the config's one table. */
export { PORTS } from "@platform/config";

export interface WorkloadIdentity {
  /** app.kubernetes.io/name: the Deployment's or StatefulSet's name. */
  readonly name: string;
  /** app.kubernetes.io/component */
  readonly component: string;
  /** app.kubernetes.io/part-of */
  readonly partOf: string;
}

/** Every workload the charts run. The hardened constructs label and select their pods from these (`selectorOf`). */
export const WORKLOADS = {
  gateway: { name: "kong", component: "proxy", partOf: "api-gateway" },
  hydra: { name: "hydra", component: "server", partOf: "auth" },
  tenantService: { name: "tenant-service", component: "api", partOf: "tenant-platform" },
  tenantWorker: { name: "tenant-worker", component: "worker", partOf: "tenant-platform" },
  prometheus: { name: "prometheus", component: "server", partOf: "monitoring" },
  grafana: { name: "grafana", component: "ui", partOf: "monitoring" },
  jaeger: { name: "jaeger", component: "tracing", partOf: "monitoring" },
  otelCollector: { name: "otel-collector", component: "collector", partOf: "monitoring" },
  alertmanager: { name: "alertmanager", component: "alerting", partOf: "monitoring" },
  redisExporter: { name: "redis-exporter", component: "exporter", partOf: "monitoring" },
} as const satisfies Record<string, WorkloadIdentity>;

export type WorkloadKey = keyof typeof WORKLOADS;

/** The labels a workload's controller selects its pods by. */
export const selectorOf = (w: Pick<WorkloadIdentity, "name" | "component">): Record<string, string> => ({
  "app.kubernetes.io/name": w.name,
  "app.kubernetes.io/component": w.component,
});

/**
 * The labels of a workload's controller, its pods and its other objects: the selector, what it is part of, and
 * app.kubernetes.io/instance, the object's own name as the recommended labels (and Polaris's
 * metadataAndInstanceMismatched) have it. Never in a selector: a selector cannot change once applied.
 */
export const controllerLabels = (w: Pick<WorkloadIdentity, "name" | "component" | "partOf">): Record<string, string> => ({
  ...selectorOf(w),
  "app.kubernetes.io/instance": w.name,
  "app.kubernetes.io/part-of": w.partOf,
  "app.kubernetes.io/managed-by": "cdk8s",
});

/** Each workload's pods as another chart's NetworkPolicy names them: its namespace from the config, its selector. */
export function peers(config: EnvironmentConfig): Record<WorkloadKey, PodPeer> {
  const k = config.kubernetes;
  return Object.fromEntries(
    (Object.keys(WORKLOADS) as WorkloadKey[]).map((key) => [key, { namespace: k[key].namespace, selector: selectorOf(WORKLOADS[key]) }]),
  ) as Record<WorkloadKey, PodPeer>;
}

/** What every chart of one environment is built from, made once per environment (src/app.ts). */
export interface ChartContext {
  readonly config: EnvironmentConfig;
  readonly names: PlatformNames;
  readonly peers: Record<WorkloadKey, PodPeer>;
}

export function chartContext(config: EnvironmentConfig): ChartContext {
  return { config, names: platformNames(config), peers: peers(config) };
}

/** Jaeger's two Services (charts/monitoring/jaeger.ts): OTLP in from the workloads, queries from Grafana. */
export const JAEGER_SERVICES = { collector: "jaeger-collector", query: "jaeger-query" } as const;

/** Hydra's two Services (charts/auth.ts): public (tokens, JWKS) and admin (clients; inside the cluster only). */
export const HYDRA_SERVICES = { public: "hydra-public", admin: "hydra-admin" } as const;

/** A Service's in-cluster URL. */
export const serviceUrl = (name: string, namespace: string, port: number): string => `http://${name}.${namespace}.svc.cluster.local:${port}`;

/** Where the traced workloads (Kong, Hydra, the tenant service and its worker) send OTLP/HTTP. */
export interface TraceReceiver {
  /** The base URL; OTLP/HTTP's paths (/v1/traces) follow it. */
  readonly url: string;
  /** The receiving pods, for the senders' NetworkPolicies, and the port they listen on. */
  readonly pods: PodPeer;
  readonly port: number;
}

/**
 * The OpenTelemetry Collector's Service (charts/monitoring/otel-collector.ts) where the environment exports traces
 * through it (monitoring.traceBackend cloudTrace), Jaeger's collector Service where Jaeger is the store. Decided
 * here once, so every sender and its NetworkPolicy follow the config together.
 */
export function traceReceiver(config: EnvironmentConfig): TraceReceiver {
  const key = config.monitoring.traceBackend === "cloudTrace" ? "otelCollector" : "jaeger";
  const service = key === "otelCollector" ? WORKLOADS.otelCollector.name : JAEGER_SERVICES.collector;
  const { namespace } = config.kubernetes[key];
  return { url: serviceUrl(service, namespace, PORTS.otlpHttp), pods: { namespace, selector: selectorOf(WORKLOADS[key]) }, port: PORTS.otlpHttp };
}
