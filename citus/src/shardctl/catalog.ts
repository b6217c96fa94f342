import type { ClientBase } from "pg";
import type { NodeInfo, PlanMove, ShardPlacement } from "./analysis.js";

/** Everything `status` shows, read in one go from the coordinator's catalog. */
export interface ClusterSnapshot {
  readonly takenAt: string;
  readonly nodes: NodeInfo[];
  readonly shards: ShardPlacement[];
  readonly tenants: { tenant: string; queries: number; cpu: number }[];
  readonly runningJob: RebalanceJob | null;
}

export interface RebalanceJob {
  readonly job_id: number;
  readonly state: string;
  readonly details: { task_state_counts?: Record<string, number>; tasks?: { command?: string; status?: string; message?: string }[] } | null;
}

export const SQL = {
  nodes: `SELECT nodeid, groupid, nodename, nodeport, isactive, noderole::text AS noderole, shouldhaveshards FROM pg_dist_node ORDER BY nodeid`,
  shards: `SELECT s.table_name::text AS table_name, s.shardid, s.citus_table_type, s.colocation_id, s.nodename, s.nodeport, s.shard_size::float8 AS shard_size,
                  s.colocation_id || ':' || coalesce(d.shardminvalue, 'ref') AS "group"
             FROM citus_shards s JOIN pg_dist_shard d USING (shardid) ORDER BY s.shardid, s.nodeport`,
  tenants: `SELECT tenant_attribute AS tenant, sum(query_count_in_last_period + query_count_in_this_period)::int AS queries,
                   sum(cpu_usage_in_last_period + cpu_usage_in_this_period)::float8 AS cpu
              FROM citus_stat_tenants GROUP BY 1 ORDER BY 2 DESC LIMIT 10`,
  runningJob: `SELECT job_id, state::text AS state, (SELECT details FROM citus_rebalance_status() LIMIT 1) AS details
                 FROM pg_dist_background_job WHERE state IN ('scheduled', 'running', 'cancelling', 'failing') ORDER BY job_id DESC LIMIT 1`,
  plan: (strategy: string, threshold: number | undefined, drainOnly: boolean) =>
    `SELECT table_name::text AS table_name, shardid, shard_size::float8 AS shard_size, sourcename, sourceport, targetname, targetport
       FROM get_rebalance_table_shards_plan(rebalance_strategy := ${literal(strategy)}${threshold === undefined ? "" : `, threshold := ${Number(threshold)}`}${drainOnly ? ", drain_only := true" : ""})`,
  distributedTables: `SELECT logicalrelid::regclass::text AS name FROM pg_dist_partition
                       WHERE partmethod = 'h' AND NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = logicalrelid) ORDER BY 1`,
} as const;

/** Quotes a value as an SQL literal. Only strategy names and host names reach it, both validated first. */
export function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

export async function readSnapshot(client: ClientBase): Promise<ClusterSnapshot> {
  const nodes = (await client.query<NodeInfo>(SQL.nodes)).rows;
  const shards = (await client.query<ShardPlacement>(SQL.shards)).rows.map((s) => ({ ...s, shard_size: Number(s.shard_size) }));
  let tenants: ClusterSnapshot["tenants"] = [];
  try {
    tenants = (await client.query(SQL.tenants)).rows as ClusterSnapshot["tenants"];
  } catch {
    tenants = []; // citus.stat_tenants_track is off: no per-tenant load
  }
  const runningJob = ((await client.query(SQL.runningJob)).rows[0] as RebalanceJob | undefined) ?? null;
  return { takenAt: new Date().toISOString(), nodes, shards, tenants, runningJob };
}

export async function readPlan(client: ClientBase, strategy: string, threshold?: number, drainOnly = false): Promise<PlanMove[]> {
  return (await client.query<PlanMove>(SQL.plan(strategy, threshold, drainOnly))).rows.map((m) => ({ ...m, shard_size: Number(m.shard_size) }));
}
