/** Small questions about the cluster that several commands ask before they act. */
import type { ClientBase } from "pg";
import { SQL, literal } from "./catalog.js";

export async function runningJobId(client: ClientBase): Promise<number | null> {
  const { rows } = await client.query<{ job_id: string }>(SQL.runningJob);
  return rows[0] ? Number(rows[0].job_id) : null;
}

export async function nodeExists(client: ClientBase, host: string, port: number): Promise<boolean> {
  const { rows } = await client.query("SELECT 1 FROM pg_dist_node WHERE nodename = $1 AND nodeport = $2", [host, port]);
  return rows.length > 0;
}

/**
 * Shard copies a finished move left for Citus to drop later (pg_dist_cleanup), recorded for nodes no longer in the
 * cluster. Citus skips a record whose node group is gone, so it stays for good, and from then on refuses to move any
 * shard of the same name ("orphaned shard ... leftover from the previous move could not be cleaned up"). They come
 * from a node removed before its deferred drops ran; `remove-node` now waits for those, but a cluster may hold older
 * ones.
 */
export async function staleCleanupRecords(client: ClientBase): Promise<{ group: number; records: number; example: string }[]> {
  const { rows } = await client.query<{ group: number; records: number; example: string }>(
    `SELECT node_group_id AS group, count(*)::int AS records, min(object_name) AS example
       FROM pg_dist_cleanup WHERE node_group_id NOT IN (SELECT groupid FROM pg_dist_node)
      GROUP BY node_group_id ORDER BY node_group_id`,
  );
  return rows;
}

/** What to do about stale cleanup records: the line `status` prints, with the statement that clears them. */
export function describeStaleCleanup(stale: readonly { group: number; records: number; example: string }[]): string[] {
  return stale.map(
    (s) =>
      `BLOCKED: ${s.records} cleanup record${s.records === 1 ? "" : "s"} (pg_dist_cleanup, e.g. ${s.example}) name${s.records === 1 ? "s" : ""} node group ${s.group}, which is no longer in the cluster: ` +
      `Citus refuses to move those shards until they are gone. If that node is gone for good, delete them on the coordinator: ` +
      `DELETE FROM pg_dist_cleanup WHERE node_group_id = ${s.group} (docs/runbooks/node-drain-replacement.md)`,
  );
}

/** Cleanup records still waiting on one node: old shard copies left by the moves off it, and what a failed move left there. */
export async function cleanupRecordsOnNode(client: ClientBase, host: string, port: number): Promise<number> {
  const { rows } = await client.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_dist_cleanup WHERE node_group_id = (SELECT groupid FROM pg_dist_node WHERE nodename = $1 AND nodeport = $2)",
    [host, port],
  );
  return rows[0]!.n;
}

/**
 * Copies the reference tables to every node that lacks them, and does nothing when none does. Citus refuses to move
 * a shard while any node lacks one ("there are missing reference tables on some nodes"), and a worker added without a
 * rebalance, or registered by Patroni when it first leads its group, has none yet; the rebalancer and drain copy them
 * themselves, citus_move_shard_placement does not. Logical, so writes to them go on meanwhile.
 */
export const REPLICATE_REFERENCE_TABLES = "SELECT replicate_reference_tables(shard_transfer_mode := 'force_logical')";

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

