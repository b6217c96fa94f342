/**
 * The pure part of shardctl: load per node, skew, what a rebalance plan moves and how long it may take, and where
 * shard groups would go with more workers. No database here; tests feed real Citus 13.2 catalog snapshots.
 */

export interface NodeInfo {
  readonly nodeid: number;
  readonly nodename: string;
  readonly nodeport: number;
  readonly groupid: number;
  readonly isactive: boolean;
  readonly noderole: string;
  readonly shouldhaveshards: boolean;
}

/** One placement of one shard (a row of citus_shards, with its shard group). */
export interface ShardPlacement {
  readonly table_name: string;
  readonly shardid: number;
  readonly citus_table_type: string;
  readonly colocation_id: number;
  readonly nodename: string;
  readonly nodeport: number;
  readonly shard_size: number;
  /** Colocated shards with the same hash range move together: colocation_id:shardminvalue. */
  readonly group: string;
}

export interface PlanMove {
  readonly table_name: string;
  readonly shardid: number;
  readonly shard_size: number;
  readonly sourcename: string;
  readonly sourceport: number;
  readonly targetname: string;
  readonly targetport: number;
}

export const nodeKey = (name: string, port: number) => `${name}:${port}`;

export function parseNode(spec: string): { host: string; port: number } {
  const match = /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(spec.trim());
  if (!match || Number(match[2]) > 65535) throw new Error(`"${spec}" is not host:port (e.g. worker-3.db.internal:5432)`);
  return { host: match[1]!, port: Number(match[2]) };
}

/** Bytes of distributed (not reference) placements per node that should hold shards. */
export function bytesPerNode(nodes: readonly NodeInfo[], shards: readonly ShardPlacement[]): Map<string, number> {
  const load = new Map<string, number>();
  for (const n of nodes) if (n.shouldhaveshards && n.isactive && n.noderole === "primary") load.set(nodeKey(n.nodename, n.nodeport), 0);
  for (const s of shards) {
    if (s.citus_table_type !== "distributed") continue;
    const key = nodeKey(s.nodename, s.nodeport);
    if (load.has(key)) load.set(key, load.get(key)! + s.shard_size);
  }
  return load;
}

/** Largest node over the mean (1 = perfectly even). */
export function skew(load: ReadonlyMap<string, number>): number {
  const values = [...load.values()];
  if (values.length === 0) return 1;
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return mean === 0 ? 1 : Math.max(...values) / mean;
}

/** Shard groups (what Citus moves as a unit) with their total bytes and current node. */
export function shardGroups(shards: readonly ShardPlacement[]): Map<string, { node: string; bytes: number; shardIds: number[] }> {
  const groups = new Map<string, { node: string; bytes: number; shardIds: number[] }>();
  for (const s of shards) {
    if (s.citus_table_type !== "distributed") continue;
    const g = groups.get(s.group) ?? { node: nodeKey(s.nodename, s.nodeport), bytes: 0, shardIds: [] };
    g.bytes += s.shard_size;
    g.shardIds.push(s.shardid);
    groups.set(s.group, g);
  }
  return groups;
}

/**
 * The best any shard-moving rebalance can reach: the largest shard group cannot be split by a move, so the most
 * loaded node holds at least max(mean, largest group).
 */
export function skewLowerBound(load: ReadonlyMap<string, number>, groups: ReadonlyMap<string, { bytes: number }>): number {
  const total = [...load.values()].reduce((a, b) => a + b, 0);
  if (load.size === 0 || total === 0) return 1;
  const mean = total / load.size;
  const largest = Math.max(0, ...[...groups.values()].map((g) => g.bytes));
  return Math.max(mean, largest) / mean;
}

export interface PlanSummary {
  readonly moves: { readonly group: string; readonly source: string; readonly target: string; readonly bytes: number; readonly shards: number }[];
  readonly bytesToMove: number;
  readonly estimatedSeconds: number;
  readonly skewBefore: number;
  readonly skewAfter: number;
}

/**
 * What a plan from get_rebalance_table_shards_plan does, per shard group. `shardBytes` fills sizes the plan leaves
 * at 0 (Citus reports colocated shards' sizes on the first one only). Duration: bytes over a transfer rate, plus a
 * fixed cost per group for the logical-replication catch-up and switch-over.
 */
