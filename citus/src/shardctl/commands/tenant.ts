/**
 * `shardctl tenant <id|code> [--json]`: where one tenant lives. For each distributed table holding its rows: the shard
 * its id hashes to, the node that shard is on, whether the shard is the tenant's alone (isolate-tenant), the shard's
 * size and the tenant's own rows and bytes in it; then the tenant's recent load (citus_stat_tenants), its placement in
 * the registry (issue 25) and any move of its shards in flight. Read-only.
 */
import type { Command } from "commander";
import type { ClientBase } from "pg";
import { formatBytes, nodeKey } from "../analysis.js";
import { out, withClient, type Output } from "../context.js";
import { readMoveHealth } from "../moves.js";
import { ShardctlError } from "../operations.js";
import { resolveTenant } from "../tenant-ref.js";

export interface TenantShard {
  readonly table: string;
  readonly shardId: number;
  readonly node: string;
  /** The shard's hash range is the tenant's value alone: it was isolated. */
  readonly isolated: boolean;
  readonly shardBytes: number;
  readonly tenantRows: number;
  /** The tenant's rows' bytes as stored (pg_column_size of each row, before indexes and page overhead). */
  readonly tenantBytes: number;
}

export interface TenantLoad {
  /** Citus's tenant statistics (citus.stat_tenants_track); null when they are off. */
  readonly tracked: boolean;
  readonly queriesThisPeriod: number;
  readonly queriesLastPeriod: number;
  readonly readsThisPeriod: number;
  readonly cpuSecondsThisPeriod: number;
  readonly cpuSecondsLastPeriod: number;
}

export interface TenantReport {
  readonly tenant: string;
  readonly code: string | null;
  /** The registry's placement (platform.tenant_placements) when this database holds the registry; null otherwise. */
  readonly placement: string | null;
  readonly shards: TenantShard[];
  readonly load: TenantLoad;
  readonly movesInFlight: { shardId: number; source: string; target: string; status: string }[];
}

export async function tenantReport(c: ClientBase, ref: string): Promise<TenantReport> {
  const tenant = await resolveTenant(c, ref);
  const code = (await c.query<{ code: string }>("SELECT code FROM platform.tenants WHERE id = $1", [tenant]).catch(() => ({ rows: [] }))).rows[0]?.code ?? null;
  // Every distributed table with a tenant_id distribution column (hash-distributed, so the tenant has one shard each).
  const tables = (
    await c.query<{ table: string }>(
      `SELECT logicalrelid::regclass::text AS table FROM pg_dist_partition p
        JOIN pg_attribute a ON a.attrelid = p.logicalrelid AND a.attname = 'tenant_id'
       WHERE p.partmethod = 'h' AND column_to_column_name(p.logicalrelid, p.partkey) = 'tenant_id'
       ORDER BY 1`,
    )
  ).rows.map((r) => r.table);
  if (tables.length === 0) throw new ShardctlError("no table here is distributed by tenant_id: is this the Citus coordinator of the platform database?", 2);
  const shards: TenantShard[] = [];
  for (const table of tables) {
    const shard = (
      await c.query<{ shardid: string; nodename: string; nodeport: number; isolated: boolean; bytes: string }>(
        `SELECT s.shardid, cs.nodename, cs.nodeport, s.shardminvalue = s.shardmaxvalue AS isolated, cs.shard_size AS bytes
           FROM pg_dist_shard s JOIN citus_shards cs USING (shardid)
          WHERE s.shardid = get_shard_id_for_distribution_column($1::regclass, $2::uuid)`,
        [table, tenant],
      )
    ).rows[0];
    if (!shard) continue;
    // Partitioned tables (audit_log) are distributed per partition too: their parent's shard is what the tenant hashes to.
    const own = (
      await c.query<{ rows: string; bytes: string | null }>(`SELECT count(*) AS rows, sum(pg_column_size(t.*)) AS bytes FROM ${table} t WHERE tenant_id = $1`, [tenant])
    ).rows[0]!;
    shards.push({
      table,
      shardId: Number(shard.shardid),
      node: nodeKey(shard.nodename, shard.nodeport),
      isolated: shard.isolated,
      shardBytes: Number(shard.bytes),
      tenantRows: Number(own.rows),
      tenantBytes: Number(own.bytes ?? 0),
    });
  }
  const load = await readTenantLoad(c, tenant);
  const placement = await c
    .query<{ database: string }>("SELECT database FROM platform.tenant_placements WHERE tenant_id = $1", [tenant])
    .then((r) => r.rows[0]?.database ?? "home", () => null);
  const ids = new Set(shards.map((s) => s.shardId));
  const moves = (await readMoveHealth(c)).moves.filter((m) => ids.has(m.shardId)).map((m) => ({ shardId: m.shardId, source: m.source, target: m.target, status: m.status }));
  return { tenant, code, placement, shards, load, movesInFlight: moves };
}

