/** `tenantctl move <tenant|--batch file|--all> --to <database>`: copy, stream, verify, cut over; resumable. */
import type { Command } from "commander";
import { type MoveReport, moveTenant } from "../engine.js";
import { type CommonFlags, cutoverOptions, moveOptions, percentile, positive, runWave, tenantRefs } from "../run.js";
import { Databases, TenantctlError } from "../context.js";
import { DATABASE_NAME_PATTERN } from "../../databases.js";
import { lockTenant } from "../state.js";

export function register(program: Command): void {
  cutoverOptions(
    program
      .command("move [tenant]")
      .description("move a tenant's rows (or a wave of tenants) to another database online, or resume a move that stopped")
      .requiredOption("--to <database>", "the database to move to: a name from DATABASE_URL_<NAME>, e.g. citus")
      .option("--batch <file>", "tenant ids or codes, one a line")
      .option("--all", "every tenant in the registry not already there")
      .option("--concurrency <n>", "tenants moved at once", positive("--concurrency"), 4),
  ).action(async (ref: string | undefined, flags: CommonFlags & { to: string; batch?: string; all?: boolean; concurrency: number }) => {
    if (!DATABASE_NAME_PATTERN.test(flags.to)) throw new TenantctlError(`--to "${flags.to}" is not a database name (lowercase, as in DATABASE_URL_<NAME>)`, 2);
    const probe = new Databases(process.env);
    let refs: string[];
    try {
      await probe.get(flags.to);
      refs = await tenantRefs(probe, ref, flags);
    } finally {
      await probe.close();
    }
    await runWave<MoveReport>(
      "move",
      { to: flags.to, concurrency: flags.concurrency, dryRun: flags.dryRun ?? false },
      refs,
      flags.concurrency,
      flags,
      (dbs, tenant, output, stop) => withTenantLock(dbs, tenant, () => moveTenant(dbs, tenant, flags.to, moveOptions(flags, output, stop))),
      summarize,
    );
  });
}

/** Holds the tenant's lock (refusing a second run on it) while `work` runs. */
export async function withTenantLock<R>(dbs: Databases, tenant: { id: string; code: string }, work: () => Promise<R>): Promise<R> {
  const lock = await lockTenant(await dbs.home(), tenant.id, tenant.code);
  try {
    return await work();
  } finally {
    await lock.end().catch(() => {});
  }
}

export function summarize(results: MoveReport[]): string[] {
  const moved = results.filter((r) => r.outcome === "moved" || r.outcome === "reversed");
  const windows = moved.map((r) => r.cutoverMs).filter((w): w is number => typeof w === "number");
  const copied = moved.reduce((n, r) => n + (r.rowsCopied ?? 0), 0);
  const copyMs = moved.reduce((n, r) => n + (r.copyMs ?? 0), 0);
  const lines = [`${moved.length} moved, ${results.filter((r) => r.outcome === "already").length} already there, ${results.filter((r) => r.outcome === "dry-run").length} planned (dry run)`];
  if (windows.length) lines.push(`cutover windows: p50 ${percentile(windows, 50)} ms, p99 ${percentile(windows, 99)} ms, max ${Math.max(...windows)} ms`);
  if (copied) lines.push(`copied ${copied} rows, ${Math.round((copied * 1000) / Math.max(copyMs, 1))} rows/s per tenant copy`);
  return lines;
}
