/** `shardctl simulate --add-workers N`: where shard groups would go with N more workers, from the live cluster or a saved snapshot. */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { bytesPerNode, formatBytes, shardGroups, simulateAddWorkers, type NodeInfo, type ShardPlacement } from "../analysis.js";
import { readSnapshot } from "../catalog.js";
import { connect, coordinatorUrl, number, out } from "../context.js";

export function register(program: Command): void {
  program
    .command("simulate")
    .description("where shard groups would go with more workers")
    .requiredOption("--add-workers <n>", "workers to add", number("--add-workers"))
    .option("--from <file>", "a saved snapshot ({nodes, shards} as in the catalog) instead of the live cluster")
    .option("--json")
    .action(async (o: { addWorkers: number; from?: string; json?: boolean }) => {
      let nodes: NodeInfo[];
      let shards: ShardPlacement[];
      if (o.from) {
        ({ nodes, shards } = JSON.parse(readFileSync(o.from, "utf8")) as { nodes: NodeInfo[]; shards: ShardPlacement[] });
      } else {
        const c = await connect(coordinatorUrl(program));
        try {
          ({ nodes, shards } = await readSnapshot(c));
        } finally {
          await c.end();
        }
      }
      const result = simulateAddWorkers(bytesPerNode(nodes, shards), shardGroups(shards), o.addWorkers);
      if (o.json) return out.json({ ...result, load: Object.fromEntries(result.load) });
      for (const [node, bytes] of result.load) out.line(`${node.padEnd(28)} ${formatBytes(bytes).padStart(12)}`);
      out.line(`${result.moves} group moves, ${formatBytes(result.bytesMoved)}; skew ${result.skew.toFixed(2)} (lower bound ${result.lowerBound.toFixed(2)})`);
    });
}
