/**
 * Following a background rebalance job (`rebalance`, `rebalance --attach`, `add-node --rebalance`) to its end: a
 * progress bar over its tasks, the move in flight with how far behind it is, and every reason it is not catching up,
 * printed as soon as it is seen.
 */
import { SingleBar, Presets } from "cli-progress";
import type { ClientBase } from "pg";
import { formatBytes } from "./analysis.js";
import type { RebalanceJob } from "./catalog.js";
import type { Output } from "./context.js";
import { readMoveHealth } from "./moves.js";
import { ShardctlError } from "./operations.js";

export async function followJob(client: ClientBase, jobId: number, out: Output, options: { pollMs?: number; interactive?: boolean; signal?: AbortSignal } = {}): Promise<RebalanceJob> {
  const bar = options.interactive ? new SingleBar({ format: "rebalance {bar} {value}/{total} tasks | {state} | {move}" }, Presets.shades_classic) : undefined;
  let started = false;
  const reported = new Set<string>();
  let lastMove = "";
  // Reading every node's subscriptions and slots is heavier than the job's row: every 5 s is enough.
  let health: Awaited<ReturnType<typeof readMoveHealth>> | undefined;
  let healthAt = 0;
  for (;;) {
    const { rows } = await client.query<RebalanceJob>("SELECT job_id, state::text AS state, details FROM citus_rebalance_status() WHERE job_id = $1", [jobId]);
    const job = rows[0];
    if (!job) throw new ShardctlError(`rebalance job ${jobId} not found`, 4);
    const counts = job.details?.task_state_counts ?? {};
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const done = counts.done ?? 0;
    if (Date.now() - healthAt >= 5000) {
      health = await readMoveHealth(client).catch(() => undefined);
      healthAt = Date.now();
    }
    const current = health?.moves[0];
    const move = current ? `shard ${current.shardId} ${current.source} -> ${current.target}${current.lagBytes === null ? "" : `, ${formatBytes(current.lagBytes)} behind`}` : "";
    if (bar) {
      if (!started) bar.start(Math.max(total, 1), done, { state: job.state, move });
      started = true;
      bar.setTotal(Math.max(total, 1));
      bar.update(done, { state: job.state, move });
    } else if (move && move !== lastMove) {
      out.line(`rebalance job ${jobId}: ${done}/${total} tasks; moving ${move}`);
    }
    lastMove = move;
    for (const problem of health?.problems ?? []) {
      if (reported.has(problem)) continue;
      reported.add(problem);
      // Printed past the bar, so it stays on screen.
      bar?.stop();
      out.line(`STALLED: ${problem}`);
      started = false;
    }
    if (["finished", "failed", "cancelled"].includes(job.state)) {
      bar?.stop();
      if (!bar) out.line(`rebalance job ${jobId}: ${job.state} (${done}/${total} tasks)`);
      return job;
    }
    if (options.signal?.aborted) {
      bar?.stop();
      return job;
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 1000));
  }
}
