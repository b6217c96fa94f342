/** `tenantctl complete <tenant|--batch file|--all>`: close the rollback window and remove the rows left behind. */
import type { Command } from "commander";
import { completeTenant, type MoveReport } from "../engine.js";
import { type CommonFlags, moveOptions, positive, runWave, tenantRefs } from "../run.js";
import { Databases } from "../context.js";
import { listMoves } from "../state.js";
import { withTenantLock } from "./move.js";

export function register(program: Command): void {
  program
    .command("complete [tenant]")
    .description("end a move's rollback window: drop its streams, delete the tenant's rows where it no longer lives (in batches), keep it fenced there")
    .option("--batch <file>", "tenant ids or codes, one a line")
    .option("--all", "every move in its rollback window or reversed")
    .option("--concurrency <n>", "tenants at once", positive("--concurrency"), 4)
    .option("--dry-run", "print what would be deleted, change nothing")
    .action(async (ref: string | undefined, flags: Pick<CommonFlags, "dryRun"> & { batch?: string; all?: boolean; concurrency: number }) => {
      const probe = new Databases(process.env);
      let refs: string[];
      try {
        refs = flags.all && ref === undefined && flags.batch === undefined
          ? (await listMoves(await probe.home(), false)).filter((m) => m.phase === "rollback_window" || m.phase === "reversed").map((m) => m.tenant_id)
          : await tenantRefs(probe, ref, flags);
      } finally {
        await probe.close();
      }
      if (refs.length === 0) {
        console.log("no move in its rollback window");
        return;
      }
      await runWave<MoveReport>("complete", { dryRun: flags.dryRun ?? false }, refs, flags.concurrency, flags, (dbs, tenant, output, stop) =>
        withTenantLock(dbs, tenant, () => completeTenant(dbs, tenant, { ...moveOptions({ quietTimeout: 2000, cutoverAttempts: 1, lagChanges: 1, ...flags }, output, stop) })),
        (results) => [`${results.filter((r) => r.outcome === "completed").length} completed, ${results.filter((r) => r.outcome === "already").length} already completed`]);
    });
}
