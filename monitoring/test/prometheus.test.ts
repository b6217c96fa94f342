import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { ENVIRONMENT_NAMES, PORTS, loadEnvironment, platformNames } from "@platform/config";
import { ALERTMANAGER, ALERT_HEARTBEAT_FILE, ALERT_RECEIVER_FILE, HEARTBEAT_ALERT, ALERT_RULES, EXPORTER_QUERIES, NODE_EXPORTER_PORT, POSTGRES_EXPORTER_PORT, alertmanagerPeers, RECORDING_RULES, citusHaAlerts, expectedGroupMembers, knownMetrics, renderMonitoring, ruleGroups, type AlertRule, type RecordingRule } from "../src/index.js";

const promtoolMissing = spawnSync("promtool", ["--version"]).status === 0 ? undefined : "promtool not found (apt-get install prometheus)";
if (promtoolMissing) console.warn(`skipping promtool checks: ${promtoolMissing}`);

const dir = mkdtempSync(join(tmpdir(), "monitoring-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const empty = join(dir, "empty.json");
writeFileSync(empty, "{}");
const configs = ENVIRONMENT_NAMES.map((n) => loadEnvironment(n, { env: {}, overrideFile: empty }));
// Production renders every rule (the missing-standby alert exists only where a group has a standby).
const production = configs.find((c) => c.name === "production")!;
const RULE_GROUPS = ruleGroups(production);
const EVERY_ALERT = RULE_GROUPS.flatMap((g) => g.rules.filter((r): r is AlertRule => "alert" in r));

const amtoolMissing = spawnSync("amtool", ["--version"]).status === 0 ? undefined : "amtool not found (apt-get install prometheus-alertmanager)";
if (amtoolMissing) console.warn(`skipping amtool checks: ${amtoolMissing}`);

/**
 * Debian's amtool (0.25) predates the webhook receiver's url_file, which the deployed Alertmanager reads; for this
 * amtool the heartbeat URL file is swapped for an inline placeholder URL before the check, and the test says so.
 * The pinned image (v0.28.1, config/src/images.ts) has url_file, api_url_file and routing_key_file: its tagged
 * config/notifiers.go declares WebhookConfig.URLFile, SlackConfig.APIURLFile and PagerdutyConfig.RoutingKeyFile.
 */
const amtoolKnowsWebhookUrlFile = (() => {
  if (amtoolMissing) return false;
  const probe = join(dir, "probe-alertmanager.yml");
  writeFileSync(probe, "route: { receiver: x }\nreceivers: [{ name: x, webhook_configs: [{ url_file: /tmp/x }] }]\n");
  return spawnSync("amtool", ["check-config", probe]).status === 0;
})();
if (!amtoolMissing && !amtoolKnowsWebhookUrlFile) console.warn("amtool here predates webhook url_file: the heartbeat URL file is replaced by a placeholder URL for check-config");
const forThisAmtool = (text: string) =>
  amtoolKnowsWebhookUrlFile ? text : text.replace(`url_file: ${ALERT_HEARTBEAT_FILE}`, "url: https://heartbeat.invalid/ping");

const promtool = (args: string[]) => {
  const r = spawnSync("promtool", args, { encoding: "utf8" });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
};

describe.skipIf(promtoolMissing !== undefined).each(configs.map((c) => [c.name, c] as const))("%s Prometheus content passes promtool", (env, config) => {
  let files: Record<string, string>;
  beforeAll(() => {
    files = renderMonitoring(config).files;
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, `${env}-${name}`), text);
  });

  it("promtool check rules", () => {
    const r = promtool(["check", "rules", join(dir, `${env}-platform.rules.yml`)]);
    expect(r.out).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.ok, r.out).toBe(true);
  });

  it("promtool check config (Kubernetes discovery checked structurally: Debian's promtool is built without it)", () => {
    const doc = parse(files["prometheus.yml"]!) as { scrape_configs: Record<string, unknown>[]; rule_files: string[] };
    for (const job of doc.scrape_configs) {
      const sd = job.kubernetes_sd_configs as { role: string; namespaces?: { names: string[] } }[] | undefined;
      if (!sd) continue;
      // The workloads' pods, one namespace each; the kubelets and cAdvisor on every node.
      if (["kubelet", "cadvisor"].includes(String(job.job_name))) expect(sd, String(job.job_name)).toEqual([{ role: "node" }]);
      else expect(sd, String(job.job_name)).toEqual([{ role: "pod", namespaces: { names: [expect.stringMatching(/^[a-z0-9-]+$/)] } }]);
      delete job.kubernetes_sd_configs;
      job.static_configs = [{ targets: ["placeholder:8080"] }];
      // The kubelets' jobs authenticate with the pod's mounted token and CA, which promtool checks exist: the same
      // paths are asserted, then swapped for files here.
      const auth = job.authorization as { credentials_file?: string } | undefined;
      const tls = job.tls_config as { ca_file?: string } | undefined;
      if (auth?.credentials_file) {
        expect(auth.credentials_file).toBe("/var/run/secrets/kubernetes.io/serviceaccount/token");
        auth.credentials_file = join(dir, "token");
        writeFileSync(auth.credentials_file, "token\n");
      }
      if (tls?.ca_file) {
        expect(tls.ca_file).toBe("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt");
        tls.ca_file = join(dir, "ca.crt");
        writeFileSync(tls.ca_file, "");
      }
    }
    doc.rule_files = [join(dir, `${env}-platform.rules.yml`)];
    const path = join(dir, `${env}-prometheus-check.yml`);
    writeFileSync(path, stringify(doc));
    const r = promtool(["check", "config", path]);
    expect(r.ok, r.out).toBe(true);
  });
});

describe.skipIf(amtoolMissing !== undefined).each(configs.map((c) => [c.name, c] as const))("%s Alertmanager configuration", (env, config) => {
  const check = (text: string) => {
    const path = join(dir, `${env}-alertmanager.yml`);
    writeFileSync(path, text);
    const r = spawnSync("amtool", ["check-config", path], { encoding: "utf8" });
    return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
  };

  it("passes amtool check-config, for PagerDuty and for Slack", () => {
    const pagerduty = check(forThisAmtool(renderMonitoring(config).files["alertmanager.yml"]!));
    expect(pagerduty.ok, pagerduty.out).toBe(true);
    expect(pagerduty.out).toMatch(/2 receivers/);
    const slack = check(forThisAmtool(renderMonitoring({ ...config, monitoring: { ...config.monitoring, alertReceiver: "slack", slackChannel: "#platform-alerts" } }).files["alertmanager.yml"]!));
    expect(slack.ok, slack.out).toBe(true);
  });

  it("sends the Watchdog, and only it, to the heartbeat check every minute, with the URL from a file", () => {
    const doc = parse(renderMonitoring(config).files["alertmanager.yml"]!) as { route: { routes: { receiver: string; matchers: string[]; repeat_interval: string }[] }; receivers: { name: string; webhook_configs?: { url_file: string; send_resolved: boolean }[] }[] };
    const [first] = doc.route.routes;
    expect(first).toMatchObject({ receiver: "heartbeat", matchers: [`alertname="${HEARTBEAT_ALERT}"`], repeat_interval: "1m" });
    expect(doc.receivers.find((r) => r.name === "heartbeat")!.webhook_configs).toEqual([{ url_file: ALERT_HEARTBEAT_FILE, send_resolved: false }]);
    expect(ALERT_RULES.rules.find((r) => (r as AlertRule).alert === HEARTBEAT_ALERT)).toMatchObject({ expr: "vector(1)" });
  });

  it("routes pages and tickets by the severities the rules use, reading the credential from a file", () => {
    const doc = parse(renderMonitoring(config).files["alertmanager.yml"]!) as { route: { routes: { matchers: string[] }[] }; receivers: { pagerduty_configs: { routing_key_file: string }[] }[] };
    const severities = new Set(ALERT_RULES.rules.map((r) => (r as AlertRule).labels.severity));
    expect(severities).toEqual(new Set(["page", "ticket", "heartbeat"]));
    expect(doc.route.routes.map((r) => r.matchers)).toEqual([[`alertname="${HEARTBEAT_ALERT}"`], ['severity="page"']]);
    expect(doc.receivers[0]!.pagerduty_configs[0]!.routing_key_file).toBe(ALERT_RECEIVER_FILE);
    // Every Prometheus sends to every Alertmanager replica.
    const prometheus = parse(renderMonitoring(config).files["prometheus.yml"]!) as { alerting: { alertmanagers: { static_configs: { targets: string[] }[] }[] } };
    expect(prometheus.alerting.alertmanagers[0]!.static_configs[0]!.targets).toEqual(alertmanagerPeers(config, ALERTMANAGER.port));
  });
});

