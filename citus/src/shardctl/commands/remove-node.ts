/** `shardctl remove-node <host:port>`: a drained worker out of the cluster. */
import type { Command } from "commander";
import { literal } from "../catalog.js";
import { nodeExists, shardsOnNode } from "../cluster.js";
import { confirm, mutation, node, out, withClient, type MutationFlags } from "../context.js";
import { mutate } from "../mutate.js";
import { ShardctlError } from "../operations.js";

export function register(program: Command): void {
  mutation(program.command("remove-node <node>").description("remove a worker that holds no shards")).action((spec: string, o: MutationFlags) =>
    withClient(program, async (c, url) => {
      const { host, port } = node(spec);
      if (!(await nodeExists(c, host, port))) throw new ShardctlError(`${spec} is not a node of this cluster`, 2);
      const held = await shardsOnNode(c, host, port);
      if (held > 0) throw new ShardctlError(`${spec} still holds ${held} shard placements: drain it first (shardctl drain ${spec})`, 3);
      const sql = [`SELECT citus_remove_node(${literal(host)}, ${port})`];
      if (!o.dryRun) await confirm(`remove ${spec} from the cluster?`, o.yes);
      await mutate({
        client: c,
        url,
        out,
        command: "remove-node",
        args: { node: spec },
        sql,
        dryRun: o.dryRun,
        verify: false,
        run: async () => {
          await c.query(sql[0]!);
          out.line(`removed ${spec}`);
        },
      });
    }),
  );
}
