/**
 * Alertmanager: where the alert rules' notifications go. Two replicas gossip (silences, what was sent), and every
 * Prometheus replica sends to both, so one pod down loses nothing. The receiver's credential is a file from
 * Secret Manager (<prefix>-alert-receiver): PagerDuty's routing key or Slack's webhook URL, per the config.
 */
import { PORTS, type EnvironmentConfig } from "@platform/config";

export const ALERTMANAGER = { replicas: 2, port: PORTS.alertmanager, clusterPort: PORTS.alertmanagerCluster, name: "alertmanager" } as const;
/** Where the chart mounts the receiver's secret. */
export const ALERT_RECEIVER_FILE = "/var/run/secrets/platform/alert-receiver";
/** Where the chart mounts the heartbeat URL (<prefix>-alert-heartbeat). */
export const ALERT_HEARTBEAT_FILE = "/var/run/secrets/platform/alert-heartbeat";
/** The always-firing alert whose delivery proves the whole path works (rules, Prometheus, Alertmanager, egress). */
export const HEARTBEAT_ALERT = "Watchdog";

/** Each replica by its stable name (the StatefulSet's headless Service): Prometheus must reach every one. */
export function alertmanagerPeers(config: EnvironmentConfig, port: number): string[] {
  const namespace = config.kubernetes.alertmanager.namespace;
  return Array.from({ length: ALERTMANAGER.replicas }, (_, i) => `${ALERTMANAGER.name}-${i}.${ALERTMANAGER.name}-headless.${namespace}.svc.cluster.local:${port}`);
}

export function alertmanagerConfig(config: EnvironmentConfig) {
  const m = config.monitoring;
  // Rules carry severity page (someone acts now) or ticket (someone acts today): PagerDuty urgency follows it.
  const receiver =
    m.alertReceiver === "pagerduty"
      ? { name: "platform", pagerduty_configs: [{ routing_key_file: ALERT_RECEIVER_FILE, send_resolved: true, severity: '{{ if eq .CommonLabels.severity "page" }}critical{{ else }}warning{{ end }}' }] }
      : {
          name: "platform",
          slack_configs: [
            {
              api_url_file: ALERT_RECEIVER_FILE,
              channel: m.slackChannel,
              send_resolved: true,
              title: "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} ({{ .CommonLabels.environment }}, {{ .CommonLabels.severity }})",
              text: "{{ range .Alerts }}{{ .Annotations.summary }}\nrunbook: {{ .Annotations.runbook }}\n{{ end }}",
            },
          ],
        };
  return {
    route: {
      receiver: "platform",
      group_by: ["alertname", "environment"],
      group_wait: "30s",
      group_interval: "5m",
      repeat_interval: "12h",
      routes: [
        // The dead man's switch: the Watchdog fires forever and is re-sent every minute to an external check, which
        // alerts on its own when the beats stop: Prometheus, Alertmanager or their egress is down.
        { receiver: "heartbeat", matchers: [`alertname="${HEARTBEAT_ALERT}"`], group_wait: "0s", group_interval: "1m", repeat_interval: "1m" },
        // Pages repeat hourly until resolved.
        { receiver: "platform", matchers: ['severity="page"'], repeat_interval: "1h" },
      ],
    },
    // A disk already filling up pages; the 24-hour forecast for the same disk would only repeat it.
    inhibit_rules: [{ source_matchers: ['alertname="CitusDiskFillingUp"'], target_matchers: ['alertname="CitusDiskWillFillIn24h"'], equal: ["instance", "environment"] }],
    receivers: [receiver, { name: "heartbeat", webhook_configs: [{ url_file: ALERT_HEARTBEAT_FILE, send_resolved: false }] }],
  };
}
