import { Chart } from "cdk8s";
import type { Construct } from "constructs";
import { renderMonitoring } from "@platform/monitoring";
import { NamespaceBaseline } from "../../constructs/platform-namespace.js";
import { quotaFor } from "../../quantities.js";
import type { ChartContext } from "../../topology.js";
import { Alertmanager } from "./alertmanager.js";
import { Grafana } from "./grafana.js";
import { Jaeger } from "./jaeger.js";
import { KubeStateMetrics } from "./kube-state-metrics.js";
import { KubernetesScraping } from "./kubernetes-scraping.js";
import { OtelCollector } from "./otel-collector.js";
import { Prometheus } from "./prometheus.js";
import { RedisExporter } from "./redis-exporter.js";

/** What the other components need at their maximum, with room for a rollout. */
const BASE_QUOTA = { cpu: "16", memory: "32Gi", pods: 20 };

/** The base, plus the collector at its HPA maximum and a surge pod (its replicas scale with the traffic traced). */
function withCollector(size: Parameters<typeof quotaFor>[0][number]): typeof BASE_QUOTA {
  const collector = quotaFor([size]);
  return { cpu: String(Number(BASE_QUOTA.cpu) + Number(collector.cpu)), memory: `${32 * 1024 + Number.parseInt(collector.memory)}Mi`, pods: BASE_QUOTA.pods + collector.pods };
}

/**
 * The monitoring namespace: Prometheus (the rules and scrape configuration from monitoring/), Grafana (its
 * datasources and dashboards), the trace receiver (Jaeger, or the OpenTelemetry Collector exporting to Cloud Trace:
 * monitoring.traceBackend), Alertmanager, the Redis exporter and kube-state-metrics. One construct per
 * component, each owning its accounts, its NetworkPolicy and its sizes from the environment config.
 */
export class MonitoringChart extends Chart {
  constructor(scope: Construct, id: string, ctx: ChartContext) {
    super(scope, id, { disableResourceNameHashes: true });
    const namespace = ctx.config.kubernetes.prometheus.namespace;
    const cloudTrace = ctx.config.monitoring.traceBackend === "cloudTrace";
    new NamespaceBaseline(this, "Baseline", { namespace, quota: cloudTrace ? withCollector(ctx.config.kubernetes.workloads.otelCollector) : BASE_QUOTA });
    const { files } = renderMonitoring(ctx.config);
    new Prometheus(this, "Prometheus", ctx, { files });
    new Grafana(this, "Grafana", ctx, { files });
    if (cloudTrace) new OtelCollector(this, "OtelCollector", ctx);
    else new Jaeger(this, "Jaeger", ctx);
    new Alertmanager(this, "Alertmanager", ctx, { files });
    new RedisExporter(this, "RedisExporter", ctx);
    // The Kubernetes layer: the objects' state, and Prometheus's access to it and to the kubelets.
    new KubeStateMetrics(this, "KubeStateMetrics", ctx);
    new KubernetesScraping(this, "KubernetesScraping", ctx);
  }
}
