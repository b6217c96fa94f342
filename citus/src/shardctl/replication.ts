/**
 * Each Citus group's primary and the streaming replicas behind it. pg_dist_node names every group's primary (Patroni
 * keeps it pointing at the group's leader); the replicas are in that primary's pg_stat_replication, read on every node
 * through Citus's own connections (run_command_on_all_nodes), so shardctl needs no credentials of its own for them.
 */
import type { ClientBase } from "pg";
import { formatBytes, nodeKey } from "./analysis.js";

export interface Replica {
  /** application_name: Patroni's member name (the VM's), or whatever the standby's primary_conninfo says. */
  readonly name: string;
  /** The replica's address as the primary sees it. */
  readonly client: string | null;
  /** startup, catchup, streaming, backup or stopping. */
  readonly state: string;
  /** async, potential, sync or quorum: whether a commit on the primary waits for it. */
  readonly syncState: string;
  /** WAL the replica has yet to replay: the primary's current LSN less its replay_lsn. */
  readonly replayLagBytes: number | null;
  /** pg_stat_replication.replay_lag in seconds; PostgreSQL shows none once an idle replica has caught up. */
  readonly replayLagSeconds: number | null;
}

export interface GroupReplication {
  readonly groupId: number;
  /** host:port of the group's primary, as pg_dist_node names it. */
  readonly primary: string;
  readonly replicas: Replica[];
  /** Why the primary's replicas could not be read (the node is down, or not a primary), or null. */
  readonly error: string | null;
}

/**
 * One statement (Citus sends the string as it is to each node, and a multi-statement string fails there): the
 * physical walsenders only. A physical replication connection belongs to no database; a shard move's logical one does.
 */
export const REPLICAS_SQL = `SELECT coalesce(json_agg(json_build_object(
    'name', r.application_name, 'client', host(r.client_addr), 'state', r.state, 'syncState', r.sync_state,
    'replayLagBytes', CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn) END,
    'replayLagSeconds', extract(epoch FROM r.replay_lag)) ORDER BY r.application_name), '[]')
  FROM pg_stat_replication r JOIN pg_stat_activity a ON a.pid = r.pid
 WHERE a.datid IS NULL`;

export async function readGroupReplication(client: ClientBase): Promise<GroupReplication[]> {
  const { rows } = await client.query<{ groupid: number; nodename: string; nodeport: number; success: boolean | null; result: string | null }>(
    `SELECT n.groupid, n.nodename, n.nodeport, r.success, r.result
       FROM pg_dist_node n LEFT JOIN run_command_on_all_nodes($1) r USING (nodeid)
      WHERE n.noderole = 'primary' ORDER BY n.groupid`,
    [REPLICAS_SQL],
  );
  return rows.map((r) => {
    const primary = nodeKey(r.nodename, r.nodeport);
    if (!r.success) return { groupId: r.groupid, primary, replicas: [], error: r.result ?? "no answer" };
    const replicas = (JSON.parse(r.result!) as Replica[]).map((x) => ({
      ...x,
      replayLagBytes: x.replayLagBytes === null ? null : Number(x.replayLagBytes),
      replayLagSeconds: x.replayLagSeconds === null ? null : Number(x.replayLagSeconds),
    }));
    return { groupId: r.groupid, primary, replicas, error: null };
  });
}

/** One line per group, then one per replica, for `status`. */
export function describeGroupReplication(groups: readonly GroupReplication[]): string[] {
  const lines: string[] = [];
  for (const g of groups) {
    const head = `group ${String(g.groupId).padEnd(4)} ${(g.groupId === 0 ? "coordinator" : "worker").padEnd(12)} primary ${g.primary}`;
    if (g.error) {
      lines.push(`${head}  replicas unknown: ${g.error}`);
      continue;
    }
    if (g.replicas.length === 0) {
      lines.push(`${head}  no replica`);
      continue;
    }
    lines.push(head);
    for (const x of g.replicas) {
      const lag = [x.replayLagBytes === null ? null : `${formatBytes(x.replayLagBytes)} behind`, x.replayLagSeconds === null ? null : `replay lag ${x.replayLagSeconds.toFixed(1)} s`].filter(Boolean).join(", ");
      lines.push(`    replica ${x.name}${x.client ? ` (${x.client})` : ""}: ${x.state}, ${x.syncState}${lag ? `, ${lag}` : ""}`);
    }
  }
  return lines;
}