/** promtool unit tests: each alert fires on the series that should page and stays quiet on healthy ones. */
describe.skipIf(promtoolMissing !== undefined)("alert rules under promtool test rules", () => {
  const cases: { alert: string; series: { series: string; values: string }[]; evalTime: string; fires: Record<string, string>[] }[] = [
    {
      alert: "TenantServiceErrorRateHigh",
      series: [
        { series: 'http_requests_total{job="tenant-service",route="/v1/items",status="200"}', values: "0+600x20" },
        { series: 'http_requests_total{job="tenant-service",route="/v1/items",status="500"}', values: "0+60x20" },
      ],
      evalTime: "15m",
      fires: [{ job: "tenant-service", severity: "page" }],
    },
    {
      alert: "TenantServiceLatencyHigh",
      series: [
        { series: 'http_request_duration_seconds_bucket{job="tenant-service",le="0.5"}', values: "0+10x30" },
        { series: 'http_request_duration_seconds_bucket{job="tenant-service",le="1"}', values: "0+100x30" },
        { series: 'http_request_duration_seconds_bucket{job="tenant-service",le="+Inf"}', values: "0+100x30" },
      ],
      evalTime: "25m",
      fires: [{ job: "tenant-service", severity: "page" }],
    },
    {
      alert: "TenantServiceReplicasDown",
      series: [{ series: 'up{job="tenant-service",pod="a"}', values: "1x20" }],
      evalTime: "10m",
      fires: [{ severity: "page" }],
    },
    {
      alert: "DatabasePoolSaturated",
      series: [
        { series: 'db_pool_connections{job="tenant-service",pod="a",state="in_use"}', values: "20x20" },
        { series: 'db_pool_max_connections{job="tenant-service",pod="a"}', values: "20x20" },
        { series: 'db_pool_waiting_clients{job="tenant-service",pod="a"}', values: "7x20" },
      ],
      evalTime: "10m",
      fires: [{ pod: "a", severity: "ticket" }],
    },
    {
      alert: "CitusShardSkewHigh",
      series: [
        { series: 'citus_node_shard_bytes{job="citus-postgres",node="w0:5432"}', values: "300x120" },
        { series: 'citus_node_shard_bytes{job="citus-postgres",node="w1:5432"}', values: "100x120" },
        { series: 'citus_node_shard_bytes{job="citus-postgres",node="w2:5432"}', values: "100x120" },
      ],
      evalTime: "90m",
      fires: [{ severity: "ticket" }],
    },
    {
      alert: "CitusReplicationLagHigh",
      series: [{ series: 'pg_replication_lag_seconds{job="citus-postgres",instance="worker-0.db.internal",application_name="standby"}', values: "120x20" }],
      evalTime: "10m",
      fires: [{ instance: "worker-0.db.internal", application_name: "standby", severity: "page" }],
    },
    {
      alert: "CitusStandbyNotStreaming",
      // worker-3's standby is down. worker-4's streams. worker-5 has no standby VM at all (dev and staging): quiet.
      series: [
        { series: 'pg_recovery_active{job="citus-postgres",instance="worker-3.db.internal",standby="false",citus_node="worker-3.db.internal"}', values: "0x30" },
        { series: 'up{job="citus-postgres",instance="worker-3-standby.db.internal",standby="true",citus_node="worker-3.db.internal"}', values: "0x30" },
        { series: 'pg_recovery_active{job="citus-postgres",instance="worker-4.db.internal",standby="false",citus_node="worker-4.db.internal"}', values: "0x30" },
        { series: 'up{job="citus-postgres",instance="worker-4-standby.db.internal",standby="true",citus_node="worker-4.db.internal"}', values: "1x30" },
        { series: 'pg_recovery_active{job="citus-postgres",instance="worker-4-standby.db.internal",standby="true",citus_node="worker-4.db.internal"}', values: "1x30" },
        { series: 'pg_replication_lag_seconds{job="citus-postgres",instance="worker-4.db.internal",standby="false",citus_node="worker-4.db.internal",application_name="standby"}', values: "0x30" },
        { series: 'pg_recovery_active{job="citus-postgres",instance="worker-5.db.internal",standby="false",citus_node="worker-5.db.internal"}', values: "0x30" },
      ],
      evalTime: "20m",
      fires: [{ job: "citus-postgres", instance: "worker-3.db.internal", standby: "false", citus_node: "worker-3.db.internal", severity: "ticket" }],
    },
    {
      alert: "CitusStandbySlotNearLimit",
      // worker-3's standby has fallen behind to 10% of the cap and keeps falling; worker-4's is at 90%: quiet.
      series: [
        { series: 'standby_slot_safe_wal_ratio{job="citus-postgres",instance="worker-3.db.internal"}', values: "0.3-0.01x20" },
        { series: 'standby_slot_safe_wal_ratio{job="citus-postgres",instance="worker-4.db.internal"}', values: "0.9x20" },
      ],
      evalTime: "20m",
      fires: [{ instance: "worker-3.db.internal", severity: "page" }],
    },
    {
      alert: "CitusWalArchivingFailing",
      series: [
        // worker-3 fails every minute and has archived nothing since t=0. worker-4 fails as often, but each failure
        // is retried and archived 30 s later: no page.
        { series: 'pg_archiver_failed{job="citus-postgres",instance="worker-3.db.internal"}', values: "0+1x40" },
        { series: 'pg_archiver_last_failed_timestamp{job="citus-postgres",instance="worker-3.db.internal"}', values: "60+60x40" },
        { series: 'pg_archiver_last_archived_timestamp{job="citus-postgres",instance="worker-3.db.internal"}', values: "0x40" },
        { series: 'pg_archiver_failed{job="citus-postgres",instance="worker-4.db.internal"}', values: "0+1x40" },
        { series: 'pg_archiver_last_failed_timestamp{job="citus-postgres",instance="worker-4.db.internal"}', values: "60+60x40" },
        { series: 'pg_archiver_last_archived_timestamp{job="citus-postgres",instance="worker-4.db.internal"}', values: "90+60x40" },
      ],
      evalTime: "35m",
      fires: [{ job: "citus-postgres", instance: "worker-3.db.internal", severity: "page" }],
    },
    {
      alert: "CitusBackupTooOld",
      // worker-3's only backup finished at t=0. worker-4's full is as old, but a diff finished a minute ago: the
      // newest backup of any type counts.
      series: [
        { series: 'pgbackrest_backup_last_completion_timestamp_seconds{job="citus-node",instance="worker-3.db.internal",stanza="saas-prd-worker-3",type="full"}', values: "0x2300" },
        { series: 'pgbackrest_backup_last_completion_timestamp_seconds{job="citus-node",instance="worker-4.db.internal",stanza="saas-prd-worker-4",type="full"}', values: "0x2300" },
        { series: 'pgbackrest_backup_last_completion_timestamp_seconds{job="citus-node",instance="worker-4.db.internal",stanza="saas-prd-worker-4",type="diff"}', values: "0+60x2300" },
      ],
      evalTime: "37h",
      fires: [{ stanza: "saas-prd-worker-3", severity: "ticket" }],
    },
    {
      alert: "CitusFullBackupTooOld",
      // Nightly diffs keep worker-3's newest backup fresh, but its last full finished nine days ago.
      series: [
        { series: 'pgbackrest_backup_last_completion_timestamp_seconds{job="citus-node",instance="worker-3.db.internal",stanza="saas-prd-worker-3",type="full"}', values: "0x12000" },
        { series: 'pgbackrest_backup_last_completion_timestamp_seconds{job="citus-node",instance="worker-3.db.internal",stanza="saas-prd-worker-3",type="diff"}', values: "0+60x12000" },
        { series: 'pgbackrest_backup_last_completion_timestamp_seconds{job="citus-node",instance="worker-4.db.internal",stanza="saas-prd-worker-4",type="full"}', values: "0+60x12000" },
      ],
      evalTime: "198h",
      fires: [{ stanza: "saas-prd-worker-3", severity: "ticket" }],
    },
    {
      alert: "CitusBackupRepositoryUnhealthy",
      series: [
        { series: 'pgbackrest_stanza_status_code{job="citus-node",instance="worker-3.db.internal",stanza="saas-prd-worker-3"}', values: "2x120" },
        { series: 'pgbackrest_stanza_status_code{job="citus-node",instance="worker-4.db.internal",stanza="saas-prd-worker-4"}', values: "0x120" },
      ],
      evalTime: "90m",
      fires: [{ stanza: "saas-prd-worker-3", severity: "ticket" }],
    },
    {
      alert: "CitusBackupFoundCorruptPages",
      series: [
        { series: 'pgbackrest_backup_error{job="citus-node",instance="worker-3.db.internal",stanza="saas-prd-worker-3",type="full"}', values: "0x20" },
        { series: 'pgbackrest_backup_error{job="citus-node",instance="worker-3.db.internal",stanza="saas-prd-worker-3",type="diff"}', values: "1x20" },
      ],
      evalTime: "10m",
      fires: [{ stanza: "saas-prd-worker-3", type: "diff", severity: "page" }],
    },
    {
      alert: "CitusBackupMetricsMissing",
      // worker-3 serves as a primary and writes no backup metrics. worker-4 does; its standby is in recovery and
      // takes no backups, so it has none to write.
      series: [
        { series: 'pg_recovery_active{job="citus-postgres",instance="worker-3.db.internal",standby="false"}', values: "0x200" },
        { series: 'pg_recovery_active{job="citus-postgres",instance="worker-4.db.internal",standby="false"}', values: "0x200" },
        { series: 'pg_recovery_active{job="citus-postgres",instance="worker-4-standby.db.internal",standby="true"}', values: "1x200" },
        { series: 'pgbackrest_stanza_status_code{job="citus-node",instance="worker-4.db.internal",stanza="saas-prd-worker-4"}', values: "0x200" },
      ],
      evalTime: "150m",
      fires: [{ job: "citus-postgres", instance: "worker-3.db.internal", standby: "false", severity: "ticket" }],
    },
    {
      alert: "CitusRestorePointTooOld",
      // Hourly restore points: the newest was written at t=0 and none since. 2h10m of age plus 15m pending.
      series: [
        { series: 'citus_restore_point_last_timestamp_seconds{job="citus-node",instance="coordinator.db.internal",name="citus-19700101T000000Z"}', values: "0x200" },
        { series: 'citus_restore_point_interval_seconds{job="citus-node",instance="coordinator.db.internal"}', values: "3600x200" },
      ],
      evalTime: "150m",
      fires: [{ severity: "ticket" }],
    },
    {
      alert: "CitusRestorePointsMissing",
      // The coordinator serves (not in recovery) and nothing reports a restore point; its standby is in recovery.
      series: [
        { series: 'pg_recovery_active{job="citus-postgres",instance="coordinator.db.internal",citus_role="coordinator",standby="false"}', values: "0x200" },
        { series: 'pg_recovery_active{job="citus-postgres",instance="coordinator-standby.db.internal",citus_role="coordinator",standby="true"}', values: "1x200" },
        { series: 'pg_recovery_active{job="citus-postgres",instance="worker-1.db.internal",citus_role="worker",standby="false"}', values: "0x200" },
      ],
      evalTime: "150m",
      fires: [{ job: "citus-postgres", instance: "coordinator.db.internal", citus_role: "coordinator", standby: "false", severity: "ticket" }],
    },
    {
      alert: "CitusDiskFillingUp",
      series: [
        { series: 'node_filesystem_avail_bytes{job="citus-node",instance="worker-1.db.internal",mountpoint="/var/lib/postgresql"}', values: "10x30" },
        { series: 'node_filesystem_size_bytes{job="citus-node",instance="worker-1.db.internal",mountpoint="/var/lib/postgresql"}', values: "100x30" },
      ],
      evalTime: "15m",
      fires: [{ job: "citus-node", instance: "worker-1.db.internal", mountpoint: "/var/lib/postgresql", severity: "page" }],
    },
    {
      alert: "CitusDiskWillFillIn24h",
      // 100 GB free, losing 1 GB every 10 minutes: empty in well under a day.
      series: [{ series: 'node_filesystem_avail_bytes{job="citus-node",instance="worker-2.db.internal",mountpoint="/var/lib/postgresql"}', values: "100000000000-100000000x600" }],
      evalTime: "7h",
      fires: [{ job: "citus-node", instance: "worker-2.db.internal", mountpoint: "/var/lib/postgresql", severity: "ticket" }],
    },
    {
      alert: "RedisMemoryHigh",
      series: [
        { series: 'redis_memory_used_bytes{job="redis"}', values: "95x30" },
        { series: 'redis_memory_max_bytes{job="redis"}', values: "100x30" },
      ],
      evalTime: "15m",
      fires: [{ job: "redis", severity: "ticket" }],
    },
    {
      alert: "RateLimitNotEnforced",
      series: [{ series: 'rate_limit_lease_renewals_total{job="tenant-service",pod="a",result="error"}', values: "0+30x20" }],
      evalTime: "15m",
      fires: [{ severity: "ticket" }],
    },
    {
      alert: "CitusRebalanceFailed",
      series: [{ series: 'citus_background_jobs_recent{job="citus-postgres",status="failed"}', values: "0 0 1 1" }],
      evalTime: "3m",
      fires: [{ severity: "page" }],
    },
    {
      alert: "CitusShardMoveNotProgressing",
      // worker-1's subscription fails to apply (forced row-level security did this). worker-2's applies and moves on.
      // worker-3's is still copying (disabled): quiet.
      series: [
        { series: 'citus_move_subscription_enabled{job="citus-postgres",instance="worker-1.db.internal",subscription="citus_shard_move_subscription_10_1"}', values: "1x30" },
        { series: 'citus_move_subscription_applying{job="citus-postgres",instance="worker-1.db.internal",subscription="citus_shard_move_subscription_10_1"}', values: "0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 1" },
        { series: 'citus_move_subscription_apply_errors{job="citus-postgres",instance="worker-1.db.internal",subscription="citus_shard_move_subscription_10_1"}', values: "0+12x30" },
        { series: 'citus_move_subscription_received_lsn_bytes{job="citus-postgres",instance="worker-1.db.internal",subscription="citus_shard_move_subscription_10_1"}', values: "1000x30" },
        { series: 'citus_move_subscription_enabled{job="citus-postgres",instance="worker-2.db.internal",subscription="citus_shard_move_subscription_11_2"}', values: "1x30" },
        { series: 'citus_move_subscription_applying{job="citus-postgres",instance="worker-2.db.internal",subscription="citus_shard_move_subscription_11_2"}', values: "1x30" },
        { series: 'citus_move_subscription_apply_errors{job="citus-postgres",instance="worker-2.db.internal",subscription="citus_shard_move_subscription_11_2"}', values: "0x30" },
        { series: 'citus_move_subscription_received_lsn_bytes{job="citus-postgres",instance="worker-2.db.internal",subscription="citus_shard_move_subscription_11_2"}', values: "1000+5000x30" },
        { series: 'citus_move_subscription_enabled{job="citus-postgres",instance="worker-3.db.internal",subscription="citus_shard_move_subscription_12_3"}', values: "0x30" },
        { series: 'citus_move_subscription_applying{job="citus-postgres",instance="worker-3.db.internal",subscription="citus_shard_move_subscription_12_3"}', values: "0x30" },
        { series: 'citus_move_subscription_apply_errors{job="citus-postgres",instance="worker-3.db.internal",subscription="citus_shard_move_subscription_12_3"}', values: "0x30" },
        { series: 'citus_move_subscription_received_lsn_bytes{job="citus-postgres",instance="worker-3.db.internal",subscription="citus_shard_move_subscription_12_3"}', values: "0x30" },
      ],
      evalTime: "25m",
      fires: [{ instance: "worker-1.db.internal", subscription: "citus_shard_move_subscription_10_1", severity: "page" }],
    },
    {
      alert: "CitusRebalanceTaskRetrying",
      series: [
        { series: 'citus_background_tasks_max_retries{job="citus-postgres",status="runnable"}', values: "0 0 1 1 2 2 3 3 4 4 5 5 6 6 7 7 8 8 9 9 10 10 11 11 12 12 13 13 14 14 15 15 16 16 17 17 18 18 19 19" },
        { series: 'citus_background_tasks_max_retries{job="citus-postgres",status="done"}', values: "3x40" },
      ],
      evalTime: "39m",
      fires: [{ severity: "ticket" }],
    },
    {
      alert: "CitusReplicationSlotRetainingWal",
      // worker-1's move slot keeps growing toward the cap; worker-2's keeps 10% of it and drains.
      series: [
        { series: 'replication_slot_safe_wal_ratio{job="citus-postgres",instance="worker-1.db.internal",slot="citus_shard_move_slot_1_10_1",type="logical"}', values: "0.9-0.03x30" },
        { series: 'replication_slot_safe_wal_ratio{job="citus-postgres",instance="worker-2.db.internal",slot="citus_shard_move_slot_2_11_2",type="logical"}', values: "0.9x30" },
      ],
      evalTime: "30m",
      fires: [{ instance: "worker-1.db.internal", slot: "citus_shard_move_slot_1_10_1", severity: "page" }],
    },
    {
      alert: "CitusReplicationSlotInactive",
      series: [
        { series: 'replication_slot_active{job="citus-postgres",instance="worker-1.db.internal",slot="citus_shard_move_slot_1_10_1",type="logical"}', values: "0x50" },
        { series: 'replication_slot_retained_bytes{job="citus-postgres",instance="worker-1.db.internal",slot="citus_shard_move_slot_1_10_1",type="logical"}', values: "2000000000x50" },
        { series: 'replication_slot_active{job="citus-postgres",instance="worker-2.db.internal",slot="citus_shard_move_slot_2_11_2",type="logical"}', values: "1x50" },
        { series: 'replication_slot_retained_bytes{job="citus-postgres",instance="worker-2.db.internal",slot="citus_shard_move_slot_2_11_2",type="logical"}', values: "2000000000x50" },
      ],
      evalTime: "45m",
      fires: [{ instance: "worker-1.db.internal", slot: "citus_shard_move_slot_1_10_1", severity: "ticket" }],
    },
    {
      alert: "CitusNodeDown",
      // worker-3's PostgreSQL is down behind a live exporter; worker-5's VM does not answer at all; worker-4 is fine.
      series: [
        { series: 'pg_up{job="citus-postgres",instance="worker-3.db.internal",citus_role="worker",standby="false",citus_node="worker-3.db.internal"}', values: "0x10" },
        { series: 'up{job="citus-postgres",instance="worker-3.db.internal",citus_role="worker",standby="false",citus_node="worker-3.db.internal"}', values: "1x10" },
        { series: 'pg_up{job="citus-postgres",instance="worker-4.db.internal",citus_role="worker",standby="false",citus_node="worker-4.db.internal"}', values: "1x10" },
        { series: 'up{job="citus-postgres",instance="worker-4.db.internal",citus_role="worker",standby="false",citus_node="worker-4.db.internal"}', values: "1x10" },
        { series: 'up{job="citus-postgres",instance="worker-5.db.internal",citus_role="worker",standby="false",citus_node="worker-5.db.internal"}', values: "0x10" },
      ],
      evalTime: "5m",
      fires: [
        { job: "citus-postgres", instance: "worker-3.db.internal", citus_role: "worker", standby: "false", citus_node: "worker-3.db.internal", severity: "page" },
        { job: "citus-postgres", instance: "worker-5.db.internal", citus_role: "worker", standby: "false", citus_node: "worker-5.db.internal", severity: "page" },
      ],
    },
    {
      alert: "CitusGroupWithoutLeader",
      // Group 1: one member answers as a replica, the other not at all. Group 2 has its leader. Group 3 lost its
      // leader for one scrape only (a failover in flight): quiet.
      series: [
        { series: 'up{job="patroni",instance="saas-prd-citus-worker-0",citus_group="1"}', values: "1x10" },
        { series: 'patroni_primary{job="patroni",instance="saas-prd-citus-worker-0",citus_group="1"}', values: "0x10" },
        { series: 'up{job="patroni",instance="saas-prd-citus-worker-0-standby",citus_group="1"}', values: "0x10" },
        { series: 'up{job="patroni",instance="saas-prd-citus-worker-1",citus_group="2"}', values: "1x10" },
        { series: 'patroni_primary{job="patroni",instance="saas-prd-citus-worker-1",citus_group="2"}', values: "1x10" },
        { series: 'up{job="patroni",instance="saas-prd-citus-worker-1-standby",citus_group="2"}', values: "1x10" },
        { series: 'patroni_primary{job="patroni",instance="saas-prd-citus-worker-1-standby",citus_group="2"}', values: "0x10" },
        { series: 'up{job="patroni",instance="saas-prd-citus-worker-2",citus_group="3"}', values: "1x10" },
        { series: 'patroni_primary{job="patroni",instance="saas-prd-citus-worker-2",citus_group="3"}', values: "1 1 1 1 0 0 1x4" },
      ],
      evalTime: "5m",
      fires: [{ citus_group: "1", severity: "page" }],
    },
    {
      alert: "CitusFailoverHappened",
      // Group 1: the primary's PostgreSQL was killed at 20m, the standby took timeline 2. Group 2: a replica was
      // restarted (timeline 0 while it was down, then the same timeline): no promotion, quiet.
      series: [
        { series: 'patroni_postgres_timeline{job="patroni",instance="saas-prd-citus-worker-0",citus_group="1"}', values: "1x20 0x40" },
        { series: 'patroni_postgres_timeline{job="patroni",instance="saas-prd-citus-worker-0-standby",citus_group="1"}', values: "1x20 2x40" },
        { series: 'patroni_postgres_timeline{job="patroni",instance="saas-prd-citus-worker-1",citus_group="2"}', values: "3x60" },
        { series: 'patroni_postgres_timeline{job="patroni",instance="saas-prd-citus-worker-1-standby",citus_group="2"}', values: "3x10 0x5 3x45" },
      ],
      evalTime: "30m",
      fires: [{ citus_group: "1", severity: "ticket" }],
    },
    {
      alert: "CitusReplicaBehindFailoverLimit",
      // Group 1's replica replays nothing while its leader writes on: 50 MB and more behind. Group 2's receives all, and
      // its second replica is being re-cloned (PostgreSQL not running, replayed 0): quiet, CitusGroupMissingStandby's.
      series: [
        { series: 'patroni_xlog_location{job="patroni",instance="saas-prd-citus-worker-0",citus_group="1"}', values: "100000000+1000000x30" },
        { series: 'patroni_xlog_replayed_location{job="patroni",instance="saas-prd-citus-worker-0",citus_group="1"}', values: "0x30" },
        { series: 'patroni_replica{job="patroni",instance="saas-prd-citus-worker-0",citus_group="1"}', values: "0x30" },
        { series: 'patroni_postgres_running{job="patroni",instance="saas-prd-citus-worker-0",citus_group="1"}', values: "1x30" },
        { series: 'patroni_xlog_location{job="patroni",instance="saas-prd-citus-worker-0-standby",citus_group="1"}', values: "0x30" },
        { series: 'patroni_xlog_replayed_location{job="patroni",instance="saas-prd-citus-worker-0-standby",citus_group="1"}', values: "50000000x30" },
        { series: 'patroni_replica{job="patroni",instance="saas-prd-citus-worker-0-standby",citus_group="1"}', values: "1x30" },
        { series: 'patroni_postgres_running{job="patroni",instance="saas-prd-citus-worker-0-standby",citus_group="1"}', values: "1x30" },
        { series: 'patroni_xlog_location{job="patroni",instance="saas-prd-citus-worker-1",citus_group="2"}', values: "100000000+1000000x30" },
        { series: 'patroni_replica{job="patroni",instance="saas-prd-citus-worker-1",citus_group="2"}', values: "0x30" },
        // Group 2's replica has received everything but replays slowly: Patroni would promote it, so quiet.
        { series: 'patroni_xlog_received_location{job="patroni",instance="saas-prd-citus-worker-1-standby",citus_group="2"}', values: "100000000+1000000x30" },
        { series: 'patroni_xlog_replayed_location{job="patroni",instance="saas-prd-citus-worker-1-standby",citus_group="2"}', values: "60000000+1000000x30" },
        { series: 'patroni_replica{job="patroni",instance="saas-prd-citus-worker-1-standby",citus_group="2"}', values: "1x30" },
        { series: 'patroni_postgres_running{job="patroni",instance="saas-prd-citus-worker-1-standby",citus_group="2"}', values: "1x30" },
        { series: 'patroni_xlog_location{job="patroni",instance="saas-prd-citus-worker-1-spare",citus_group="2"}', values: "0x30" },
        { series: 'patroni_xlog_replayed_location{job="patroni",instance="saas-prd-citus-worker-1-spare",citus_group="2"}', values: "0x30" },
        { series: 'patroni_replica{job="patroni",instance="saas-prd-citus-worker-1-spare",citus_group="2"}', values: "1x30" },
        { series: 'patroni_postgres_running{job="patroni",instance="saas-prd-citus-worker-1-spare",citus_group="2"}', values: "0x30" },
      ],
      evalTime: "20m",
      fires: [{ instance: "saas-prd-citus-worker-0-standby", job: "patroni", citus_group: "1", severity: "page" }],
    },
    {
      alert: "CitusPatroniPaused",
      // Group 1 was paused and left so; group 2's maintenance ended after half an hour.
      series: [
        { series: 'patroni_is_paused{job="patroni",instance="saas-prd-citus-worker-0",citus_group="1"}', values: "1x150" },
        { series: 'patroni_is_paused{job="patroni",instance="saas-prd-citus-worker-1",citus_group="2"}', values: "1x30 0x120" },
      ],
      evalTime: "150m",
      fires: [{ citus_group: "1", severity: "ticket" }],
    },
    {
      alert: "CitusPatroniNotScraped",
      // Three Citus VMs answer their exporter, and no Patroni target was discovered at all (no IAM for GCE discovery).
      series: [
        { series: 'up{job="citus-postgres",instance="coordinator.db.internal"}', values: "1x30" },
        { series: 'up{job="citus-postgres",instance="worker-0.db.internal"}', values: "1x30" },
        { series: 'up{job="citus-postgres",instance="worker-1.db.internal"}', values: "1x30" },
      ],
      evalTime: "20m",
      fires: [{ severity: "ticket" }],
    },
    {
      alert: "CitusGroupMissingStandby",
      // Production configures two members per group. Group 1's standby VM is gone (no series at all); group 3's is
      // there but its PostgreSQL does not run; group 2 is whole.
      series: [
        { series: 'patroni_primary{job="patroni",instance="saas-prd-citus-worker-0",citus_group="1"}', values: "1x30" },
        { series: 'patroni_replica{job="patroni",instance="saas-prd-citus-worker-0",citus_group="1"}', values: "0x30" },
        { series: 'patroni_primary{job="patroni",instance="saas-prd-citus-worker-1",citus_group="2"}', values: "1x30" },
        { series: 'patroni_primary{job="patroni",instance="saas-prd-citus-worker-1-standby",citus_group="2"}', values: "0x30" },
        { series: 'patroni_replica{job="patroni",instance="saas-prd-citus-worker-1-standby",citus_group="2"}', values: "1x30" },
        { series: 'patroni_postgres_running{job="patroni",instance="saas-prd-citus-worker-1-standby",citus_group="2"}', values: "1x30" },
        { series: 'patroni_primary{job="patroni",instance="saas-prd-citus-worker-2",citus_group="3"}', values: "1x30" },
        { series: 'patroni_replica{job="patroni",instance="saas-prd-citus-worker-2-standby",citus_group="3"}', values: "1x30" },
        { series: 'patroni_postgres_running{job="patroni",instance="saas-prd-citus-worker-2-standby",citus_group="3"}', values: "0x30" },
      ],
      evalTime: "20m",
      fires: [
        { citus_group: "1", severity: "ticket" },
        { citus_group: "3", severity: "ticket" },
      ],
    },
    {
      alert: "RedisDown",
      // The exporter answers but has not reached Memorystore since minute 2; a one-minute blip at 20m is not paged.
      series: [{ series: 'redis_up{job="redis",instance="redis-exporter:9121"}', values: "1x2 0x10" }],
      evalTime: "8m",
      fires: [{ job: "redis", instance: "redis-exporter:9121", severity: "ticket" }],
    },
    {
      alert: "RedisExporterDown",
      // Scraped for five minutes, then the target vanished (its pod gone, the Service with no endpoints).
      // Gone from the 5-minute lookback at 11m, then 10 minutes of for.
      series: [{ series: 'up{job="redis",instance="redis-exporter:9121"}', values: "1x5" }],
      evalTime: "25m",
      // absent() carries the selector's equality matchers.
      fires: [{ job: "redis", severity: "ticket" }],
    },
    {
      alert: "CitusSlowQuery",
      // On worker-0, statement 42 runs twice a second at 0.8 s each; statement 7 once a second at 0.1 s; statement 9
      // is slow (5 s) but ran once in the window: not a pattern. Only 42 fires.
      series: [
        { series: 'pg_top_statements_calls{job="citus-postgres",instance="worker-0.db.internal",citus_role="worker",queryid="42",database="platform",user="platform_app"}', values: "0+120x40" },
        { series: 'pg_top_statements_exec_seconds{job="citus-postgres",instance="worker-0.db.internal",citus_role="worker",queryid="42",database="platform",user="platform_app"}', values: "0+96x40" },
        { series: 'pg_top_statements_calls{job="citus-postgres",instance="worker-0.db.internal",citus_role="worker",queryid="7",database="platform",user="platform_app"}', values: "0+60x40" },
        { series: 'pg_top_statements_exec_seconds{job="citus-postgres",instance="worker-0.db.internal",citus_role="worker",queryid="7",database="platform",user="platform_app"}', values: "0+6x40" },
        { series: 'pg_top_statements_calls{job="citus-postgres",instance="worker-0.db.internal",citus_role="worker",queryid="9",database="platform",user="platform_app"}', values: "0x20 1x20" },
        { series: 'pg_top_statements_exec_seconds{job="citus-postgres",instance="worker-0.db.internal",citus_role="worker",queryid="9",database="platform",user="platform_app"}', values: "0x20 5x20" },
      ],
      evalTime: "40m",
      fires: [{ instance: "worker-0.db.internal", citus_role: "worker", queryid: "42", database: "platform", user: "platform_app", severity: "ticket" }],
    },
    // The Kubernetes layer (src/kubernetes-rules.ts), on series as kube-state-metrics and the kubelet name them. Each
    // has a platform namespace that should fire and kube-system, which is Google's to watch, that should not.
    {
      alert: "KubePodCrashLooping",
      series: [
        { series: 'kube_pod_container_status_waiting_reason{job="kube-state-metrics",namespace="tenants",pod="tenant-service-abc",container="tenant-service",reason="CrashLoopBackOff"}', values: "1 0 1 0 1x30" },
        { series: 'kube_pod_container_status_waiting_reason{job="kube-state-metrics",namespace="kube-system",pod="dns",container="dns",reason="CrashLoopBackOff"}', values: "1x30" },
      ],
      evalTime: "25m",
      fires: [{ job: "kube-state-metrics", namespace: "tenants", pod: "tenant-service-abc", container: "tenant-service", reason: "CrashLoopBackOff", severity: "ticket" }],
    },
    {
      alert: "KubePodNotReady",
      // A Deployment's pod stuck Pending; a Job's pod that Failed (by design) is not reported.
      series: [
        { series: 'kube_pod_status_phase{job="kube-state-metrics",namespace="tenants",pod="tenant-service-abc",phase="Pending"}', values: "1x30" },
        { series: 'kube_pod_owner{job="kube-state-metrics",namespace="tenants",pod="tenant-service-abc",owner_kind="ReplicaSet"}', values: "1x30" },
        { series: 'kube_pod_status_phase{job="kube-state-metrics",namespace="auth",pod="hydra-migrate-x",phase="Failed"}', values: "1x30" },
        { series: 'kube_pod_owner{job="kube-state-metrics",namespace="auth",pod="hydra-migrate-x",owner_kind="Job"}', values: "1x30" },
      ],
      evalTime: "20m",
      fires: [{ namespace: "tenants", pod: "tenant-service-abc", severity: "ticket" }],
    },
    {
      alert: "KubeDeploymentReplicasMismatch",
      // tenant-service wants 3 and has 2, with no rollout moving; kong is mid-rollout (its updated count moves).
      series: [
        { series: 'kube_deployment_spec_replicas{job="kube-state-metrics",namespace="tenants",deployment="tenant-service"}', values: "3x30" },
        { series: 'kube_deployment_status_replicas_available{job="kube-state-metrics",namespace="tenants",deployment="tenant-service"}', values: "2x30" },
        { series: 'kube_deployment_status_replicas_updated{job="kube-state-metrics",namespace="tenants",deployment="tenant-service"}', values: "3x30" },
        { series: 'kube_deployment_spec_replicas{job="kube-state-metrics",namespace="gateway",deployment="kong"}', values: "3x30" },
        { series: 'kube_deployment_status_replicas_available{job="kube-state-metrics",namespace="gateway",deployment="kong"}', values: "2x30" },
        { series: 'kube_deployment_status_replicas_updated{job="kube-state-metrics",namespace="gateway",deployment="kong"}', values: "0+1x30" },
      ],
      evalTime: "25m",
      fires: [{ job: "kube-state-metrics", namespace: "tenants", deployment: "tenant-service", severity: "ticket" }],
    },
    {
      alert: "KubeStatefulSetReplicasMismatch",
      series: [
        { series: 'kube_statefulset_status_replicas{job="kube-state-metrics",namespace="monitoring",statefulset="prometheus"}', values: "2x30" },
        { series: 'kube_statefulset_status_replicas_ready{job="kube-state-metrics",namespace="monitoring",statefulset="prometheus"}', values: "1x30" },
        { series: 'kube_statefulset_status_replicas_updated{job="kube-state-metrics",namespace="monitoring",statefulset="prometheus"}', values: "2x30" },
      ],
      evalTime: "25m",
      fires: [{ job: "kube-state-metrics", namespace: "monitoring", statefulset: "prometheus", severity: "ticket" }],
    },
    {
      alert: "KubeHpaMaxedOut",
      // tenant-service has sat at its maximum of 10 since minute 5; kong touched its maximum for two minutes.
      series: [
        { series: 'kube_horizontalpodautoscaler_status_current_replicas{job="kube-state-metrics",namespace="tenants",horizontalpodautoscaler="tenant-service"}', values: "4x5 10x30" },
        { series: 'kube_horizontalpodautoscaler_spec_max_replicas{job="kube-state-metrics",namespace="tenants",horizontalpodautoscaler="tenant-service"}', values: "10x35" },
        { series: 'kube_horizontalpodautoscaler_status_current_replicas{job="kube-state-metrics",namespace="gateway",horizontalpodautoscaler="kong"}', values: "3x10 6x2 3x23" },
        { series: 'kube_horizontalpodautoscaler_spec_max_replicas{job="kube-state-metrics",namespace="gateway",horizontalpodautoscaler="kong"}', values: "6x35" },
      ],
      evalTime: "30m",
      fires: [{ job: "kube-state-metrics", namespace: "tenants", horizontalpodautoscaler: "tenant-service", severity: "ticket" }],
    },
    {
      alert: "KubePersistentVolumeFillingUp",
      series: [
        { series: 'kubelet_volume_stats_available_bytes{job="kubelet",namespace="monitoring",persistentvolumeclaim="data-prometheus-0"}', values: "2x10" },
        { series: 'kubelet_volume_stats_capacity_bytes{job="kubelet",namespace="monitoring",persistentvolumeclaim="data-prometheus-0"}', values: "100x10" },
        { series: 'kubelet_volume_stats_used_bytes{job="kubelet",namespace="monitoring",persistentvolumeclaim="data-prometheus-0"}', values: "98x10" },
        { series: 'kubelet_volume_stats_available_bytes{job="kubelet",namespace="monitoring",persistentvolumeclaim="data-prometheus-1"}', values: "50x10" },
        { series: 'kubelet_volume_stats_capacity_bytes{job="kubelet",namespace="monitoring",persistentvolumeclaim="data-prometheus-1"}', values: "100x10" },
        { series: 'kubelet_volume_stats_used_bytes{job="kubelet",namespace="monitoring",persistentvolumeclaim="data-prometheus-1"}', values: "50x10" },
      ],
      evalTime: "5m",
      fires: [{ job: "kubelet", namespace: "monitoring", persistentvolumeclaim: "data-prometheus-0", severity: "page" }],
    },
    {
      alert: "KubePersistentVolumeWillFill",
      // 14% free and losing 1% of its capacity every 10 minutes; its neighbour is as full but steady.
      series: [
        { series: 'kubelet_volume_stats_available_bytes{job="kubelet",namespace="monitoring",persistentvolumeclaim="data-alertmanager-0"}', values: "14000-10x500" },
        { series: 'kubelet_volume_stats_capacity_bytes{job="kubelet",namespace="monitoring",persistentvolumeclaim="data-alertmanager-0"}', values: "100000x500" },
        { series: 'kubelet_volume_stats_used_bytes{job="kubelet",namespace="monitoring",persistentvolumeclaim="data-alertmanager-0"}', values: "86000+10x500" },
        { series: 'kubelet_volume_stats_available_bytes{job="kubelet",namespace="monitoring",persistentvolumeclaim="data-alertmanager-1"}', values: "9000x500" },
        { series: 'kubelet_volume_stats_capacity_bytes{job="kubelet",namespace="monitoring",persistentvolumeclaim="data-alertmanager-1"}', values: "100000x500" },
        { series: 'kubelet_volume_stats_used_bytes{job="kubelet",namespace="monitoring",persistentvolumeclaim="data-alertmanager-1"}', values: "91000x500" },
      ],
      evalTime: "8h",
      fires: [{ job: "kubelet", namespace: "monitoring", persistentvolumeclaim: "data-alertmanager-0", severity: "ticket" }],
    },
    {
      alert: "KubeJobFailed",
      series: [
        { series: 'kube_job_failed{job="kube-state-metrics",namespace="auth",job_name="hydra-migrate",condition="true"}', values: "1x30" },
        { series: 'kube_job_failed{job="kube-state-metrics",namespace="auth",job_name="hydra-migrate",condition="false"}', values: "0x30" },
      ],
      evalTime: "20m",
      fires: [{ job: "kube-state-metrics", namespace: "auth", job_name: "hydra-migrate", condition: "true", severity: "ticket" }],
    },
    {
      alert: "KubeNodeNotReady",
      series: [
        { series: 'kube_node_status_condition{job="kube-state-metrics",node="gke-a",condition="Ready",status="true"}', values: "0x30" },
        { series: 'kube_node_status_condition{job="kube-state-metrics",node="gke-b",condition="Ready",status="true"}', values: "1x30" },
      ],
      evalTime: "20m",
      fires: [{ job: "kube-state-metrics", node: "gke-a", condition: "Ready", status: "true", severity: "ticket" }],
    },
    {
      alert: "WorkerJobsFailing",
      series: [{ series: 'worker_jobs_total{job="tenant-worker",task="metrics.rollup-batch",outcome="failed"}', values: "0+6x60" }],
      evalTime: "45m",
      fires: [{ task: "metrics.rollup-batch", severity: "ticket" }],
    },
    {
      alert: "WorkersDying",
      // Two worker pods' sweeps find three dead processes between them within the hour (each counted once, by the
      // sweep that released it); two would not be enough.
      series: [
        { series: 'worker_processes_found_dead_total{job="tenant-worker",pod="w1"}', values: "0 0 1 1 1 2 2 2 2 2 2" },
        { series: 'worker_processes_found_dead_total{job="tenant-worker",pod="w2"}', values: "0 0 0 0 0 0 0 1 1 1 1" },
      ],
      evalTime: "10m",
      fires: [{ severity: "ticket" }],
    },
    {
      alert: "WorkersDying",
      // Two in the hour (a node lost with two worker pods on it): quiet.
      series: [{ series: 'worker_processes_found_dead_total{job="tenant-worker",pod="w1"}', values: "0 0 2 2 2 2 2 2 2 2 2" }],
      evalTime: "10m",
      fires: [],
    },
    {
      alert: "ExportsGivenUp",
      // The service (two pods) and the worker's sweep give up three stale exports between them in an hour (worker
      // deaths); a single job_lost is not enough.
      series: [
        { series: 'exports_given_up_total{job="tenant-service",pod="a",reason="stale"}', values: "0 0 0 1 1 1 1 1 1 1 1 1 1" },
        { series: 'exports_given_up_total{job="tenant-service",pod="b",reason="stale"}', values: "0 0 0 0 0 1 1 1 1 1 1 1 1" },
        { series: 'exports_given_up_total{job="tenant-worker",pod="w",reason="stale"}', values: "0 0 0 0 0 0 0 1 1 1 1 1 1" },
        { series: 'exports_given_up_total{job="tenant-service",pod="c",reason="job_lost"}', values: "0 0 0 0 1 1 1 1 1 1 1 1 1" },
      ],
      evalTime: "12m",
      fires: [{ reason: "stale", severity: "ticket" }],
    },
    {
      alert: "WebhookDeliveriesFailing",
      // 9 failed attempts and 1 delivered a minute (90%); a receiver's own failures among many deliveries would not.
      series: [
        { series: 'webhook_deliveries_total{job="tenant-worker",outcome="retry"}', values: "0+9x60" },
        { series: 'webhook_deliveries_total{job="tenant-worker",outcome="delivered"}', values: "0+1x60" },
      ],
      evalTime: "50m",
      fires: [{ severity: "ticket" }],
    },
    {
      alert: "OtelCollectorRefusingSpans",
      // Pod a's memory_limiter refuses 50 spans a minute of 1,050; pod b refuses none: 2.4% of the whole.
      series: [
        { series: 'otelcol_receiver_accepted_spans{job="otel-collector",pod="otel-collector-a",receiver="otlp",transport="http"}', values: "0+1000x30" },
        { series: 'otelcol_receiver_refused_spans{job="otel-collector",pod="otel-collector-a",receiver="otlp",transport="http"}', values: "0+50x30" },
        { series: 'otelcol_receiver_accepted_spans{job="otel-collector",pod="otel-collector-b",receiver="otlp",transport="http"}', values: "0+1000x30" },
        { series: 'otelcol_receiver_refused_spans{job="otel-collector",pod="otel-collector-b",receiver="otlp",transport="http"}', values: "0x30" },
      ],
      evalTime: "25m",
      fires: [{ job: "otel-collector", severity: "ticket" }],
    },
    {
      alert: "OtelCollectorExportFailing",
      // Cloud Trace refuses one batch in six (the series appears with the first failure, as the collector's does).
      series: [
        { series: 'otelcol_exporter_sent_spans{job="otel-collector",pod="otel-collector-a",exporter="googlecloud"}', values: "0+1000x30" },
        { series: 'otelcol_exporter_send_failed_spans{job="otel-collector",pod="otel-collector-a",exporter="googlecloud"}', values: "_ 200+200x29" },
      ],
      evalTime: "20m",
      fires: [{ job: "otel-collector", exporter: "googlecloud", severity: "ticket" }],
    },
    {
      alert: "Watchdog",
      series: [],
      evalTime: "1m",
      fires: [{ severity: "heartbeat" }],
    },
    {
      alert: "PrometheusRuleEvaluationFailing",
      series: [{ series: 'prometheus_rule_evaluation_failures_total{job="prometheus",instance="localhost:9090",rule_group="platform.alerts"}', values: "0+3x40" }],
      evalTime: "30m",
      fires: [{ instance: "localhost:9090", severity: "page" }],
    },
    {
      alert: "PrometheusAlertmanagerUnreachable",
      series: [
        { series: 'prometheus_notifications_alertmanagers_discovered{job="prometheus",instance="localhost:9090"}', values: "1x30" },
        { series: 'prometheus_notifications_errors_total{job="prometheus",instance="localhost:9090",alertmanager="am-1"}', values: "0x30" },
      ],
      evalTime: "20m",
      fires: [{ instance: "localhost:9090", severity: "ticket" }],
    },
    {
      alert: "AlertmanagerNotificationsFailing",
      series: [{ series: 'alertmanager_notifications_failed_total{job="alertmanager",instance="am-0",integration="pagerduty",reason="serverError"}', values: "0+2x30" }],
      evalTime: "20m",
      fires: [{ integration: "pagerduty", severity: "page" }],
    },
    {
      alert: "AlertmanagerClusterDegraded",
      series: [
        { series: 'alertmanager_cluster_members{job="alertmanager",instance="am-0"}', values: "1x30" },
        { series: 'up{job="alertmanager",instance="am-0"}', values: "1x30" },
        { series: 'up{job="alertmanager",instance="am-1"}', values: "0x30" },
      ],
      evalTime: "20m",
      fires: [{ severity: "ticket" }],
    },
  ];

  it("has a firing case for every alert", () => {
    expect(EVERY_ALERT.map((r) => r.alert).filter((a) => !cases.some((c) => c.alert === a))).toEqual([]);
  });

  // promtool evaluates every rule at every step of every case (the backup cases span 40 hours): over a minute here.
  it("fires each alert on its bad series and not on healthy ones (promtool test rules)", { timeout: 300_000 }, () => {
    // Annotations are templates checked by `promtool check rules`; these tests are about when alerts fire.
    const withoutAnnotations = RULE_GROUPS.map((g) => ({ ...g, rules: g.rules.map((r) => ("alert" in r ? { ...r, annotations: undefined } : r)) }));
    writeFileSync(join(dir, "unit-rules.yml"), stringify({ groups: withoutAnnotations }, { lineWidth: 0 }));
    const tests = cases.flatMap((c) => [
      {
        interval: "1m",
        input_series: c.series,
        alert_rule_test: [{ eval_time: c.evalTime, alertname: c.alert, exp_alerts: c.fires.map((labels) => ({ exp_labels: { alertname: c.alert, ...labels } })) }].map(({ alertname, ...rest }) => ({
          alertname,
          ...rest,
          exp_alerts: rest.exp_alerts.map((e) => ({ exp_labels: Object.fromEntries(Object.entries(e.exp_labels).filter(([k]) => k !== "alertname")) })),
        })),
      },
    ]);
    // Healthy traffic: no alert at all.
    tests.push({
      interval: "1m",
      input_series: [
        { series: 'http_requests_total{job="tenant-service",route="/v1/items",status="200"}', values: "0+600x30" },
        { series: 'up{job="tenant-service",pod="a"}', values: "1x30" },
        { series: 'up{job="tenant-service",pod="b"}', values: "1x30" },
        { series: 'up{job="redis",instance="redis-exporter:9121"}', values: "1x30" },
        { series: 'redis_up{job="redis",instance="redis-exporter:9121"}', values: "1x30" },
        // A Redis with no maxmemory (0): no limit to be near, not an infinite ratio (a live Redis showed it).
        { series: 'redis_memory_used_bytes{job="redis",instance="redis-exporter:9121"}', values: "1000000x30" },
        { series: 'redis_memory_max_bytes{job="redis",instance="redis-exporter:9121"}', values: "0x30" },
        // Leases granted and windows used up are the limiter working; only errors mean it is not.
        { series: 'rate_limit_lease_renewals_total{job="tenant-service",pod="a",result="granted"}', values: "0+50x30" },
        { series: 'rate_limit_lease_renewals_total{job="tenant-service",pod="a",result="exhausted"}', values: "0+5x30" },
        { series: 'rate_limit_lease_renewals_total{job="tenant-service",pod="a",result="error"}', values: "0x30" },
      ],
      alert_rule_test: ["TenantServiceErrorRateHigh", "TenantServiceReplicasDown", "RateLimitNotEnforced", "RedisDown", "RedisExporterDown", "RedisMemoryHigh"].map((alertname) => ({ eval_time: "20m", alertname, exp_alerts: [] })),
      // No 5xx at all is an error ratio of 0, not an empty series.
      promql_expr_test: [{ expr: "job:http_requests:error_ratio_rate5m", eval_time: "20m", exp_samples: [{ labels: 'job:http_requests:error_ratio_rate5m{job="tenant-service"}', value: 0 }] }],
    } as never);
    // A healthy alert path: both Alertmanagers found and clustered, rules evaluating, notifications delivered.
    tests.push({
      interval: "1m",
      input_series: [
        { series: 'prometheus_notifications_alertmanagers_discovered{job="prometheus",instance="localhost:9090"}', values: "2x30" },
        { series: 'prometheus_notifications_errors_total{job="prometheus",instance="localhost:9090",alertmanager="am-0"}', values: "0x30" },
        { series: 'prometheus_rule_evaluation_failures_total{job="prometheus",instance="localhost:9090",rule_group="platform.alerts"}', values: "0x30" },
        { series: 'alertmanager_notifications_failed_total{job="alertmanager",instance="am-0",integration="pagerduty",reason="serverError"}', values: "0x30" },
        { series: 'alertmanager_cluster_members{job="alertmanager",instance="am-0"}', values: "2x30" },
        { series: 'alertmanager_cluster_members{job="alertmanager",instance="am-1"}', values: "2x30" },
        { series: 'up{job="alertmanager",instance="am-0"}', values: "1x30" },
        { series: 'up{job="alertmanager",instance="am-1"}', values: "1x30" },
      ],
      alert_rule_test: ["PrometheusRuleEvaluationFailing", "PrometheusAlertmanagerUnreachable", "AlertmanagerNotificationsFailing", "AlertmanagerClusterDegraded"].map((alertname) => ({ eval_time: "25m", alertname, exp_alerts: [] })),
    } as never);
    // A healthy trace pipeline: a refused span now and then (0.25%), one export in a thousand failing on one pod, and
    // on the other no failure ever, so no send_failed series at all (the collector creates it at the first failure).
    tests.push({
      interval: "1m",
      input_series: [
        { series: 'otelcol_receiver_accepted_spans{job="otel-collector",pod="otel-collector-a",receiver="otlp",transport="http"}', values: "0+2000x30" },
        { series: 'otelcol_receiver_refused_spans{job="otel-collector",pod="otel-collector-a",receiver="otlp",transport="http"}', values: "0+5x30" },
        { series: 'otelcol_exporter_sent_spans{job="otel-collector",pod="otel-collector-a",exporter="googlecloud"}', values: "0+1000x30" },
        { series: 'otelcol_exporter_send_failed_spans{job="otel-collector",pod="otel-collector-a",exporter="googlecloud"}', values: "0+1x30" },
        { series: 'otelcol_exporter_sent_spans{job="otel-collector",pod="otel-collector-b",exporter="googlecloud"}', values: "0+1000x30" },
      ],
      alert_rule_test: ["OtelCollectorRefusingSpans", "OtelCollectorExportFailing"].map((alertname) => ({ eval_time: "25m", alertname, exp_alerts: [] })),
    } as never);
    // Healthy backups after a failover: worker-5's standby was promoted and backs up the stanza every night, while
    // the fenced old primary (PostgreSQL down, node_exporter up) still shows its last file from before.
    tests.push({
      interval: "1m",
      input_series: [
        { series: 'pgbackrest_backup_last_completion_timestamp_seconds{job="citus-node",instance="worker-5.db.internal",stanza="saas-prd-worker-5",type="full"}', values: "0x2500" },
        { series: 'pgbackrest_backup_last_completion_timestamp_seconds{job="citus-node",instance="worker-5-standby.db.internal",stanza="saas-prd-worker-5",type="full"}', values: "0x2500" },
        { series: 'pgbackrest_backup_last_completion_timestamp_seconds{job="citus-node",instance="worker-5-standby.db.internal",stanza="saas-prd-worker-5",type="diff"}', values: "0+60x2500" },
        { series: 'pgbackrest_stanza_status_code{job="citus-node",instance="worker-5.db.internal",stanza="saas-prd-worker-5"}', values: "0x2500" },
        { series: 'pgbackrest_stanza_status_code{job="citus-node",instance="worker-5-standby.db.internal",stanza="saas-prd-worker-5"}', values: "0x2500" },
        { series: 'pgbackrest_backup_error{job="citus-node",instance="worker-5-standby.db.internal",stanza="saas-prd-worker-5",type="diff"}', values: "0x2500" },
        { series: 'pg_recovery_active{job="citus-postgres",instance="worker-5-standby.db.internal",standby="true"}', values: "0x2500" },
      ],
      alert_rule_test: ["CitusBackupTooOld", "CitusFullBackupTooOld", "CitusBackupRepositoryUnhealthy", "CitusBackupFoundCorruptPages", "CitusBackupMetricsMissing"].map((alertname) => ({ eval_time: "40h", alertname, exp_alerts: [] })),
    } as never);
    // Healthy restore points after a coordinator failover: the promoted standby writes them every hour, while the
    // fenced old coordinator (PostgreSQL down, node_exporter up) still shows its last file, a day old.
    tests.push({
      interval: "1m",
      input_series: [
        { series: 'citus_restore_point_last_timestamp_seconds{job="citus-node",instance="coordinator.db.internal",name="citus-19700101T000000Z"}', values: "0x1500" },
        { series: 'citus_restore_point_interval_seconds{job="citus-node",instance="coordinator.db.internal"}', values: "3600x1500" },
        { series: 'citus_restore_point_last_timestamp_seconds{job="citus-node",instance="coordinator-standby.db.internal",name="citus-19700102T000000Z"}', values: "_x1440 86400x60" },
        { series: 'citus_restore_point_interval_seconds{job="citus-node",instance="coordinator-standby.db.internal"}', values: "_x1440 3600x60" },
        { series: 'pg_recovery_active{job="citus-postgres",instance="coordinator-standby.db.internal",citus_role="coordinator",standby="true"}', values: "0x1500" },
      ],
      alert_rule_test: ["CitusRestorePointTooOld", "CitusRestorePointsMissing"].map((alertname) => ({ eval_time: "1490m", alertname, exp_alerts: [] })),
    } as never);
    // A healthy production formation under Patroni: every group led, its standby streaming and caught up, one
    // switchover more than an hour ago (group 1's timeline 1 -> 2 at 10m), no maintenance mode: no Citus alert.
    const member = (vm: string, group: string, m: { primary: number; timeline: string; xlog: string; replayed: string }) => [
      { series: `up{job="patroni",instance="${vm}",citus_group="${group}"}`, values: "1x100" },
      { series: `patroni_primary{job="patroni",instance="${vm}",citus_group="${group}"}`, values: `${m.primary}x100` },
      { series: `patroni_replica{job="patroni",instance="${vm}",citus_group="${group}"}`, values: `${1 - m.primary}x100` },
      { series: `patroni_postgres_running{job="patroni",instance="${vm}",citus_group="${group}"}`, values: "1x100" },
      { series: `patroni_postgres_timeline{job="patroni",instance="${vm}",citus_group="${group}"}`, values: m.timeline },
      { series: `patroni_xlog_location{job="patroni",instance="${vm}",citus_group="${group}"}`, values: m.xlog },
      { series: `patroni_xlog_replayed_location{job="patroni",instance="${vm}",citus_group="${group}"}`, values: m.replayed },
      { series: `patroni_is_paused{job="patroni",instance="${vm}",citus_group="${group}"}`, values: "0x100" },
    ];
    tests.push({
      interval: "1m",
      input_series: [
        ...member("saas-prd-citus-coordinator", "0", { primary: 1, timeline: "1x100", xlog: "5000000+100000x100", replayed: "0x100" }),
        ...member("saas-prd-citus-coordinator-standby", "0", { primary: 0, timeline: "1x100", xlog: "0x100", replayed: "5000000+100000x100" }),
        ...member("saas-prd-citus-worker-0", "1", { primary: 0, timeline: "1x10 2x90", xlog: "0x100", replayed: "9000000+200000x100" }),
        ...member("saas-prd-citus-worker-0-standby", "1", { primary: 1, timeline: "1x10 2x90", xlog: "9000000+200000x100", replayed: "0x100" }),
        { series: 'pg_up{job="citus-postgres",instance="worker-0.db.internal",citus_role="worker",standby="false",citus_node="worker-0.db.internal"}', values: "1x100" },
        { series: 'up{job="citus-postgres",instance="worker-0.db.internal",citus_role="worker",standby="false",citus_node="worker-0.db.internal"}', values: "1x100" },
      ],
      alert_rule_test: citusHaAlerts(production).rules.map((r) => ({ eval_time: "90m", alertname: (r as AlertRule).alert, exp_alerts: [] })),
    } as never);
    const testFile = join(dir, "unit-tests.yml");
    writeFileSync(testFile, stringify({ rule_files: [join(dir, "unit-rules.yml")], evaluation_interval: "1m", tests }, { lineWidth: 0 }));
    const r = promtool(["test", "rules", testFile]);
    expect(r.out, r.out).toMatch(/SUCCESS/);
    expect(r.ok, r.out).toBe(true);
  });
});

