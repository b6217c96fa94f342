import { describe, expect, it } from "vitest";
import { RECORDING_RULES, dashboards, knownMetrics, type RecordingRule } from "../src/index.js";

const all = dashboards();
const known = knownMetrics(RECORDING_RULES.rules.map((r) => (r as RecordingRule).record));
const PROMQL_WORDS = new Set(["sum", "rate", "max", "min", "avg", "by", "histogram_quantile", "topk", "label_values", "and", "or", "on", "ignoring", "without", "count", "increase"]);

/** Metric names in a PromQL expression: identifiers outside label matchers, ranges, strings and grouping clauses. */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/\{[^}]*\}/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/"[^"]*"/g, "")
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, "");
  return [...stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((m) => m[0]).filter((id) => !PROMQL_WORDS.has(id) && !/^\d/.test(id));
}

// Rows only group panels; they have no queries.
const panels = all.flatMap((d) =>
  (d.panels ?? []).filter((p) => (p as { type?: string }).type !== "row").map((p) => ({ dashboard: d.uid!, panel: p as { title?: string; targets?: { expr?: string }[] } })),
);

describe("Grafana dashboards", () => {
  it("have stable, unique uids", () => {
    const uids = all.map((d) => d.uid);
    expect(uids).toEqual(["platform-api-overview", "platform-tenants", "platform-citus", "platform-gateway"]);
    expect(new Set(uids).size).toBe(uids.length);
  });

  it.each(panels.map((p) => [`${p.dashboard}: ${p.panel.title}`, p.panel]))("%s queries only metrics some target exports", (_label, panel) => {
    const exprs = (panel.targets ?? []).map((t) => t.expr ?? "");
    expect(exprs.length).toBeGreaterThan(0);
    for (const expr of exprs) expect(metricNames(expr).filter((m) => !known.has(m)), expr).toEqual([]);
  });

  it("the metric check catches a name no target exports", () => {
    expect(metricNames('sum(rate(http_requests_totl{job="x"}[5m]))').filter((m) => !known.has(m))).toEqual(["http_requests_totl"]);
  });

  it("use the provisioned Prometheus datasource by uid", () => {
    for (const { panel } of panels) expect((panel as { datasource?: { uid?: string } }).datasource?.uid).toBe("prometheus");
  });
});
