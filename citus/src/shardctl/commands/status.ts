/** `shardctl status [--json]`: nodes, shard groups and bytes per node, skew and its lower bound, busiest tenants, the running job, every move in flight with why it is not catching up, operations a killed shardctl left recorded as running, and each Citus group's primary with its streaming replicas. */
import type { Command } from "commander";
import type { ClientBase } from "pg";
import { bytesPerNode, formatBytes, nodeKey, shardGroups, skew, skewLowerBound } from "../analysis.js";
import { readSnapshot, type ClusterSnapshot } from "../catalog.js";
import { out, withClient, type Output } from "../context.js";
import { describeStaleCleanup, staleCleanupRecords } from "../cluster.js";
import { describeMoveHealth, readMoveHealth, type MoveHealth } from "../moves.js";
import { abandonedOperations, describeAbandoned, type AbandonedOperation } from "../operations.js";
import { describeGroupReplication, readGroupReplication, type GroupReplication } from "../replication.js";

export function statusReport(
  snapshot: ClusterSnapshot,
  moves: MoveHealth,
  replication: GroupReplication[] = [],
  staleCleanup: Awaited<ReturnType<typeof staleCleanupRecords>> = [],
  abandoned: AbandonedOperation[] = [],
) {
  const load = bytesPerNode(snapshot.nodes, snapshot.shards);
  const groups = shardGroups(snapshot.shards);
  const groupsPerNode = new Map<string, number>();
  for (const g of groups.values()) groupsPerNode.set(g.node, (groupsPerNode.get(g.node) ?? 0) + 1);
  return {
    takenAt: snapshot.takenAt,
    nodes: snapshot.nodes.map((n) => {
      const key = nodeKey(n.nodename, n.nodeport);
      return { node: key, role: n.groupid === 0 ? "coordinator" : "worker", active: n.isactive, shouldHaveShards: n.shouldhaveshards, shardGroups: groupsPerNode.get(key) ?? 0, bytes: load.get(key) ?? 0 };
    }),
    skew: skew(load),
    skewLowerBound: skewLowerBound(load, groups),
    busiestTenants: snapshot.tenants,
    runningJob: snapshot.runningJob,
    moves,
    staleCleanup,
    abandonedOperations: abandoned,
    groups: replication,
  };
}

async function status(client: ClientBase, out: Output, json: boolean): Promise<void> {
  const report = statusReport(
    await readSnapshot(client),
    await readMoveHealth(client),
    await readGroupReplication(client),
    await staleCleanupRecords(client),
    await abandonedOperations(client),
  );
  if (json) return out.json(report);
  out.line("node                         role         shards?  groups        bytes");
  for (const n of report.nodes) {
    out.line(`${n.node.padEnd(28)} ${n.role.padEnd(12)} ${String(n.shouldHaveShards).padEnd(8)} ${String(n.shardGroups).padStart(6)} ${formatBytes(n.bytes).padStart(12)}${n.active ? "" : "  INACTIVE"}`);
  }
  out.line(`skew ${report.skew.toFixed(2)} (largest node over the mean; best reachable by moving shards: ${report.skewLowerBound.toFixed(2)})`);
  if (report.busiestTenants.length > 0) out.line(`busiest tenants: ${report.busiestTenants.map((t) => `${t.tenant} (${t.queries} queries)`).join(", ")}`);
  out.line(report.runningJob ? `rebalance job ${report.runningJob.job_id}: ${report.runningJob.state}` : "no rebalance running");
  for (const line of describeMoveHealth(report.moves)) out.line(line);
  for (const line of describeStaleCleanup(report.staleCleanup)) out.line(line);
  for (const line of describeAbandoned(report.abandonedOperations, false)) out.line(line);
  // Who leads each group and what would take over: the view `patronictl list` gives per group, from the database.
  for (const line of describeGroupReplication(report.groups)) out.line(line);
}

export function register(program: Command): void {
  program
    .command("status")
    .description("nodes, shard groups, skew, the running job, the moves in flight, and each group's primary and replicas")
    .option("--json")
    .action((o: { json?: boolean }) => withClient(program, (c) => status(c, out, o.json ?? false)));
}
