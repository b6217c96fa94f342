import { SingleBar, Presets } from "cli-progress";
import type { ClientBase } from "pg";
import { bytesPerNode, formatBytes, nodeKey, parseNode, shardGroups, simulateAddWorkers, skew, skewLowerBound, summarizePlan, type PlanSummary } from "./analysis.js";
import { SQL, literal, readPlan, readSnapshot, type ClusterSnapshot, type RebalanceJob } from "./catalog.js";
import { ShardctlError, compareVerification, finishOperation, startOperation, takeLock, verifySnapshot } from "./operations.js";

export interface Output {
  line(text: string): void;
  json(value: unknown): void;
}

const STRATEGIES = ["by_disk_size", "by_shard_count"] as const;

export function statusReport(snapshot: ClusterSnapshot) {
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
  };
}

export async function status(client: ClientBase, out: Output, json: boolean): Promise<void> {
  const report = statusReport(await readSnapshot(client));
  if (json) return out.json(report);
  out.line("node                         role         shards?  groups        bytes");
  for (const n of report.nodes) {
    out.line(`${n.node.padEnd(28)} ${n.role.padEnd(12)} ${String(n.shouldHaveShards).padEnd(8)} ${String(n.shardGroups).padStart(6)} ${formatBytes(n.bytes).padStart(12)}${n.active ? "" : "  INACTIVE"}`);
  }
  out.line(`skew ${report.skew.toFixed(2)} (largest node over the mean; best reachable by moving shards: ${report.skewLowerBound.toFixed(2)})`);
  if (report.busiestTenants.length > 0) out.line(`busiest tenants: ${report.busiestTenants.map((t) => `${t.tenant} (${t.queries} queries)`).join(", ")}`);
  out.line(report.runningJob ? `rebalance job ${report.runningJob.job_id}: ${report.runningJob.state}` : "no rebalance running");
}

export interface PlanOptions {
  readonly strategy: string;
  readonly threshold?: number;
  readonly drainOnly?: boolean;
  /** Transfer rate for the estimate, bytes per second. */
  readonly bytesPerSecond: number;
}

export async function plan(client: ClientBase, options: PlanOptions): Promise<{ summary: PlanSummary; snapshot: ClusterSnapshot }> {
  if (!(STRATEGIES as readonly string[]).includes(options.strategy)) {
    throw new ShardctlError(`--strategy must be one of ${STRATEGIES.join(", ")} (got "${options.strategy}")`, 2);
  }
  const snapshot = await readSnapshot(client);
  const moves = await readPlan(client, options.strategy, options.threshold, options.drainOnly ?? false);
  return { summary: summarizePlan(moves, snapshot.shards, snapshot.nodes, { bytesPerSecond: options.bytesPerSecond }), snapshot };
}

export function printPlan(summary: PlanSummary, out: Output): void {
  if (summary.moves.length === 0) {
    out.line(`nothing to move (skew ${summary.skewBefore.toFixed(2)})`);
    return;
  }
  out.line("shard group              from                         to                              bytes  shards");
  for (const m of summary.moves) out.line(`${m.group.padEnd(24)} ${m.source.padEnd(28)} ${m.target.padEnd(28)} ${formatBytes(m.bytes).padStart(10)} ${String(m.shards).padStart(7)}`);
  out.line(
    `${summary.moves.length} shard group(s), ${formatBytes(summary.bytesToMove)} to move, about ${Math.ceil(summary.estimatedSeconds / 60)} min; ` +
      `skew ${summary.skewBefore.toFixed(2)} -> ${summary.skewAfter.toFixed(2)}`,
  );
}

export interface Preflight {
  readonly ok: boolean;
  readonly checks: { readonly name: string; readonly ok: boolean; readonly detail: string }[];
}

