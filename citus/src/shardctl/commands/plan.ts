/** `shardctl plan`: what a rebalance would move, per shard group, with bytes, an estimated duration and the skew after. */
import type { Command } from "commander";
import type { ClientBase } from "pg";
import { formatBytes, summarizePlan, type PlanSummary } from "../analysis.js";
import { readPlan, readSnapshot, type ClusterSnapshot } from "../catalog.js";
import { number, out, withClient, type Output } from "../context.js";
import { ShardctlError } from "../operations.js";

const STRATEGIES = ["by_disk_size", "by_shard_count"] as const;

/** The --strategy option, shared by every command that plans. */
export const STRATEGY = ["--strategy <name>", "by_disk_size or by_shard_count", "by_disk_size"] as const;

export interface PlanOptions {
  readonly strategy: string;
  readonly threshold?: number;
  readonly drainOnly?: boolean;
  /** Transfer rate for the estimate, bytes per second. */
  readonly bytesPerSecond: number;
}

export async function plan(client: ClientBase, options: PlanOptions): Promise<{ summary: PlanSummary; snapshot: ClusterSnapshot }> {
  if (!(STRATEGIES as readonly string[]).includes(options.strategy)) {
    throw new ShardctlError(`--strategy must be one of ${STRATEGIES.join(", ")} (got "${options.strategy}")`, 2);
  }
  const snapshot = await readSnapshot(client);
  const moves = await readPlan(client, options.strategy, options.threshold, options.drainOnly ?? false);
  return { summary: summarizePlan(moves, snapshot.shards, snapshot.nodes, { bytesPerSecond: options.bytesPerSecond }), snapshot };
}

export function printPlan(summary: PlanSummary, out: Output): void {
  if (summary.moves.length === 0) {
    out.line(`nothing to move (skew ${summary.skewBefore.toFixed(2)})`);
    return;
  }
  out.line("shard group              from                         to                              bytes  shards");
  for (const m of summary.moves) out.line(`${m.group.padEnd(24)} ${m.source.padEnd(28)} ${m.target.padEnd(28)} ${formatBytes(m.bytes).padStart(10)} ${String(m.shards).padStart(7)}`);
  out.line(
    `${summary.moves.length} shard group(s), ${formatBytes(summary.bytesToMove)} to move, about ${Math.ceil(summary.estimatedSeconds / 60)} min; ` +
      `skew ${summary.skewBefore.toFixed(2)} -> ${summary.skewAfter.toFixed(2)}`,
  );
}

export function register(program: Command): void {
  program
    .command("plan")
    .description("what a rebalance would move, bytes, estimated time, skew after")
    .option(...STRATEGY)
    .option("--threshold <x>", "rebalance threshold", number("--threshold"))
    .option("--drain-only", "only move shards off nodes that should not have any")
    .option("--rate <MBps>", "transfer rate for the duration estimate", number("--rate"), 50)
    .option("--json")
    .action((o: { strategy: string; threshold?: number; drainOnly?: boolean; rate: number; json?: boolean }) =>
      withClient(program, async (c) => {
        const { summary } = await plan(c, { strategy: o.strategy, threshold: o.threshold, drainOnly: o.drainOnly, bytesPerSecond: o.rate * 1024 * 1024 });
        if (o.json) out.json(summary);
        else printPlan(summary, out);
      }),
    );
}
