/** `shardctl add-node <host:port> [--rebalance]`: a new worker into the cluster, and with --rebalance shards onto it. */
import type { Command } from "commander";
import { literal } from "../catalog.js";
import { nodeExists } from "../cluster.js";
import { confirm, mutation, node, out, withClient } from "../context.js";
import { mutate } from "../mutate.js";
import { ShardctlError } from "../operations.js";
import { STRATEGY } from "./plan.js";
import { rebalance, type RebalanceOptions } from "./rebalance.js";

export function register(program: Command): void {
  mutation(
    program
      .command("add-node <node>")
      .description("add a worker (it takes no shards until a rebalance)")
      .option("--rebalance", "then rebalance onto it: preflight, plan, confirmation unless --yes")
      .option(...STRATEGY),
  ).action((spec: string, o: RebalanceOptions & { rebalance?: boolean }) =>
    withClient(program, async (c, url) => {
      const { host, port } = node(spec);
      if (await nodeExists(c, host, port)) throw new ShardctlError(`${spec} is already in the cluster`, 3);
      const sql = [`SELECT citus_add_node(${literal(host)}, ${port})`];
      if (!o.dryRun) await confirm(`add ${spec} to the cluster?`, o.yes);
      await mutate({
        client: c,
        url,
        out,
        command: "add-node",
        args: { node: spec },
        sql,
        dryRun: o.dryRun,
        verify: false,
        run: async () => {
          await c.query(sql[0]!);
          out.line(`added ${spec}; it holds no shards until a rebalance${o.rebalance ? "" : " (shardctl rebalance)"}`);
        },
      });
      if (!o.rebalance) return;
      // A dry run cannot plan onto a node it did not add: it shows the statement the rebalance would start.
      if (o.dryRun) out.line(`SELECT citus_rebalance_start(rebalance_strategy := ${literal(o.strategy)});`);
      else await rebalance(c, url, o);
    }),
  );
}
