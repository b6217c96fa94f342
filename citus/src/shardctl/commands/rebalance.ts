/** `shardctl rebalance`: preflight, Citus's plan, confirmation, then the background job followed to its end. */
import type { Command } from "commander";
import type pg from "pg";
import { literal } from "../catalog.js";
import { runningJobId } from "../cluster.js";
import { confirm, mutation, out, withClient, type MutationFlags } from "../context.js";
import { mutate } from "../mutate.js";
import { SIGNALS, ShardctlError } from "../operations.js";
import { preflight, requirePreflight } from "../preflight.js";
import { followJob } from "../progress.js";
import { STRATEGY, plan, printPlan } from "./plan.js";
import { createInterface } from "node:readline/promises";

export interface RebalanceOptions extends MutationFlags {
  readonly strategy: string;
}

/** Preflight, the plan, confirmation, then Citus's rebalance job followed to its end (or stopped, or detached). */
export async function rebalance(c: pg.Client, url: string, o: RebalanceOptions): Promise<void> {
  const { summary, snapshot } = await plan(c, { strategy: o.strategy, bytesPerSecond: 50 * 1024 * 1024 });
  requirePreflight(await preflight(c, snapshot), out);
  out.line("note: free disk on the targets cannot be read through SQL; check the Citus dashboard (Data disk free) against the bytes below");
  printPlan(summary, out);
  if (summary.moves.length === 0) return;
  const sql = [`SELECT citus_rebalance_start(rebalance_strategy := ${literal(o.strategy)})`];
  if (!o.dryRun) await confirm("start this rebalance?", o.yes);
  await mutate({
    client: c,
    url,
    out,
    command: "rebalance",
    args: { strategy: o.strategy },
    sql,
    dryRun: o.dryRun,
    verify: o.verify,
    checksum: o.checksum,
    run: async () => {
      const { rows } = await c.query<{ job: string }>(`${sql[0]} AS job`);
      const jobId = Number(rows[0]!.job);
      // The job is Citus's, in the background: shardctl ending does not end it. Ctrl-C asks whether to stop it or
      // detach; SIGTERM or SIGHUP (a closed terminal: no one to ask) detach, recorded as such, rather than die with
      // the operation recorded as running.
      const abort = new AbortController();
      let received: NodeJS.Signals | undefined;
      const onInterrupt = (signal: NodeJS.Signals) => {
        received ??= signal;
        abort.abort();
      };
      for (const signal of SIGNALS) process.once(signal, onInterrupt);
      try {
        const job = await followJob(c, jobId, out, { interactive: process.stdout.isTTY, signal: abort.signal });
        if (abort.signal.aborted && !["finished", "failed", "cancelled"].includes(job.state)) {
          const stop =
            received === "SIGINT" && process.stdin.isTTY
              ? /^s/i.test(await createInterface({ input: process.stdin, output: process.stdout }).question("[s]top the job or [d]etach (it keeps running)? "))
              : false;
          if (stop) {
            await c.query("SELECT citus_rebalance_stop()");
            throw new ShardctlError(`rebalance job ${jobId} stopped; moves already done stay done`, 4);
          }
          out.line(`${received}: detached: job ${jobId} keeps running; follow it with \`shardctl rebalance --attach\``);
          return { jobId, detached: true, signal: received };
        }
        if (job.state !== "finished") throw new ShardctlError(`rebalance job ${jobId} ended ${job.state}: see docs/runbooks/rebalance.md`, 4);
        return { jobId, moves: summary.moves.length, bytes: summary.bytesToMove };
      } finally {
        for (const signal of SIGNALS) process.removeListener(signal, onInterrupt);
      }
    },
  });
}

export function register(program: Command): void {
  mutation(
    program
      .command("rebalance")
      .description("move shard groups until the cluster is balanced (Citus's background rebalancer), following it to its end")
      .option(...STRATEGY)
      .option("--attach", "follow a rebalance that is already running"),
  ).action((o: RebalanceOptions & { attach?: boolean }) =>
    withClient(program, async (c, url) => {
      if (o.attach) {
        const id = await runningJobId(c);
        if (id === null) throw new ShardctlError("no rebalance is running to attach to", 3);
        const job = await followJob(c, id, out, { interactive: process.stdout.isTTY });
        if (job.state !== "finished") throw new ShardctlError(`rebalance job ${id} ended ${job.state}: see docs/runbooks/rebalance.md`, 4);
        return;
      }
      await rebalance(c, url, o);
    }),
  );
}
