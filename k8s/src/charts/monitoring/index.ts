import { Chart } from "cdk8s";
import type { Construct } from "constructs";
import { renderMonitoring } from "@platform/monitoring";
import { NamespaceBaseline } from "../../constructs/platform-namespace.js";
import type { ChartContext } from "../../topology.js";
import { Alertmanager } from "./alertmanager.js";
import { Grafana } from "./grafana.js";
import { Jaeger } from "./jaeger.js";
import { KubeStateMetrics } from "./kube-state-metrics.js";
import { KubernetesScraping } from "./kubernetes-scraping.js";
import { Prometheus } from "./prometheus.js";
import { RedisExporter } from "./redis-exporter.js";

/**
 * The monitoring namespace: Prometheus (the rules and scrape configuration from monitoring/), Grafana (its
 * datasources and dashboards), Jaeger collecting OTLP, Alertmanager, the Redis exporter and kube-state-metrics. One construct per
 * component, each owning its accounts, its NetworkPolicy and its sizes from the environment config.
 */
export class MonitoringChart extends Chart {
  constructor(scope: Construct, id: string, ctx: ChartContext) {
    super(scope, id, { disableResourceNameHashes: true });
    const namespace = ctx.config.kubernetes.prometheus.namespace;
    new NamespaceBaseline(this, "Baseline", { namespace, quota: { cpu: "16", memory: "32Gi", pods: 20 } });
    const { files } = renderMonitoring(ctx.config);
    new Prometheus(this, "Prometheus", ctx, { files });
    new Grafana(this, "Grafana", ctx, { files });
    new Jaeger(this, "Jaeger", ctx);
    new Alertmanager(this, "Alertmanager", ctx, { files });
    new RedisExporter(this, "RedisExporter", ctx);
    // The Kubernetes layer: the objects' state, and Prometheus's access to it and to the kubelets.
    new KubeStateMetrics(this, "KubeStateMetrics", ctx);
    new KubernetesScraping(this, "KubernetesScraping", ctx);
  }
}