/** What must hold before shards move: logical decoding everywhere, identities for logical moves, no job running. */
export async function preflight(client: ClientBase, snapshot: ClusterSnapshot): Promise<Preflight> {
  const checks: Preflight["checks"][number][] = [];
  const wal = await client.query<{ nodename: string; nodeport: number; result: string }>("SELECT nodename, nodeport, result FROM run_command_on_workers('SHOW wal_level')");
  const coordinatorWal = (await client.query<{ wal_level: string }>("SHOW wal_level")).rows[0]!.wal_level;
  const notLogical = [...wal.rows.filter((r) => r.result !== "logical").map((r) => nodeKey(r.nodename, r.nodeport)), ...(coordinatorWal === "logical" ? [] : ["coordinator"])];
  checks.push({ name: "wal_level = logical", ok: notLogical.length === 0, detail: notLogical.length === 0 ? "on every node" : `not on ${notLogical.join(", ")}` });
  const identities = await client.query<{ name: string }>(
    `SELECT c.oid::regclass::text AS name FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid
      WHERE p.partmethod = 'h' AND c.relkind = 'r'
        AND (c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))`,
  );
  checks.push({
    name: "replica identity",
    ok: identities.rows.length === 0,
    detail: identities.rows.length === 0 ? "every distributed table can be moved logically" : `no primary key or replica identity: ${identities.rows.map((r) => r.name).join(", ")}`,
  });
  checks.push({ name: "no rebalance running", ok: snapshot.runningJob === null, detail: snapshot.runningJob ? `job ${snapshot.runningJob.job_id} is ${snapshot.runningJob.state}` : "none" });
  const inactive = snapshot.nodes.filter((n) => !n.isactive).map((n) => nodeKey(n.nodename, n.nodeport));
  checks.push({ name: "nodes active", ok: inactive.length === 0, detail: inactive.length === 0 ? "all" : `inactive: ${inactive.join(", ")}` });
  return { ok: checks.every((c) => c.ok), checks };
}

/**
 * Why the node holding a tenant's shard would refuse to split it, or null. PostgreSQL 15.19, 16.15 and 17.11 decode
 * only with the output plugins named in output_plugin_libraries, and a Citus split (tenant isolation) decodes on the
 * shard's node with Citus's own plugin, "citus"; moves use pgoutput. A server that predates the setting decodes with
 * any plugin. Asked before the split, so that the refusal comes with what to do and nothing half done.
 */
export async function citusDecoderRefusal(client: ClientBase, table: string, tenantId: string): Promise<string | null> {
  const placement = (
    await client.query<{ nodename: string; nodeport: number; local: boolean; isolated: boolean }>(
      `SELECT s.nodename, s.nodeport, n.groupid = (SELECT groupid FROM pg_dist_local_group) AS local,
              d.shardminvalue = d.shardmaxvalue AS isolated
         FROM citus_shards s JOIN pg_dist_shard d USING (shardid)
         JOIN pg_dist_node n ON n.nodename = s.nodename AND n.nodeport = s.nodeport
        WHERE s.shardid = get_shard_id_for_distribution_column($1::regclass, $2::uuid)`,
      [table, tenantId],
    )
  ).rows[0];
  // An isolated tenant is only placed: a move, which decodes with pgoutput.
  if (!placement || placement.isolated) return null;
  // '*': the server has no such setting.
  const ask = "SELECT coalesce(current_setting('output_plugin_libraries', true), '*')";
  let libraries: string;
  if (placement.local) {
    libraries = (await client.query<{ libraries: string }>(`${ask} AS libraries`)).rows[0]!.libraries;
  } else {
    const answer = (
      await client.query<{ success: boolean; result: string }>(
        "SELECT success, result FROM run_command_on_workers($1) WHERE nodename = $2 AND nodeport = $3",
        [ask, placement.nodename, placement.nodeport],
      )
    ).rows[0];
    if (!answer?.success) return `cannot ask ${nodeKey(placement.nodename, placement.nodeport)} which output plugins it allows: ${answer?.result ?? "no answer"}`;
    libraries = answer.result;
  }
  if (libraries === "*") return null;
  const allowed = libraries.split(",").map((name) => name.trim().replace(/^"(.*)"$/, "$1"));
  if (allowed.includes("citus")) return null;
  return (
    `${nodeKey(placement.nodename, placement.nodeport)}, which holds the tenant's shard, decodes only with the output plugins "${libraries}" ` +
    `(output_plugin_libraries), and isolating a tenant splits its shard with Citus's "citus" plugin. Add citus on every node ` +
    `(output_plugin_libraries = 'pgoutput, citus', as the platform's bootstrap writes it at boot; then SELECT pg_reload_conf(): ` +
    `docs/runbooks/whale-tenant.md) and run this again`
  );
}

