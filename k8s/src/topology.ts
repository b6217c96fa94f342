/** Namespaces and workload names the charts share: written once here, as the infra layer does in @platform/config. */
export const NAMESPACES = { gateway: "gateway", auth: "auth", monitoring: "monitoring" } as const;

export const PRIORITY_CLASSES = {
  /** The gateway: every request passes through it. */
  edge: { name: "platform-edge", value: 100_000 },
  /** Request-serving APIs. */
  api: { name: "platform-api", value: 50_000 },
  /** Queue workers and jobs: first to yield under pressure. */
  batch: { name: "platform-batch", value: 10_000 },
} as const;

/** Ports one chart serves and another calls or scrapes: written once. */
export const PORTS = {
  tenantService: 8080,
  tenantWorkerHealth: 9090,
  kongStatus: 8100,
  hydraAdmin: 4445,
} as const;

/** Pod labels other charts select on in NetworkPolicies. */
export const PEERS = {
  gateway: { namespace: NAMESPACES.gateway, labels: { "app.kubernetes.io/name": "kong" } },
  prometheus: { namespace: NAMESPACES.monitoring, labels: { "app.kubernetes.io/name": "prometheus" } },
  jaeger: { namespace: NAMESPACES.monitoring, labels: { "app.kubernetes.io/name": "jaeger" }, otlpHttpPort: 4318 },
  hydra: { namespace: NAMESPACES.auth, labels: { "app.kubernetes.io/name": "hydra" }, publicPort: 4444 },
} as const;