describe("rules use only metrics that some target exports", () => {
  const FUNCTIONS = new Set(["max_over_time", "topk", "vector", "sum", "rate", "max", "min", "avg", "by", "histogram_quantile", "predict_linear", "absent", "and", "or", "unless", "on", "ignoring", "without", "count", "increase", "changes", "humanizePercentage", "humanizeDuration", "time", "group", "group_right"]);
  const recorded = RECORDING_RULES.rules.map((r) => (r as RecordingRule).record);
  const known = knownMetrics(recorded);
  it.each(RULE_GROUPS.flatMap((g) => g.rules.map((r) => [("alert" in r ? r.alert : r.record) as string, r.expr])))("%s", (_name, expr) => {
    const withoutLabels = expr
      .replace(/\{[^}]*\}/g, "")
      .replace(/\[[^\]]*\]/g, "")
      .replace(/"[^"]*"/g, "")
      .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "");
    const identifiers = [...withoutLabels.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((m) => m[0]).filter((id) => !FUNCTIONS.has(id) && !/^(le|job|pod|task|instance|route|status|application_name|citus_group)$/.test(id));
    expect(identifiers.filter((id) => !known.has(id))).toEqual([]);
  });
});

const CITUS_URL = process.env.CITUS_URL;
if (!CITUS_URL) console.warn("skipping the postgres_exporter queries on Citus: set CITUS_URL to a Citus 13 coordinator (superuser) with two or more workers");
describe.skipIf(!CITUS_URL)("postgres_exporter queries on a real Citus coordinator", () => {
  it.each(Object.entries(EXPORTER_QUERIES))("%s returns its declared columns, run as a pg_monitor-only role as the exporter is", async (name, q) => {
    const client = new pg.Client({ connectionString: CITUS_URL });
    await client.connect();
    try {
      // The business counts need the platform's schema (pnpm migrate on this database).
      if (name === "platform_tenants" && !(await client.query("SELECT to_regproc('platform.tenant_counts') IS NOT NULL AS ok")).rows[0].ok) {
        console.warn("skipping platform_tenants on CITUS_URL: no platform.tenant_counts() there (run pnpm migrate on it)");
        return;
      }
      // The bootstrap creates pg_stat_statements in the platform's database (infra/src/citus/bootstrap/lib/roles.sh);
      // a cluster made by hand may lack it, which is the cluster's fault, not the query's: say so.
      if (/\bpg_stat_statements\b/.test(q.query) && !(await client.query("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")).rows.length) {
        throw new Error(`${name} reads pg_stat_statements, which CITUS_URL's database lacks: run CREATE EXTENSION pg_stat_statements there, as the bootstrap does`);
      }
      // As the superuser CITUS_URL names, a permission the exporter lacks would go unseen: on Citus a view over the
      // tenants reference table was refused for pg_monitor (its shard is checked as the querying role).
      await client.query("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'monitoring_test_exporter') THEN CREATE ROLE monitoring_test_exporter NOLOGIN IN ROLE pg_monitor; END IF; END $$");
      await client.query("SET ROLE monitoring_test_exporter");
      const result = await client.query(q.query);
      const declared = q.metrics.flatMap((m) => Object.keys(m)).sort();
      expect(result.fields.map((f) => f.name).sort()).toEqual(declared);
    } finally {
      await client.end();
    }
  });
});