export interface MutationOptions {
  readonly dryRun: boolean;
  readonly verify: boolean;
  readonly checksum: boolean;
}

/** The frame every mutating command runs in: lock, operations log, verification before and after. */
export async function mutate(
  client: ClientBase,
  out: Output,
  command: string,
  args: Record<string, unknown>,
  sql: string[],
  options: MutationOptions,
  run: () => Promise<Record<string, unknown> | void>,
): Promise<void> {
  if (options.dryRun) {
    out.line(`-- shardctl ${command} --dry-run: the SQL it would run on the coordinator`);
    for (const statement of sql) out.line(statement.startsWith("--") ? statement : `${statement};`);
    return;
  }
  await takeLock(client);
  const id = await startOperation(client, command, args);
  const tables = options.verify ? (await client.query<{ name: string }>(SQL.distributedTables)).rows.map((r) => r.name) : [];
  const before = options.verify ? await verifySnapshot(client, tables, options.checksum) : {};
  try {
    const details = (await run()) ?? {};
    if (options.verify) {
      const problems = compareVerification(before, await verifySnapshot(client, tables, options.checksum));
      if (problems.length > 0) {
        await finishOperation(client, id, "failed", { ...details, verification: problems });
        throw new ShardctlError(`verification failed after ${command}: ${problems.join("; ")}`, 5);
      }
      out.line(`verified: ${tables.length} distributed table(s), row counts unchanged${options.checksum ? " and checksums equal" : ""}`);
    }
    await finishOperation(client, id, details.detached ? "detached" : "succeeded", details);
    out.line(`recorded as operation ${id} in platform_ops.operations`);
  } catch (error) {
    if (!(error instanceof ShardctlError && error.exitCode === 5)) await finishOperation(client, id, "failed", { error: (error as Error).message }).catch(() => {});
    throw error;
  }
}

/** Follows a rebalance job until it ends, with a progress bar over its tasks. */
export async function followJob(client: ClientBase, jobId: number, out: Output, options: { pollMs?: number; interactive?: boolean; signal?: AbortSignal } = {}): Promise<RebalanceJob> {
  const bar = options.interactive ? new SingleBar({ format: "rebalance {bar} {value}/{total} tasks | {state}" }, Presets.shades_classic) : undefined;
  let started = false;
  for (;;) {
    const { rows } = await client.query<RebalanceJob>("SELECT job_id, state::text AS state, details FROM citus_rebalance_status() WHERE job_id = $1", [jobId]);
    const job = rows[0];
    if (!job) throw new ShardctlError(`rebalance job ${jobId} not found`, 4);
    const counts = job.details?.task_state_counts ?? {};
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const done = counts.done ?? 0;
    if (bar) {
      if (!started) bar.start(Math.max(total, 1), done, { state: job.state });
      started = true;
      bar.setTotal(Math.max(total, 1));
      bar.update(done, { state: job.state });
    }
    if (["finished", "failed", "cancelled"].includes(job.state)) {
      bar?.stop();
      if (!bar) out.line(`rebalance job ${jobId}: ${job.state} (${done}/${total} tasks)`);
      return job;
    }
    if (options.signal?.aborted) {
      bar?.stop();
      return job;
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 1000));
  }
}

export async function runningJobId(client: ClientBase): Promise<number | null> {
  const { rows } = await client.query<{ job_id: string }>(SQL.runningJob);
  return rows[0] ? Number(rows[0].job_id) : null;
}

export async function nodeExists(client: ClientBase, host: string, port: number): Promise<boolean> {
  const { rows } = await client.query("SELECT 1 FROM pg_dist_node WHERE nodename = $1 AND nodeport = $2", [host, port]);
  return rows.length > 0;
}

export function drainSql(host: string, port: number): string[] {
  return [
    `SELECT citus_set_node_property(${literal(host)}, ${port}, 'shouldhaveshards', false)`,
    `SELECT citus_drain_node(${literal(host)}, ${port})`,
  ];
}

export async function shardsOnNode(client: ClientBase, host: string, port: number): Promise<number> {
  const { rows } = await client.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM citus_shards WHERE nodename = $1 AND nodeport = $2 AND citus_table_type = 'distributed'",
    [host, port],
  );
  return rows[0]!.n;
}

export { parseNode, simulateAddWorkers, shardGroups, bytesPerNode };
