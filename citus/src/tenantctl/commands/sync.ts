/** `tenantctl sync <tenant|--batch file|--all>`: apply the reverse stream to the side a tenant left, now. */
import type { Command } from "commander";
import { syncTenant } from "../engine.js";
import { moveOptions, positive, runWave, tenantRefs } from "../run.js";
import { Databases } from "../context.js";
import { listMoves } from "../state.js";
import { withTenantLock } from "./move.js";

export function register(program: Command): void {
  program
    .command("sync [tenant]")
    .description("during the rollback window: apply the reverse stream now, so the side the tenant left is current")
    .option("--batch <file>", "tenant ids or codes, one a line")
    .option("--all", "every move in its rollback window")
    .option("--concurrency <n>", "tenants at once", positive("--concurrency"), 4)
    .option("--dry-run", "say what would be applied, change nothing")
    .action(async (ref: string | undefined, flags: { dryRun?: boolean; batch?: string; all?: boolean; concurrency: number }) => {
      const probe = new Databases(process.env);
      let refs: string[];
      try {
        refs = flags.all && ref === undefined && flags.batch === undefined
          ? (await listMoves(await probe.home(), false)).filter((m) => m.phase === "rollback_window").map((m) => m.tenant_id)
          : await tenantRefs(probe, ref, flags);
      } finally {
        await probe.close();
      }
      if (refs.length === 0) {
        console.log("no move in its rollback window");
        return;
      }
      await runWave("sync", { dryRun: flags.dryRun ?? false }, refs, flags.concurrency, flags, (dbs, tenant, output, stop) =>
        withTenantLock(dbs, tenant, () => syncTenant(dbs, tenant, moveOptions({ quietTimeout: 2000, cutoverAttempts: 1, lagChanges: 1, ...flags }, output, stop))),
        (results) => [`${results.length} synced, ${results.reduce((n, r) => n + r.changes, 0)} changes applied`]);
    });
}
