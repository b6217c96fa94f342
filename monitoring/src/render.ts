import { stringify } from "yaml";
import type { EnvironmentConfig } from "@platform/config";
import { alertmanagerConfig } from "./alertmanager.js";
import { dashboards } from "./dashboards.js";
import { postgresExporterQueries } from "./exporter-queries.js";
import { prometheusConfig } from "./prometheus.js";
import { RULE_GROUPS } from "./rules.js";

export interface RenderedMonitoring {
  /** file name → YAML text */
  readonly files: Record<string, string>;
}

/** The monitoring content for one environment, as the files the charts mount. */
export function renderMonitoring(config: EnvironmentConfig): RenderedMonitoring {
  return {
    files: {
      "prometheus.yml": stringify(prometheusConfig(config), { lineWidth: 0 }),
      "alertmanager.yml": stringify(alertmanagerConfig(config), { lineWidth: 0 }),
      "platform.rules.yml": stringify({ groups: RULE_GROUPS }, { lineWidth: 0 }),
      "postgres-exporter-queries.yml": postgresExporterQueries(),
      ...Object.fromEntries(dashboards().map((d) => [`dashboard-${d.uid}.json`, `${JSON.stringify(d, null, 2)}\n`])),
    },
  };
}
