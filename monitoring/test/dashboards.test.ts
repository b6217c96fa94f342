import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { RECORDING_RULES, SCRAPE_JOBS, dashboards, knownMetrics, type RecordingRule } from "../src/index.js";

const all = dashboards();
const known = knownMetrics(RECORDING_RULES.rules.map((r) => (r as RecordingRule).record));
const PROMQL_WORDS = new Set(["sum", "rate", "max", "min", "avg", "by", "histogram_quantile", "topk", "label_values", "and", "or", "on", "ignoring", "without", "count", "increase", "time", "group", "group_right", "unless", "changes", "vector"]);

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
    expect(uids).toEqual(["platform-api-overview", "platform-tenants", "platform-citus", "platform-business", "platform-kubernetes", "platform-gateway"]);
    expect(new Set(uids).size).toBe(uids.length);
  });

  it.each(panels.map((p) => [`${p.dashboard}: ${p.panel.title}`, p.panel]))("%s queries only metrics some target exports", (_label, panel) => {
    const exprs = (panel.targets ?? []).map((t) => t.expr ?? "");
    expect(exprs.length).toBeGreaterThan(0);
    for (const expr of exprs) expect(metricNames(expr).filter((m) => !known.has(m)), expr).toEqual([]);
  });

  it("keep to their subject: the gateway dashboard reads only Kong's metrics", () => {
    const kong = new Set<string>(SCRAPE_JOBS.kong);
    const foreign = panels
      .filter((p) => p.dashboard === "platform-gateway")
      .flatMap(({ panel }) => (panel.targets ?? []).flatMap((t) => metricNames(t.expr ?? "").filter((m) => !kong.has(m)).map((m) => `${panel.title}: ${m}`)));
    expect(foreign).toEqual([]);
  });

  it("the metric check catches a name no target exports", () => {
    expect(metricNames('sum(rate(http_requests_totl{job="x"}[5m]))').filter((m) => !known.has(m))).toEqual(["http_requests_totl"]);
  });

  const promtoolMissing = spawnSync("promtool", ["--version"]).status === 0 ? undefined : "promtool not found (apt-get install prometheus)";
  if (promtoolMissing) console.warn(`skipping the PromQL parse of dashboard queries: ${promtoolMissing}`);
  it.skipIf(promtoolMissing !== undefined)("query PromQL that Prometheus parses (promtool check rules, one recording rule per query)", () => {
    // Grafana substitutes its variables before a query reaches Prometheus; sample values stand in for them here.
    const samples: Record<string, string> = { $__rate_interval: "2m", $tenant: "sample-tenant", $namespace: "tenants|monitoring" };
    const exprs = panels.flatMap(({ panel }) => (panel.targets ?? []).map((t) => (t.expr ?? "").replace(/\$[A-Za-z_]+/g, (v) => samples[v] ?? v)));
    expect(exprs.filter((e) => e.includes("$")), "a variable without a sample value").toEqual([]);
    const dir = mkdtempSync(join(tmpdir(), "dashboards-"));
    try {
      const file = join(dir, "dashboard-queries.yml");
      writeFileSync(file, stringify({ groups: [{ name: "dashboard-queries", rules: exprs.map((expr, i) => ({ record: `dashboard:query_${i}`, expr })) }] }));
      const r = spawnSync("promtool", ["check", "rules", file], { encoding: "utf8" });
      expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout).toContain(`SUCCESS: ${exprs.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("use the provisioned Prometheus datasource by uid", () => {
    for (const { panel } of panels) expect((panel as { datasource?: { uid?: string } }).datasource?.uid).toBe("prometheus");
  });
});
