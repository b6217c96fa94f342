/**
 * The trace pipeline's alerts, where an environment keeps its traces in Cloud Trace behind the OpenTelemetry
 * Collector (monitoring.traceBackend cloudTrace; k8s/src/charts/monitoring/otel-collector.ts). Traces are sampled
 * diagnostics, so losing them is a ticket, not a page: what is lost is the trace an engineer will look for during the
 * next incident. Dev sends to Jaeger directly and has neither the collector nor these rules.
 *
 * The metric names and labels are the collector's own at the pinned version (config/src/images.ts), as its
 * Prometheus reader exports them (counters without `_total`; `exporter`, `receiver` and `transport` labels):
 * test/live-prometheus.test.ts scrapes a real collector of that version.
 */
import type { EnvironmentConfig } from "@platform/config";
import { alertsWithRunbook, type RuleGroup } from "./rules.js";

const JOB = 'job="otel-collector"';

/** Whether the environment runs the collector (and so scrapes it and alerts on it). */
export const hasOtelCollector = (config: EnvironmentConfig): boolean => config.monitoring.traceBackend === "cloudTrace";

/** The share of spans lost that raises each alert, sustained over its `for`. */
export const OTEL_COLLECTOR_LOSS = { refused: 0.01, exportFailed: 0.05 } as const;

/** `failed / (ok + failed)` of two span counters, summed over the replicas by `by`. */
const lossRatio = (failed: string, ok: string, by: string) => {
  const rate = (metric: string) => `sum by (${by}) (rate(${metric}{${JOB}}[5m]))`;
  return `${rate(failed)} / (${rate(ok)} + ${rate(failed)})`;
};

export function otelCollectorAlerts(config: EnvironmentConfig): RuleGroup | undefined {
  if (!hasOtelCollector(config)) return undefined;
  const rule = alertsWithRunbook("otel-collector");
  return {
    name: "platform.otel-collector",
    rules: [
      rule(
        "OtelCollectorRefusingSpans",
        // The receiver refuses what memory_limiter will not take (the senders drop it): the collectors are too small
        // for the span rate. A share, so a refused burst among millions of spans does not raise it.
        `${lossRatio("otelcol_receiver_refused_spans", "otelcol_receiver_accepted_spans", "job")} > ${OTEL_COLLECTOR_LOSS.refused}`,
        "15m",
        "ticket",
        "The trace collectors refuse spans",
        "{{ $value | humanizePercentage }} of the spans sent to the OpenTelemetry Collector are refused (memory_limiter): those traces are lost.",
      ),
      rule(
        "OtelCollectorExportFailing",
        // Cloud Trace refuses or never answers the writes: permission (the Google service account's role, Workload
        // Identity), the API disabled, quota. The series exists only once an export has failed, so while exports
        // succeed the expression is empty, not 0.
        `${lossRatio("otelcol_exporter_send_failed_spans", "otelcol_exporter_sent_spans", "job, exporter")} > ${OTEL_COLLECTOR_LOSS.exportFailed}`,
        "10m",
        "ticket",
        "The trace collectors cannot write to Cloud Trace",
        "{{ $value | humanizePercentage }} of the spans the OpenTelemetry Collector exports through {{ $labels.exporter }} fail and are dropped.",
      ),
    ],
  };
}
