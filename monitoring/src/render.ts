import { stringify } from "yaml";
import { runsCitusCluster, type EnvironmentConfig } from "@platform/config";
import { alertmanagerConfig } from "./alertmanager.js";
import { CITUS_DASHBOARD, dashboards } from "./dashboards.js";
import { postgresExporterQueries } from "./exporter-queries.js";
import { prometheusConfig } from "./prometheus.js";
import { citusHaAlerts } from "./citus-ha-rules.js";
import { kubernetesAlerts } from "./kubernetes-rules.js";
import { otelCollectorAlerts } from "./otel-collector-rules.js";
import { ALERT_RULES, RECORDING_RULES, type RuleGroup } from "./rules.js";

/**
 * Every rule group of one environment: the Citus availability alerts depend on its configured group size, the
 * Kubernetes ones on its namespaces, the trace collector's on whether it runs one.
 */
export function ruleGroups(config: EnvironmentConfig): readonly RuleGroup[] {
  const otelCollector = otelCollectorAlerts(config);
  const citus = runsCitusCluster(config);
  return [RECORDING_RULES, citus ? ALERT_RULES : withoutCitusAlerts(ALERT_RULES), ...(citus ? [citusHaAlerts(config)] : []), kubernetesAlerts(config), ...(otelCollector ? [otelCollector] : [])];
}

/**
 * The postgres engine runs no Citus VM, so nothing reports what the Citus* alerts read (the VMs' exporters, pgBackRest,
 * Patroni): they are left out rather than kept silent. Cloud SQL's own health is Cloud Monitoring's (docs/SCALING.md, "Phase 1").
 */
function withoutCitusAlerts(group: RuleGroup): RuleGroup {
  return { ...group, rules: group.rules.filter((r) => !("alert" in r && r.alert.startsWith("Citus"))) };
}

export interface RenderedMonitoring {
  /** file name → YAML text */
  readonly files: Record<string, string>;
}

/**
 * One render per loaded environment: the main job (`pnpm synth`) writes an environment's files (monitoring/dist) and
 * mounts the same files in the monitoring chart's ConfigMaps (k8s), and rendering them twice was a tenth of the
 * manifests' synthesis (`pnpm bench:synth`). Keyed by the config object, which nothing changes once it is loaded.
 */
const rendered = new WeakMap<EnvironmentConfig, RenderedMonitoring>();

/** The monitoring content for one environment, as the files the charts mount. */
export function renderMonitoring(config: EnvironmentConfig): RenderedMonitoring {
  let result = rendered.get(config);
  if (!result) {
    result = render(config);
    rendered.set(config, result);
  }
  return result;
}

function render(config: EnvironmentConfig): RenderedMonitoring {
  return {
    files: {
      "prometheus.yml": stringify(prometheusConfig(config), { lineWidth: 0 }),
      "alertmanager.yml": stringify(alertmanagerConfig(config), { lineWidth: 0 }),
      "platform.rules.yml": stringify({ groups: ruleGroups(config) }, { lineWidth: 0 }),
      "postgres-exporter-queries.yml": postgresExporterQueries(),
      // The Citus health dashboard reads only the Citus VMs' exporters: none with the postgres engine alone.
      ...Object.fromEntries(dashboards().filter((d) => runsCitusCluster(config) || d.uid !== CITUS_DASHBOARD).map((d) => [`dashboard-${d.uid}.json`, `${JSON.stringify(d, null, 2)}\n`])),
    },
  };
}
