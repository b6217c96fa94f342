/** `tenantctl reverse <tenant|--batch file>`: back to where it came from, within the rollback window. */
import type { Command } from "commander";
import { type MoveReport, reverseTenant } from "../engine.js";
import { type CommonFlags, cutoverOptions, moveOptions, positive, runWave, tenantRefs } from "../run.js";
import { Databases } from "../context.js";
import { summarize, withTenantLock } from "./move.js";

export function register(program: Command): void {
  cutoverOptions(
    program
      .command("reverse [tenant]")
      .description("move a tenant back to the database it came from (its move must be in its rollback window), or resume a reverse")
      .option("--batch <file>", "tenant ids or codes, one a line")
      .option("--concurrency <n>", "tenants at once", positive("--concurrency"), 4),
  ).action(async (ref: string | undefined, flags: CommonFlags & { batch?: string; concurrency: number }) => {
    const probe = new Databases(process.env);
    let refs: string[];
    try {
      refs = await tenantRefs(probe, ref, flags);
    } finally {
      await probe.close();
    }
    await runWave<MoveReport>("reverse", { dryRun: flags.dryRun ?? false }, refs, flags.concurrency, flags, (dbs, tenant, output, stop) =>
      withTenantLock(dbs, tenant, () => reverseTenant(dbs, tenant, moveOptions(flags, output, stop))), summarize);
  });
}
