/**
 * Which Citus node group holds a tenant's rows, worked out in the client: the tenant's hash, as Citus computes it for
 * a uuid distribution column, looked up in the shard intervals of the tenant tables' colocation group. A process that
 * knows this before it takes a pool connection can bound what one node costs it (the tenant service's node bulkhead,
 * services/tenant-service/src/db/node-bulkhead.ts): asking the coordinator per request would itself take a connection.
 *
 * Nothing correct depends on it. A map read before a shard move names the old group until it is read again: the
 * transaction still runs where Citus routes it, only counted against the other node.
 */
import type pg from "pg";

/** The table whose colocation group every tenant table belongs to (migration 0001: the others colocate with it). */
export const TENANT_COLOCATION_TABLE = "platform.users";

/** One shard's hash range, inclusive at both ends, and the node group holding it. */
export interface ShardInterval {
  readonly min: number;
  readonly max: number;
  readonly group: number;
}

/** The shard intervals of one distributed table, sorted by `min` and not overlapping (hash-distributed tables). */
export type ShardMap = readonly ShardInterval[];

/**
 * The table's intervals and their groups, from the coordinator's metadata (pg_dist_shard and pg_dist_placement, which
 * every role may read). A table with a shard placed twice (replication factor above one) is refused: which copy a
 * statement uses is then Citus's choice, not a group this map could name.
 */
export async function readShardMap(client: Pick<pg.ClientBase, "query">, table: string = TENANT_COLOCATION_TABLE): Promise<ShardMap> {
  const { rows } = await client.query<{ min: number; max: number; group: number; placements: number }>(
    `SELECT s.shardminvalue::int AS min, s.shardmaxvalue::int AS max, min(p.groupid)::int AS "group", count(*)::int AS placements
       FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid)
      WHERE s.logicalrelid = $1::regclass
      GROUP BY s.shardid, s.shardminvalue, s.shardmaxvalue
      ORDER BY s.shardminvalue::int`,
    [table],
  );
  const doubled = rows.find((row) => row.placements > 1);
  if (doubled) throw new Error(`${table}: the shard of hashes ${doubled.min}..${doubled.max} has ${doubled.placements} placements; a node map needs one per shard`);
  return rows.map(({ min, max, group }) => ({ min, max, group }));
}

/** The group holding `tenantId`'s rows, or undefined where no interval covers its hash (an empty or partial map). */
export function groupOfTenant(map: ShardMap, tenantId: string): number | undefined {
  const hash = uuidHash(tenantId);
  let low = 0;
  let high = map.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const interval = map[middle]!;
    if (hash < interval.min) high = middle - 1;
    else if (hash > interval.max) low = middle + 1;
    else return interval.group;
  }
  return undefined;
}

/**
 * PostgreSQL's uuid_hash (the hash Citus distributes a uuid column by): hash_bytes over the uuid's 16 bytes, Bob
 * Jenkins' lookup3 as src/common/hashfn.c has it, read little-endian as on the x86 and Arm servers PostgreSQL runs on
 * here. Returned as the signed int4 Citus compares with its shard intervals. Checked against the server's own
 * uuid_hash by citus/test/shard-map.test.ts.
 */
export function uuidHash(uuid: string): number {
  const hex = uuid.replaceAll("-", "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`"${uuid}" is not a uuid`);
  const bytes = Buffer.from(hex, "hex");
  const word = (at: number) => bytes.readUInt32LE(at);
  let a = (0x9e3779b9 + 16 + 3923095) >>> 0;
  let b = a;
  let c = a;
  // The first twelve bytes, mixed.
  a = (a + word(0)) >>> 0;
  b = (b + word(4)) >>> 0;
  c = (c + word(8)) >>> 0;
  a = (a - c) >>> 0; a = (a ^ rot(c, 4)) >>> 0; c = (c + b) >>> 0;
  b = (b - a) >>> 0; b = (b ^ rot(a, 6)) >>> 0; a = (a + c) >>> 0;
  c = (c - b) >>> 0; c = (c ^ rot(b, 8)) >>> 0; b = (b + a) >>> 0;
  a = (a - c) >>> 0; a = (a ^ rot(c, 16)) >>> 0; c = (c + b) >>> 0;
  b = (b - a) >>> 0; b = (b ^ rot(a, 19)) >>> 0; a = (a + c) >>> 0;
  c = (c - b) >>> 0; c = (c ^ rot(b, 4)) >>> 0; b = (b + a) >>> 0;
  // The last four, then the final mix.
  a = (a + word(12)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 14)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rot(c, 11)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rot(a, 25)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 16)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rot(c, 4)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rot(a, 14)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 24)) >>> 0;
  return c | 0;
}

function rot(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
