/**
 * Alerts for the Citus nodes' availability under Patroni (issue 21): a node down, a group without a leader, a
 * failover that happened, a replica too far behind to be promoted, a group short of the members its environment
 * configures, and automatic failover left paused. Each Citus group (0 the coordinator, one per worker) is a Patroni
 * cluster; the `patroni` scrape job labels each member with its `citus_group`.
 */
import type { EnvironmentConfig } from "@platform/config";
import { runbook, type AlertRule, type RuleGroup } from "./rules.js";

/**
 * Patroni does not promote a replica further behind than this automatically (maximum_lag_on_failover in
 * infra/src/citus/patroni.ts; monitoring/test/patroni-metrics.test.ts checks the two agree).
 */
export const PATRONI_MAXIMUM_LAG_ON_FAILOVER_BYTES = 16 * 1024 * 1024;

/** Members each Patroni group is configured to have: a primary, and in production a standby in another zone. */
export function expectedGroupMembers(config: EnvironmentConfig): number {
  return config.citus.standby ? 2 : 1;
}

const patroni = (metric: string) => `${metric}{job="patroni"}`;

export function citusHaAlerts(config: EnvironmentConfig): RuleGroup {
  const expected = expectedGroupMembers(config);
  const rules: AlertRule[] = [
    {
      alert: "CitusNodeDown",
      // postgres_exporter answers but cannot reach its PostgreSQL (pg_up 0), or the VM does not answer at all (up 0):
      // the tenants whose shards live there fail until Patroni promotes the group's standby, or for good without one.
      expr: '(pg_up{job="citus-postgres"} or up{job="citus-postgres"}) == 0',
      for: "3m",
      labels: { severity: "page" },
      annotations: {
        summary: "A Citus node's PostgreSQL is down",
        description: "{{ $labels.instance }} ({{ $labels.citus_role }}) has not answered for 3 minutes. If it led its group, Patroni should have promoted the standby: `patronictl list` shows who leads now.",
        runbook: runbook("citus-failover"),
      },
    },
    {
      alert: "CitusGroupWithoutLeader",
      // A group some member of which is known (discovered, answering or not) and none of whose members is the
      // primary: no node takes that group's writes. Patroni promotes within its ttl (30 s); two minutes is a stuck
      // failover (no healthy candidate, the DCS unreachable, automatic failover paused, every member down).
      expr: `group by (citus_group) (${patroni("up")}) unless on (citus_group) (${patroni("patroni_primary")} == 1)`,
      for: "2m",
      labels: { severity: "page" },
      annotations: {
        summary: "A Citus group has no primary",
        description: "Citus group {{ $labels.citus_group }} has had no Patroni leader for 2 minutes: its tenants' writes fail.",
        runbook: runbook("citus-failover"),
      },
    },
    {
      alert: "CitusFailoverHappened",
      // A group's timeline moves on only when a member is promoted: an automatic failover, or a switchover someone
      // ran. Held for an hour after it so the ticket is seen; members that are down (timeline 0) do not count.
      expr: `changes((max by (citus_group) (${patroni("patroni_postgres_timeline")} > 0))[1h:1m]) > 0`,
      for: "0m",
      labels: { severity: "ticket" },
      annotations: {
        summary: "A Citus group changed its primary",
        description: "Citus group {{ $labels.citus_group }} promoted a member in the last hour ({{ $value }} time(s)). If nobody ran a switchover, find out why the old primary lost its lock and check the group is whole again.",
        runbook: runbook("citus-failover-review"),
      },
    },
    {
      alert: "CitusReplicaBehindFailoverLimit",
      // How far a running replica is behind its group's leader (xlog_location is 0 on all but the leader), measured
      // as Patroni measures it before a promotion (Ha.is_lagging): from the further of what it received and what it
      // replayed. Past maximum_lag_on_failover Patroni will not promote it, so the group cannot fail over by itself.
      expr:
        `max by (citus_group) (${patroni("patroni_xlog_location")}) - on (citus_group) group_right () ` +
        `((${patroni("patroni_xlog_received_location")} > ${patroni("patroni_xlog_replayed_location")} or ${patroni("patroni_xlog_replayed_location")})` +
        ` and on (instance) ${patroni("patroni_replica")} == 1 and on (instance) ${patroni("patroni_postgres_running")} == 1)` +
        ` > ${PATRONI_MAXIMUM_LAG_ON_FAILOVER_BYTES}`,
      for: "10m",
      labels: { severity: "page" },
      annotations: {
        summary: "A Citus replica is too far behind to be promoted",
        description: "{{ $labels.instance }} (group {{ $labels.citus_group }}) is {{ $value | humanize1024 }}B behind its leader, past Patroni's maximum_lag_on_failover: if the leader fails now the group has no automatic failover.",
        runbook: runbook("citus-reinit"),
      },
    },
    {
      alert: "CitusPatroniPaused",
      // patronictl pause is for maintenance; left on, a dead primary is never replaced.
      expr: `max by (citus_group) (${patroni("patroni_is_paused")}) == 1`,
      for: "2h",
      labels: { severity: "ticket" },
      annotations: {
        summary: "Automatic failover is paused for a Citus group",
        description: "Citus group {{ $labels.citus_group }} has been in Patroni maintenance mode for 2 hours: a failed primary will not be replaced.",
        runbook: runbook("citus-maintenance"),
      },
    },
  ];
  rules.push({
    alert: "CitusPatroniNotScraped",
    // The alerts above see only the members the patroni job discovers. Fewer Patroni targets than Citus VMs with an
    // exporter means they are blind for some groups: the VM lacks its citus-group label, or Prometheus may not list
    // the project's instances (GCE discovery needs compute.instances.list), which shows as no target at all.
    expr: `count(up{job="citus-postgres"}) > (count(${patroni("up")}) or vector(0))`,
    for: "15m",
    labels: { severity: "ticket" },
    annotations: {
      summary: "Patroni is not scraped on every Citus VM",
      description: "Prometheus scrapes {{ $value }} Citus VMs' exporters but Patroni on fewer of them: the failover alerts cannot see those groups.",
      runbook: runbook("alerting-pipeline"),
    },
  });
  if (expected > 1) {
    rules.push({
      alert: "CitusGroupMissingStandby",
      // Members that can carry the group: its leader and each replica whose PostgreSQL runs. Counted against the
      // configuration, not against what discovery finds, so a standby VM that was deleted is missed too. A group
      // with none at all is CitusGroupWithoutLeader's.
      expr:
        `count by (citus_group) (${patroni("patroni_primary")} == 1 or (${patroni("patroni_replica")} == 1 and on (instance) ${patroni("patroni_postgres_running")} == 1))` +
        ` < ${expected}`,
      for: "15m",
      labels: { severity: "ticket" },
      annotations: {
        summary: "A Citus group has fewer members than configured",
        description: `Citus group {{ $labels.citus_group }} has {{ $value }} of its ${expected} members: with no standby a failure of its primary is an outage, and writes there are acknowledged with one copy.`,
        runbook: runbook("citus-reinit"),
      },
    });
  }
  return { name: "platform.citus-ha", rules };
}