it.each(configs.map((c) => [c.name, c] as const))("%s: every Citus VM is scraped by its own name, with the labels the rules join on", (_env, config) => {
  // Exporters and Patroni on each member VM, never on a node's client name: the coordinator's is its load balancer's,
  // which forwards PostgreSQL only. citus_node joins a pair, standby="true" marks its second VM, citus_group is
  // Patroni's group, instance the VM (Patroni's member name).
  const doc = parse(renderMonitoring(config).files["prometheus.yml"]!) as { scrape_configs: { job_name: string; static_configs?: { targets: string[]; labels: Record<string, string> }[]; gce_sd_configs?: unknown }[] };
  const names = platformNames(config);
  const expected = [names.citus.coordinator, ...names.citus.workers].flatMap((n) => [
    { host: n.member.host, instance: n.member.instance, standby: "false", citus_node: n.host, citus_group: String(n.group) },
    ...(n.standby ? [{ host: n.standby.host, instance: n.standby.instance, standby: "true", citus_node: n.host, citus_group: String(n.group) }] : []),
  ]);
  for (const [job, port] of [["citus-postgres", POSTGRES_EXPORTER_PORT], ["citus-node", NODE_EXPORTER_PORT], ["patroni", PORTS.patroniRestApi]] as const) {
    const scrape = doc.scrape_configs.find((j) => j.job_name === job)!;
    expect(scrape.gce_sd_configs, `${job}: no discovery (Prometheus has no Google identity)`).toBeUndefined();
    const targets = scrape.static_configs!;
    expect(targets.map((t) => t.targets[0]!.endsWith(`:${port}`)), job).toEqual(expected.map(() => true));
    expect(
      targets.map((t) => ({ host: t.targets[0]!.split(":")[0], instance: t.labels.instance, standby: t.labels.standby, citus_node: t.labels.citus_node, citus_group: t.labels.citus_group })),
      job,
    ).toEqual(expected);
  }
  expect(expected.some((t) => t.standby === "true")).toBe(config.citus.standby);
  expect(expected.map((t) => t.host)).not.toContain(names.citus.coordinator.host);
});

