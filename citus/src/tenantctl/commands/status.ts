/**
 * `tenantctl status`: every move not completed, with its phase, for how long, and how far its stream is behind; then
 * the tenantctl runs left recorded as running by a process that is gone (killed, its terminal closed).
 */
import type { Command } from "commander";
import { abandonedOperations, describeAbandoned } from "../../shardctl/operations.js";
import { Databases, out } from "../context.js";
import { listMoves } from "../state.js";
import { slotLag } from "../stream.js";

export function register(program: Command): void {
  program
    .command("status")
    .description("moves in flight and in their rollback window: phase, since when, stream lag, last error")
    .option("--all", "completed moves too")
    .option("--json")
    .action(async (flags: { all?: boolean; json?: boolean }) => {
      const dbs = new Databases(process.env);
      try {
        const moves = await listMoves(await dbs.home(), flags.all ?? false);
        const rows = [];
        for (const m of moves) {
          // The stream that matters now: forward until the switch, then the reverse one holding the way back.
          const forwardLive = m.direction === "forward" && ["copying", "streaming", "cutover"].includes(m.phase);
          const slot = forwardLive ? m.slot : m.phase === "rollback_window" || m.direction === "reverse" ? m.reverse_slot : null;
          const where = forwardLive ? m.source : m.target;
          let lag: number | null = null;
          if (slot && m.phase !== "completed" && m.phase !== "reversed") lag = await slotLag(await dbs.get(where), slot).catch(() => null);
          rows.push({
            tenant: m.tenant_id,
            code: m.code,
            direction: m.direction,
            from: m.direction === "forward" ? m.source : m.target,
            to: m.direction === "forward" ? m.target : m.source,
            phase: m.phase,
            since: m.phase_at.toISOString(),
            lagBytes: lag,
            cutoverMs: m.cutover_ms,
            rowsCopied: Number(m.rows_copied),
            error: m.error,
          });
        }
        const home = await dbs.home();
        const reader = await home.pool.connect();
        const abandoned = await abandonedOperations(reader)
          .then((ops) => ops.filter((o) => o.command.startsWith("tenantctl ")))
          .finally(() => reader.release());
        if (flags.json) {
          out.line(JSON.stringify(rows, null, 2));
          // stdout stays the array of moves it has always been; the abandoned runs go beside it, where a person sees them.
          for (const line of describeAbandoned(abandoned, false)) process.stderr.write(`${line}\n`);
          return;
        }
        for (const line of describeAbandoned(abandoned, false)) out.line(line);
        if (rows.length === 0) {
          out.line("no move in flight");
          return;
        }
        out.line(`${"tenant".padEnd(24)} ${"from -> to".padEnd(18)} ${"phase".padEnd(16)} ${"since".padEnd(24)} ${"lag".padStart(12)}  window`);
        for (const r of rows) {
          out.line(
            `${(r.code ?? r.tenant).slice(0, 24).padEnd(24)} ${`${r.from} -> ${r.to}`.padEnd(18)} ${`${r.phase}${r.direction === "reverse" ? " (rev)" : ""}`.padEnd(16)} ${r.since.padEnd(24)} ${(r.lagBytes === null ? "-" : `${r.lagBytes} B`).padStart(12)}  ${r.cutoverMs === null ? "-" : `${r.cutoverMs} ms`}${r.error ? `  last error: ${r.error.slice(0, 120)}` : ""}`,
          );
        }
      } finally {
        await dbs.close();
      }
    });
}
