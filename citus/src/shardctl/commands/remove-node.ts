/** `shardctl remove-node <host:port>`: a drained worker out of the cluster. */
import type { Command } from "commander";
import { literal } from "../catalog.js";
import { cleanupRecordsOnNode, nodeExists, shardsOnNode } from "../cluster.js";
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
      // The moves that drained the node left its old copies for Citus to drop later (pg_dist_cleanup). Removed before
      // that, the node's records can never be cleaned, and Citus refuses every later move of those shards: drop the
      // copies now, and remove the node only when none is left.
      const sql = ["CALL citus_cleanup_orphaned_resources()", `SELECT citus_remove_node(${literal(host)}, ${port})`];
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
          const left = await cleanupRecordsOnNode(c, host, port);
          if (left > 0) {
            throw new ShardctlError(
              `${spec} still has ${left} leftover${left === 1 ? "" : "s"} of earlier moves waiting to be dropped (pg_dist_cleanup: old shard copies, subscriptions, slots), and removing it now would ` +
                `leave their records behind, after which Citus refuses to move those shards. Nothing was removed. A move still running, or a query ` +
                `still reading an old copy, holds them: wait for it (shardctl status), then run remove-node again`,
              3,
            );
          }
          await c.query(sql[1]!);
          out.line(`removed ${spec}`);
        },
      });
    }),
  );
}
