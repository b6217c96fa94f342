/**
 * What the charts share about each other: ports, pod labels and priority classes. Namespaces are not here: they
 * come from the environment config (`config.kubernetes.*.namespace`), like every other name.
 */
import type { EnvironmentConfig } from "@platform/config";

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

/**
 * The pods other charts select in NetworkPolicies, and where they run. Grafana's namespace is the monitoring
 * namespace: Prometheus and Jaeger run beside it.
 */
export function peers(config: EnvironmentConfig) {
  const k = config.kubernetes;
  return {
    gateway: { namespace: k.gateway.namespace, labels: { "app.kubernetes.io/name": "kong" } },
    prometheus: { namespace: k.grafana.namespace, labels: { "app.kubernetes.io/name": "prometheus" } },
    jaeger: { namespace: k.grafana.namespace, labels: { "app.kubernetes.io/name": "jaeger" } },
    hydra: { namespace: k.hydra.namespace, labels: { "app.kubernetes.io/name": "hydra" } },
  };
}
