/** `shardctl move-shard <shardid> <from> <to>`: one shard and its colocated shards between workers. */
import type { Command } from "commander";
import { literal, readSnapshot } from "../catalog.js";
import { REPLICATE_REFERENCE_TABLES, nodeExists, runningJobId } from "../cluster.js";
import { confirm, mutation, node, out, withClient, type MutationFlags } from "../context.js";
import { mutate } from "../mutate.js";
import { ShardctlError } from "../operations.js";
import { preflight, requirePreflight } from "../preflight.js";

export function register(program: Command): void {
  mutation(program.command("move-shard <shardid> <from> <to>").description("move one shard and its colocated shards between workers")).action(
    (shard: string, from: string, to: string, o: MutationFlags) =>
      withClient(program, async (c, url) => {
        const shardId = Number(shard);
        if (!Number.isInteger(shardId) || shardId <= 0) throw new ShardctlError(`shard id must be a positive whole number (got "${shard}")`, 2);
        const source = node(from);
        const target = node(to);
        const placed = await c.query("SELECT 1 FROM citus_shards WHERE shardid = $1 AND nodename = $2 AND nodeport = $3", [shardId, source.host, source.port]);
        if (placed.rows.length === 0) throw new ShardctlError(`shard ${shardId} has no placement on ${from} (see shardctl status / citus_shards)`, 2);
        if (!(await nodeExists(c, target.host, target.port))) throw new ShardctlError(`${to} is not a node of this cluster`, 2);
        const running = await runningJobId(c);
        if (running !== null) throw new ShardctlError(`rebalance job ${running} is running: move after it`, 3);
        const sql = [
          REPLICATE_REFERENCE_TABLES,
          `SELECT citus_move_shard_placement(${shardId}, ${literal(source.host)}, ${source.port}, ${literal(target.host)}, ${target.port}, shard_transfer_mode := 'force_logical')`,
        ];
        if (!o.dryRun) {
          requirePreflight(await preflight(c, await readSnapshot(c)), out);
          await confirm(`move shard ${shardId} and its colocated shards ${from} -> ${to}?`, o.yes);
        }
        await mutate({
          client: c,
          url,
          out,
          command: "move-shard",
          args: { shard: shardId, from, to },
          sql,
          dryRun: o.dryRun,
          verify: o.verify,
          checksum: o.checksum,
          watchMoves: true,
          run: async () => {
            await c.query(sql[0]!);
            await c.query(sql[1]!);
            out.line(`shard ${shardId} and its colocated shards moved ${from} -> ${to}`);
            return { shard: shardId, from, to };
          },
        });
      }),
  );
}
