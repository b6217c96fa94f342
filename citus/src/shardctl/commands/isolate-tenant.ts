/** `shardctl isolate-tenant <tenant>`: a whale tenant gets a shard group of its own, placed on --to or the least loaded worker. */
import type { Command } from "commander";
import { bytesPerNode } from "../analysis.js";
import { literal, readSnapshot } from "../catalog.js";
import { REPLICATE_REFERENCE_TABLES, nodeExists, runningJobId } from "../cluster.js";
import { confirm, mutation, node, out, withClient, type MutationFlags } from "../context.js";
import { mutate } from "../mutate.js";
import { ShardctlError } from "../operations.js";
import { citusDecoderRefusal, preflight, requirePreflight } from "../preflight.js";
import { resolveTenant } from "../tenant-ref.js";

export function register(program: Command): void {
  mutation(
    program
      .command("isolate-tenant <tenant>")
      .description("give one tenant (a whale) shards of its own, then place them on --to or the least loaded worker")
      .option("--to <node>", "host:port to place the tenant's new shard group on")
      .option("--table <name>", "a distributed table of the colocation group (its colocated tables follow)", "platform.users"),
  ).action((tenant: string, o: MutationFlags & { to?: string; table: string }) =>
    withClient(program, async (c, url) => {
      if (!/^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$/.test(o.table)) throw new ShardctlError(`--table must be schema.table (got "${o.table}")`, 2);
      const tenantId = await resolveTenant(c, tenant);
      const rows = await c.query(`SELECT 1 FROM ${o.table} WHERE tenant_id = $1 LIMIT 1`, [tenantId]);
      if (rows.rows.length === 0) throw new ShardctlError(`tenant ${tenantId} has no rows in ${o.table}: nothing to isolate`, 2);
      const target = o.to ? node(o.to) : undefined;
      if (target && !(await nodeExists(c, target.host, target.port))) throw new ShardctlError(`${o.to} is not a node of this cluster`, 2);
      const running = await runningJobId(c);
      if (running !== null) throw new ShardctlError(`rebalance job ${running} is running: isolate after it`, 3);
      const refusal = await citusDecoderRefusal(c, o.table, tenantId);
      if (refusal) throw new ShardctlError(`${refusal}. Nothing was changed.`, 3);
      const isolate = `SELECT isolate_tenant_to_new_shard(${literal(o.table)}, ${literal(tenantId)}::uuid, 'CASCADE', shard_transfer_mode := 'force_logical')`;
      const moveNote = `-- then ${REPLICATE_REFERENCE_TABLES} and citus_move_shard_placement(<new shard>, <its node>, ${target ? `${literal(target.host)}, ${target.port}` : "<least loaded worker>"}, shard_transfer_mode := 'force_logical') unless it is already there`;
      if (!o.dryRun) {
        requirePreflight(await preflight(c, await readSnapshot(c)), out);
        await confirm(`isolate tenant ${tenantId} to a shard group of its own?`, o.yes);
      }
      await mutate({
        client: c,
        url,
        out,
        command: "isolate-tenant",
        args: { tenant: tenantId, table: o.table, to: o.to ?? null },
        sql: [isolate, moveNote],
        dryRun: o.dryRun,
        verify: o.verify,
        checksum: o.checksum,
        watchMoves: true,
        run: async () => {
          // A tenant isolated before has a shard whose hash range is that one value: only place it.
          const current = (
            await c.query<{ shardid: string; isolated: boolean }>(
              "SELECT shardid, shardminvalue = shardmaxvalue AS isolated FROM pg_dist_shard WHERE shardid = get_shard_id_for_distribution_column($1::regclass, $2::uuid)",
              [o.table, tenantId],
            )
          ).rows[0]!;
          const shardId = current.isolated ? Number(current.shardid) : Number((await c.query<{ shard: string }>(`${isolate} AS shard`)).rows[0]!.shard);
          if (current.isolated) out.line(`tenant ${tenantId} already has shard ${shardId} to itself; placing it`);
          const placement = (await c.query<{ nodename: string; nodeport: number }>("SELECT nodename, nodeport FROM citus_shards WHERE shardid = $1", [shardId])).rows[0]!;
          let destination = target;
          if (!destination) {
            const snapshot = await readSnapshot(c);
            const load = [...bytesPerNode(snapshot.nodes, snapshot.shards)].sort((a, b) => a[1] - b[1]);
            const [host, port] = load[0]![0].split(":");
            destination = { host: host!, port: Number(port) };
          }
          if (destination.host !== placement.nodename || destination.port !== placement.nodeport) {
            await c.query(REPLICATE_REFERENCE_TABLES);
            await c.query("SELECT citus_move_shard_placement($1, $2, $3, $4, $5, shard_transfer_mode := 'force_logical')", [shardId, placement.nodename, placement.nodeport, destination.host, destination.port]);
          }
          out.line(`tenant ${tenantId} now has shard ${shardId} (and its colocated shards) on ${destination.host}:${destination.port}`);
          return { tenant: tenantId, shardId, node: `${destination.host}:${destination.port}` };
        },
      });
    }),
  );
}