it.each(configs.map((c) => [c.name, c] as const))("%s: the trace collector is scraped and alerted on exactly where it runs", (_env, config) => {
  const doc = parse(renderMonitoring(config).files["prometheus.yml"]!) as { scrape_configs: { job_name: string; kubernetes_sd_configs?: unknown; relabel_configs?: { regex?: string }[] }[] };
  const job = doc.scrape_configs.find((j) => j.job_name === "otel-collector");
  const groups = ruleGroups(config).map((g) => g.name);
  const runsCollector = config.monitoring.traceBackend === "cloudTrace";
  expect(Boolean(job)).toBe(runsCollector);
  expect(groups.includes("platform.otel-collector")).toBe(runsCollector);
  if (!job) return;
  // Its pods in its namespace, by their app label, on the port and path their prometheus.io annotations give.
  expect(job.kubernetes_sd_configs).toEqual([{ role: "pod", namespaces: { names: [config.kubernetes.otelCollector.namespace] } }]);
  expect(job.relabel_configs![0]!.regex).toBe("otel-collector");
});

it("the exporter query file is valid YAML with one entry per query", () => {
  const doc = parse(renderMonitoring(configs[0]!).files["postgres-exporter-queries.yml"]!) as Record<string, { query: string }>;
  expect(Object.keys(doc).sort()).toEqual(Object.keys(EXPORTER_QUERIES).sort());
});

describe("every alert's runbook exists", () => {
  it.each(EVERY_ALERT.map((r) => [r.alert, r.annotations.runbook]))("%s -> %s", async (_alert, path) => {
    const { existsSync } = await import("node:fs");
    expect(existsSync(join(import.meta.dirname, "..", "..", path)), `${path} is missing`).toBe(true);
  });
});

it.each(configs.map((c) => [c.name, c] as const))("%s: the missing-standby alert expects the group size the config gives", (_env, config) => {
  const missing = citusHaAlerts(config).rules.find((r) => (r as AlertRule).alert === "CitusGroupMissingStandby") as AlertRule | undefined;
  expect(expectedGroupMembers(config)).toBe(config.citus.standby ? 2 : 1);
  // One member per group (dev, staging): nothing can be missing short of the leader, which CitusGroupWithoutLeader covers.
  if (!config.citus.standby) return expect(missing).toBeUndefined();
  expect(missing!.expr).toMatch(/ < 2$/);
});
