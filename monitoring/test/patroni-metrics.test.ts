/**
 * The Patroni metrics the rules read, and the patronictl commands the runbooks give, against real Patroni 3.0 (Debian's)
 * with etcd on loopback: a Citus-mode coordinator group of two members with the platform's own configuration
 * (infra/test/patroni-pair.ts, production settings: synchronous). A renamed metric or a changed command line fails
 * here, not at 3 a.m. Skipped with the reason when Patroni, etcd, PostgreSQL or Citus is missing.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { parse } from "yaml";
import { ENVIRONMENT_NAMES, loadEnvironment } from "@platform/config";
import { startCluster, type Cluster, type Pair } from "../../infra/test/patroni-pair.js";
import { citusUnavailable, patroniUnavailable } from "../../testing/src/index.js";
import { PATRONI_MAXIMUM_LAG_ON_FAILOVER_BYTES, SCRAPE_JOBS, citusHaAlerts, type AlertRule } from "../src/index.js";

const PATRONICTL = process.env.PATRONICTL_BIN ?? "/usr/bin/patronictl";
const unavailable =
  patroniUnavailable() ??
  (existsSync(PATRONICTL) ? undefined : `patronictl not found at ${PATRONICTL} (apt-get install patroni)`) ??
  citusUnavailable();
if (unavailable) console.warn(`skipping the Patroni metrics and patronictl checks: ${unavailable}`);

const production = ENVIRONMENT_NAMES.map((n) => loadEnvironment(n, { env: {} })).find((c) => c.name === "production")!;

/** Metric name -> value of one member's /metrics (one series per name: Patroni labels them with its scope only). */
async function scrape(restUrl: string): Promise<Map<string, { labels: string; value: number }>> {
  const text = await (await fetch(`${restUrl}/metrics`)).text();
  const metrics = new Map<string, { labels: string; value: number }>();
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (m) metrics.set(m[1]!, { labels: m[2] ?? "", value: Number(m[3]) });
  }
  return metrics;
}

