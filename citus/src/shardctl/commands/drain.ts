/** `shardctl drain <host:port>`: every shard group off a worker, before it is removed or replaced. */
import type { Command } from "commander";
import { readSnapshot } from "../catalog.js";
import { drainSql, nodeExists, runningJobId, shardsOnNode } from "../cluster.js";
import { confirm, mutation, node, out, withClient, type MutationFlags } from "../context.js";
import { mutate } from "../mutate.js";
import { ShardctlError } from "../operations.js";
import { preflight, requirePreflight } from "../preflight.js";

export function register(program: Command): void {
  mutation(program.command("drain <node>").description("move every shard group off a worker")).action((spec: string, o: MutationFlags) =>
    withClient(program, async (c, url) => {
      const { host, port } = node(spec);
      if (!(await nodeExists(c, host, port))) throw new ShardctlError(`${spec} is not a node of this cluster (see shardctl status)`, 2);
      const running = await runningJobId(c);
      if (running !== null) throw new ShardctlError(`rebalance job ${running} is running: wait for it or attach`, 3);
      const sql = drainSql(host, port);
      if (!o.dryRun) {
        requirePreflight(await preflight(c, await readSnapshot(c)), out);
        await confirm(`move every shard group off ${spec}?`, o.yes);
      }
      await mutate({
        client: c,
        url,
        out,
        command: "drain",
        args: { node: spec },
        sql,
        dryRun: o.dryRun,
        verify: o.verify,
        checksum: o.checksum,
        watchMoves: true,
        run: async () => {
          for (const statement of sql) await c.query(statement);
          const left = await shardsOnNode(c, host, port);
          if (left > 0) throw new ShardctlError(`${spec} still holds ${left} shard placements after the drain`, 4);
          out.line(`${spec} holds no shards; remove it with shardctl remove-node ${spec}`);
          return { node: spec };
        },
      });
    }),
  );
}
