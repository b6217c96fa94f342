export { ALERT_RULES, RECORDING_RULES, type AlertRule, type RecordingRule, type RuleGroup } from "./rules.js";
export { prometheusConfig, RULES_DIR, PROMETHEUS_PORT, PATRONI_PORT, POSTGRES_EXPORTER_PORT, NODE_EXPORTER_PORT, REDIS_EXPORTER_PORT } from "./prometheus.js";
export { EXPORTER_QUERIES, postgresExporterQueries, type ExporterQuery } from "./exporter-queries.js";
export { SCRAPE_JOBS, knownMetrics, type ScrapeJob } from "./catalog.js";
export { renderMonitoring, ruleGroups, type RenderedMonitoring } from "./render.js";
export { citusHaAlerts, expectedGroupMembers, PATRONI_MAXIMUM_LAG_ON_FAILOVER_BYTES } from "./citus-ha-rules.js";
export { dashboards, PROMETHEUS_DATASOURCE } from "./dashboards.js";
export { alertmanagerConfig, alertmanagerPeers, ALERTMANAGER, ALERT_HEARTBEAT_FILE, ALERT_RECEIVER_FILE, HEARTBEAT_ALERT } from "./alertmanager.js";
