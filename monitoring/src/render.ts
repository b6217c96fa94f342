import { stringify } from "yaml";
import type { EnvironmentConfig } from "@platform/config";
import { dashboards } from "./dashboards.js";
import { EXPORTER_QUERIES } from "./exporter-queries.js";
import { prometheusConfig } from "./prometheus.js";
import { RULE_GROUPS } from "./rules.js";

export interface RenderedMonitoring {
  /** file name → YAML text */
  readonly files: Record<string, string>;
}

/** The monitoring content for one environment, as the files the charts mount. */
export function renderMonitoring(config: EnvironmentConfig): RenderedMonitoring {
  const queries = Object.fromEntries(Object.entries(EXPORTER_QUERIES).map(([name, q]) => [name, { query: q.query.replace(/\s+/g, " ").trim(), metrics: q.metrics }]));
  return {
    files: {
      "prometheus.yml": stringify(prometheusConfig(config), { lineWidth: 0 }),
      "platform.rules.yml": stringify({ groups: RULE_GROUPS }, { lineWidth: 0 }),
      "postgres-exporter-queries.yml": stringify(queries, { lineWidth: 0 }),
      ...Object.fromEntries(dashboards().map((d) => [`dashboard-${d.uid}.json`, `${JSON.stringify(d, null, 2)}\n`])),
    },
  };
}
