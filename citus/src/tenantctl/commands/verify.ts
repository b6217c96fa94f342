/** `tenantctl verify <tenant|--batch file|--all>`: the VDiff, usable at any time. Exit 5 when two sides differ. */
import type { Command } from "commander";
import { Databases, TenantctlError } from "../context.js";
import { diffClean } from "../copy.js";
import { verifyTenant } from "../engine.js";
import { positive, runWave, tenantRefs } from "../run.js";
import { listMoves } from "../state.js";

export function register(program: Command): void {
  program
    .command("verify [tenant]")
    .description("row counts and content checksums of the tenant's rows per table, where it lives and in another database, with the rows that differ")
    .option("--against <database>", "the database to compare with (default: the other side of its last move)")
    .option("--batch <file>", "tenant ids or codes, one a line")
    .option("--all", "every tenant with a move not completed")
    .option("--concurrency <n>", "tenants at once", positive("--concurrency"), 4)
    .action(async (ref: string | undefined, flags: { against?: string; batch?: string; all?: boolean; concurrency: number }) => {
      const probe = new Databases(process.env);
      let refs: string[];
      try {
        refs = flags.all && ref === undefined && flags.batch === undefined ? (await listMoves(await probe.home(), false)).map((m) => m.tenant_id) : await tenantRefs(probe, ref, flags);
      } finally {
        await probe.close();
      }
      await runWave("verify", { against: flags.against ?? null }, refs, flags.concurrency, {}, async (dbs, tenant, output) => {
        const diff = await verifyTenant(dbs, tenant, flags.against, output);
        if (!diffClean(diff)) {
          throw new TenantctlError(`tenant ${tenant.code}: the two sides differ (above). While a move streams, or in its rollback window before tenantctl sync, the side that does not hold the tenant trails it`, 5);
        }
        output.line(`tenant ${tenant.code}: no difference`);
        return tenant.id;
      }, (results) => [`${results.length} verified without difference`]);
    });
}
