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

