/**
 * `pnpm capacity --tenants <n> [--data-mb-per-tenant m] [--workers w]`: what a tenant count needs, from the same
 * sizing rules the environment config derives (config/src/sizing.ts), so the answer matches what `pnpm synth` builds.
 */
import { Command, InvalidArgumentError } from "commander";
import { deriveSizing } from "@platform/config";

const positive = (name: string) => (v: string) => {
  const n = Number(v.replace(/_/g, ""));
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number (got "${v}")`);
  return n;
};

const program = new Command()
  .name("capacity")
  .requiredOption("--tenants <n>", "tenants to size for", positive("--tenants"))
  .option("--data-mb-per-tenant <mb>", "average data per tenant", positive("--data-mb-per-tenant"), 20)
  .option("--workers <n>", "override the worker count", positive("--workers"))
  .option("--json")
  .action((o: { tenants: number; dataMbPerTenant: number; workers?: number; json?: boolean }) => {
    if (!Number.isInteger(o.tenants)) throw new InvalidArgumentError("--tenants must be a whole number");
    const s = deriveSizing(o.tenants, o.dataMbPerTenant, o.workers);
    const totalDataGb = (o.tenants * o.dataMbPerTenant) / 1024;
    if (o.json) {
      console.log(JSON.stringify({ tenants: o.tenants, dataMbPerTenant: o.dataMbPerTenant, totalDataGb, ...s }, null, 2));
      return;
    }
    console.log(`${o.tenants.toLocaleString()} tenants x ${o.dataMbPerTenant} MB = ${totalDataGb.toFixed(0)} GB of tenant data (tier ${s.tier})`);
    console.log(`Citus: coordinator ${s.citus.coordinator.machineType} (${s.citus.coordinator.dataDiskGb} GB), ${s.citus.workers} workers ${s.citus.worker.machineType} with ${s.citus.worker.dataDiskGb} GB each`);
    console.log(`shards: ${s.citus.shardCount} (about ${Math.round(s.citus.shardCount / s.citus.workers)} shard groups per worker, ${Math.round(o.tenants / s.citus.shardCount).toLocaleString()} tenants per group)`);
    console.log(`GKE pool: ${s.gkeNodePool.machineType}, ${s.gkeNodePool.minNodesPerZone}-${s.gkeNodePool.maxNodesPerZone} nodes per zone; Memorystore ${s.redisMemorySizeGb} GB`);
    console.log("set these for an environment with tenants.target in config/src/environments.ts (or PLATFORM_<ENV>_TENANT_TARGET)");
  });

// Bad options are bad input (exit 2), not a crash; help and version exit 0.
program.exitOverride();
try {
  await program.parseAsync();
} catch (error) {
  const code = (error as { code?: string }).code;
  if (code === "commander.helpDisplayed" || code === "commander.version" || code === "commander.help") process.exit(0);
  if (code?.startsWith("commander.")) process.exit(2);
  console.error(`capacity: ${(error as Error).message}`);
  process.exit(2);
}