export function summarizePlan(
  plan: readonly PlanMove[],
  shards: readonly ShardPlacement[],
  nodes: readonly NodeInfo[],
  options: { bytesPerSecond: number; secondsPerGroup?: number },
): PlanSummary {
  const byShard = new Map(shards.map((s) => [s.shardid, s]));
  const moves = new Map<string, { group: string; source: string; target: string; bytes: number; shards: number }>();
  for (const m of plan) {
    const placement = byShard.get(m.shardid);
    const group = placement?.group ?? `shard:${m.shardid}`;
    const entry = moves.get(group) ?? { group, source: nodeKey(m.sourcename, m.sourceport), target: nodeKey(m.targetname, m.targetport), bytes: 0, shards: 0 };
    entry.bytes += placement?.shard_size ?? m.shard_size;
    entry.shards += 1;
    moves.set(group, entry);
  }
  const before = bytesPerNode(nodes, shards);
  const after = new Map(before);
  for (const m of moves.values()) {
    if (after.has(m.source)) after.set(m.source, after.get(m.source)! - m.bytes);
    if (after.has(m.target)) after.set(m.target, after.get(m.target)! + m.bytes);
  }
  const bytesToMove = [...moves.values()].reduce((a, m) => a + m.bytes, 0);
  return {
    moves: [...moves.values()],
    bytesToMove,
    estimatedSeconds: bytesToMove / options.bytesPerSecond + moves.size * (options.secondsPerGroup ?? 10),
    skewBefore: skew(before),
    skewAfter: skew(after),
  };
}

export interface Simulation {
  readonly load: Map<string, number>;
  readonly skew: number;
  readonly lowerBound: number;
  readonly moves: number;
  readonly bytesMoved: number;
}

/**
 * Where shard groups would go after adding `add` empty workers: repeatedly move the largest group that fits from
 * the most loaded node to the least loaded one while that lowers the maximum (the by_disk_size idea). Linear-ish in
 * groups x moves; stands at 1,024 groups and 64 workers (bench/planner.ts).
 */
export function simulateAddWorkers(load: ReadonlyMap<string, number>, groups: ReadonlyMap<string, { node: string; bytes: number }>, add: number): Simulation {
  if (!Number.isInteger(add) || add < 0) throw new Error(`--add-workers must be a whole number >= 0 (got ${add})`);
  const nodes = new Map(load);
  for (let i = 0; i < add; i++) nodes.set(`new-worker-${i + 1}`, 0);
  const byNode = new Map<string, { id: string; bytes: number }[]>();
  for (const key of nodes.keys()) byNode.set(key, []);
  for (const [id, g] of groups) byNode.get(g.node)?.push({ id, bytes: g.bytes });
  for (const list of byNode.values()) list.sort((a, b) => b.bytes - a.bytes);
  let moves = 0;
  let bytesMoved = 0;
  for (let guard = 0; guard < groups.size * 4; guard++) {
    let maxKey = "";
    let minKey = "";
    for (const [k, v] of nodes) {
      if (!maxKey || v > nodes.get(maxKey)!) maxKey = k;
      if (!minKey || v < nodes.get(minKey)!) minKey = k;
    }
    const gap = nodes.get(maxKey)! - nodes.get(minKey)!;
    // The largest group whose move strictly lowers the larger of the two nodes.
    const candidates = byNode.get(maxKey)!;
    const index = candidates.findIndex((g) => g.bytes > 0 && g.bytes < gap);
    if (index < 0) break;
    const [group] = candidates.splice(index, 1);
    const target = byNode.get(minKey)!;
    target.push(group!);
    target.sort((a, b) => b.bytes - a.bytes);
    nodes.set(maxKey, nodes.get(maxKey)! - group!.bytes);
    nodes.set(minKey, nodes.get(minKey)! + group!.bytes);
    moves++;
    bytesMoved += group!.bytes;
  }
  return { load: nodes, skew: skew(nodes), lowerBound: skewLowerBound(nodes, groups), moves, bytesMoved };
}

export function formatBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