describe.skipIf(unavailable !== undefined)("Patroni 3.0's /metrics and patronictl, as the rules and runbooks use them (real Patroni, etcd, Citus)", () => {
  let cluster: Cluster;
  let group: Pair;
  /** The configuration file a member runs with: what `patronictl -c` reads on a VM. */
  const configOf = (dataDir: string) => join(dirname(dataDir), "patroni.yml");
  const patronictl = (config: string, ...args: string[]) => {
    const r = spawnSync(PATRONICTL, ["-c", config, ...args], { encoding: "utf8", timeout: 120_000 });
    return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
  };

  beforeAll(async () => {
    cluster = await startCluster({ synchronous: true, citus: { database: "platform" }, groups: [2] });
    group = cluster.groups[0]!;
    const leader = await group.leader(180_000);
    // On two shared cores the clone and the first sync-standby loop take a few minutes.
    await group.replicaReady(group.members.find((m) => m !== leader)!, 240_000);
  }, 600_000);
  afterAll(async () => cluster?.stop());

  it("every Patroni metric the catalog lists, and so every one a rule reads, is on both members' /metrics", async () => {
    const catalogued = SCRAPE_JOBS.patroni.filter((m) => m !== "up");
    const used = [...new Set(citusHaAlerts(production).rules.flatMap((r) => (r as AlertRule).expr.match(/patroni_[a-z_]+/g) ?? []))];
    expect(used.length).toBeGreaterThan(4);
    for (const member of group.members) {
      const metrics = await scrape(member.restUrl);
      expect(catalogued.filter((m) => !metrics.has(m)), member.name).toEqual([]);
      expect(used.filter((m) => !metrics.has(m)), member.name).toEqual([]);
      // Patroni labels its series with the scope only: citus_group must come from the scrape's relabelling.
      expect(metrics.get("patroni_primary")!.labels).toMatch(/^\{scope="[^"]+"\}$/);
    }
  });

  it("the leader reports primary and its WAL position, the synchronous standby reports replica and what it replayed", async () => {
    const leader = await group.leader();
    const standby = group.members.find((m) => m !== leader)!;
    const [l, s] = [await scrape(leader.restUrl), await scrape(standby.restUrl)];
    expect([l.get("patroni_primary")!.value, l.get("patroni_replica")!.value, l.get("patroni_postgres_running")!.value]).toEqual([1, 0, 1]);
    expect([s.get("patroni_primary")!.value, s.get("patroni_replica")!.value, s.get("patroni_sync_standby")!.value, s.get("patroni_postgres_running")!.value]).toEqual([0, 1, 1, 1]);
    // CitusReplicaBehindFailoverLimit takes the group's max of xlog_location as the leader's position: 0 elsewhere.
    expect(l.get("patroni_xlog_location")!.value).toBeGreaterThan(0);
    expect(s.get("patroni_xlog_location")!.value).toBe(0);
    expect(s.get("patroni_xlog_replayed_location")!.value).toBeGreaterThan(0);
    expect(l.get("patroni_xlog_location")!.value - s.get("patroni_xlog_replayed_location")!.value).toBeLessThan(PATRONI_MAXIMUM_LAG_ON_FAILOVER_BYTES);
  });

  it("the cluster's maximum_lag_on_failover is the limit CitusReplicaBehindFailoverLimit alerts on (patronictl show-config)", () => {
    const r = patronictl(configOf(group.members[0]!.dataDir), "show-config", "--group", "0");
    expect(r.ok, r.out).toBe(true);
    expect((parse(r.out) as { maximum_lag_on_failover: number }).maximum_lag_on_failover).toBe(PATRONI_MAXIMUM_LAG_ON_FAILOVER_BYTES);
  });

  it("patronictl edit-config -p raises and restores max_slot_wal_keep_size, as standby-not-streaming.md gives it", async () => {
    const config = configOf(group.members[0]!.dataDir);
    const setting = async () => {
      const leader = await group.leader();
      const client = new pg.Client({ connectionString: leader.url });
      await client.connect();
      try {
        return (await client.query<{ s: string }>("SELECT current_setting('max_slot_wal_keep_size') AS s")).rows[0]!.s;
      } finally {
        await client.end();
      }
    };
    const before = (parse(patronictl(config, "show-config", "--group", "0").out) as { postgresql: { parameters: Record<string, string> } }).postgresql.parameters.max_slot_wal_keep_size!;
    const raise = patronictl(config, "edit-config", "--group", "0", "-p", "max_slot_wal_keep_size=200GB", "--force");
    expect(raise.ok, raise.out).toBe(true);
    // Patroni applies it with a reload on its next loop.
    let now = "";
    for (let i = 0; i < 60 && now !== "200GB"; i++) {
      now = await setting();
      if (now !== "200GB") await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(now).toBe("200GB");
    const restore = patronictl(config, "edit-config", "--group", "0", "-p", `max_slot_wal_keep_size=${before}`, "--force");
    expect(restore.ok, restore.out).toBe(true);
  });

  it("patronictl list, pause, resume, switchover and history as the runbooks give them; a switchover moves the timeline on", { timeout: 240_000 }, async () => {
    const leader = await group.leader();
    const standby = group.members.find((m) => m !== leader)!;
    const config = configOf(leader.dataDir);

    const list = patronictl(config, "list", "--group", "0", "-f", "json");
    expect(list.ok, list.out).toBe(true);
    const members = JSON.parse(list.out) as { Member: string; Role: string; State: string; Group: number }[];
    expect(members.map((m) => [m.Member, m.Role]).sort()).toEqual([[leader.name, "Leader"], [standby.name, "Sync Standby"]].sort());

    // Maintenance mode: patroni_is_paused, which CitusPatroniPaused reads, follows pause and resume.
    const pause = patronictl(config, "pause", "--group", "0", "--wait");
    expect(pause.ok, pause.out).toBe(true);
    expect((await scrape(leader.restUrl)).get("patroni_is_paused")!.value).toBe(1);
    const resume = patronictl(config, "resume", "--group", "0", "--wait");
    expect(resume.ok, resume.out).toBe(true);
    expect((await scrape(leader.restUrl)).get("patroni_is_paused")!.value).toBe(0);

    const timelineBefore = (await scrape(leader.restUrl)).get("patroni_postgres_timeline")!.value;
    const switchover = patronictl(config, "switchover", "--group", "0", "--leader", leader.name, "--candidate", standby.name, "--force");
    expect(switchover.ok, switchover.out).toBe(true);
    expect((await group.leader(60_000)).name).toBe(standby.name);
    // CitusFailoverHappened fires on exactly this: the group's timeline moving on. Patroni reports the timeline it
    // read on its last loop, so it may show the old one for a few seconds after /primary answers.
    let timeline = 0;
    for (let i = 0; i < 60 && timeline !== timelineBefore + 1; i++) {
      timeline = (await scrape(standby.restUrl)).get("patroni_postgres_timeline")!.value;
      if (timeline !== timelineBefore + 1) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(timeline).toBe(timelineBefore + 1);
    // The new leader records the promotion in the DCS's history on one of its next loops (loop_wait): poll for it.
    let history = patronictl(config, "history", "--group", "0", "-f", "json");
    for (let i = 0; i < 60 && history.ok && (JSON.parse(history.out) as unknown[]).length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      history = patronictl(config, "history", "--group", "0", "-f", "json");
    }
    expect(history.ok, history.out).toBe(true);
    // One row per promotion: [timeline left, its last LSN, reason, when, new leader].
    const rows = JSON.parse(history.out) as { TL: number; Reason: string; New_Leader?: string; "New Leader"?: string }[];
    console.log(`[patroni] patronictl history after the switchover: ${JSON.stringify(rows)}`);
    expect(rows.map((r) => r.TL)).toEqual([timelineBefore]);

    // The old leader rejoins as the synchronous standby: the group is whole again, nothing for CitusGroupMissingStandby.
    await group.replicaReady(leader, 180_000);
    expect((await scrape(leader.restUrl)).get("patroni_replica")!.value).toBe(1);
  });

  it("patronictl reinit rebuilds a replica from the leader, as citus-reinit.md gives it (the scope read from the member's config)", { timeout: 300_000 }, async () => {
    const leader = await group.leader();
    const replica = group.members.find((m) => m !== leader)!;
    const config = configOf(replica.dataDir);
    const scope = (parse(readFileSync(config, "utf8")) as { scope: string }).scope;
    const reinit = patronictl(config, "reinit", scope, replica.name, "--group", "0", "--force", "--wait");
    expect(reinit.ok, reinit.out).toBe(true);
    expect(reinit.out).toMatch(/reinitialize/i);
    await group.replicaReady(replica, 240_000);
    expect((await scrape(replica.restUrl)).get("patroni_replica")!.value).toBe(1);
    // Patroni refuses to reinitialize the leader: the runbook's "never on the leader".
    const refused = patronictl(config, "reinit", scope, leader.name, "--group", "0", "--force");
    expect(refused.out).toMatch(/leader/i);
    expect((await group.leader()).name).toBe(leader.name);
  });
});