async function readTenantLoad(c: ClientBase, tenant: string): Promise<TenantLoad> {
  const off: TenantLoad = { tracked: false, queriesThisPeriod: 0, queriesLastPeriod: 0, readsThisPeriod: 0, cpuSecondsThisPeriod: 0, cpuSecondsLastPeriod: 0 };
  const track = await c.query<{ v: string }>("SELECT current_setting('citus.stat_tenants_track', true) AS v").catch(() => ({ rows: [{ v: "none" }] }));
  if (track.rows[0]?.v !== "all") return off;
  const { rows } = await c.query<Record<string, string>>(
    `SELECT coalesce(sum(query_count_in_this_period), 0) AS q_now, coalesce(sum(query_count_in_last_period), 0) AS q_last,
            coalesce(sum(read_count_in_this_period), 0) AS r_now,
            coalesce(sum(cpu_usage_in_this_period), 0) AS cpu_now, coalesce(sum(cpu_usage_in_last_period), 0) AS cpu_last
       FROM citus_stat_tenants WHERE tenant_attribute = $1`,
    [tenant],
  );
  const r = rows[0]!;
  return { tracked: true, queriesThisPeriod: Number(r.q_now), queriesLastPeriod: Number(r.q_last), readsThisPeriod: Number(r.r_now), cpuSecondsThisPeriod: Number(r.cpu_now), cpuSecondsLastPeriod: Number(r.cpu_last) };
}

export function describeTenant(report: TenantReport, o: Output): void {
  o.line(`tenant ${report.tenant}${report.code ? ` (${report.code})` : ""}${report.placement ? `, placed in database "${report.placement}"` : ""}`);
  o.line("table                        shard      node                     alone   shard size   tenant rows  tenant bytes");
  for (const s of report.shards) {
    o.line(`${s.table.padEnd(28)} ${String(s.shardId).padEnd(10)} ${s.node.padEnd(24)} ${(s.isolated ? "yes" : "no").padEnd(7)} ${formatBytes(s.shardBytes).padStart(10)} ${String(s.tenantRows).padStart(13)} ${formatBytes(s.tenantBytes).padStart(13)}`);
  }
  const nodes = new Set(report.shards.map((s) => s.node));
  if (nodes.size > 1) o.line(`WARNING: the tenant's shards are on ${nodes.size} nodes (${[...nodes].join(", ")}): its queries are not routed to one worker; are they colocated?`);
  const l = report.load;
  o.line(
    l.tracked
      ? `load: ${l.queriesThisPeriod} queries this period (${l.queriesLastPeriod} the last), ${l.readsThisPeriod} reads, ${l.cpuSecondsThisPeriod.toFixed(3)} s CPU (${l.cpuSecondsLastPeriod.toFixed(3)} s the last)`
      : "load: not tracked (set citus.stat_tenants_track = 'all' on every node to see each tenant's queries and CPU)",
  );
  for (const m of report.movesInFlight) o.line(`moving: shard ${m.shardId} ${m.source} -> ${m.target} (${m.status})`);
}

export function register(program: Command): void {
  program
    .command("tenant <tenant>")
    .description("where a tenant (id or code) lives: its shards, their nodes, its rows and bytes, its recent load, moves in flight")
    .option("--json")
    .action((ref: string, o: { json?: boolean }) =>
      withClient(program, async (c) => {
        const report = await tenantReport(c, ref);
        if (o.json) return out.json(report);
        describeTenant(report, out);
      }),
    );
}
