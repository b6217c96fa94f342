/**
 * `pnpm capacity --tenants <n> [--data-mb-per-tenant m] [--workers w] [--qps r [--env e]]`: what a tenant count
 * needs, from the same sizing rules the environment config derives (config/src/sizing.ts), so the answer matches
 * what `pnpm synth` builds. With --qps, whether an environment's replicas, pools and nodes carry that peak rate
 * (config/src/throughput.ts: the same pool and HPA rules the charts apply).
 */
import { Command, InvalidArgumentError } from "commander";
import { main } from "@platform/cli";
import { DEFAULT_THROUGHPUT, ENVIRONMENT_NAMES, deriveSizing, isEnvironmentName, loadEnvironment, planForQps, tenantServicePoolSize, type EnvironmentConfig } from "@platform/config";

const positive = (name: string) => (v: string) => {
  const n = Number(v.replace(/_/g, ""));
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number (got "${v}")`);
  return n;
};

interface Options {
  tenants: number;
  dataMbPerTenant: number;
  workers?: number;
  qps?: number;
  env: string;
  serviceRpsPerCpu: number;
  gatewayRpsPerCpu: number;
  dbMs: number;
  json?: boolean;
}

const program = new Command()
  .name("capacity")
  .requiredOption("--tenants <n>", "tenants to size for", positive("--tenants"))
  .option("--data-mb-per-tenant <mb>", "average data per tenant", positive("--data-mb-per-tenant"), 20)
  .option("--workers <n>", "override the worker count", positive("--workers"))
  .option("--qps <n>", "peak requests a second through the gateway: check an environment against it", positive("--qps"))
  .option("--env <name>", `environment whose replicas, pools and nodes --qps is checked against (${ENVIRONMENT_NAMES.join(", ")})`, "production")
  .option("--service-rps-per-cpu <n>", "requests a second one tenant-service vCPU sustains", positive("--service-rps-per-cpu"), DEFAULT_THROUGHPUT.serviceRpsPerCpu)
  .option("--gateway-rps-per-cpu <n>", "requests a second one Kong vCPU sustains", positive("--gateway-rps-per-cpu"), DEFAULT_THROUGHPUT.gatewayRpsPerCpu)
  .option("--db-ms <n>", "milliseconds a request holds a database connection", positive("--db-ms"), DEFAULT_THROUGHPUT.dbMsPerRequest)
  .option("--json")
  .action((o: Options) => {
    if (!Number.isInteger(o.tenants)) throw new Error(`--tenants must be a whole number (got ${o.tenants})`);
    if (!isEnvironmentName(o.env)) throw new Error(`--env must be one of ${ENVIRONMENT_NAMES.join(", ")} (got "${o.env}")`);
    const s = deriveSizing(o.tenants, o.dataMbPerTenant, o.workers);
    const totalDataGb = (o.tenants * o.dataMbPerTenant) / 1024;
    let throughput: ReturnType<typeof planForQps> | undefined;
    let config: EnvironmentConfig | undefined;
    if (o.qps !== undefined) {
      const loaded = loadEnvironment(o.env);
      // The environment as it would be at this tenant count: its workers follow the sizing above.
      config = { ...loaded, citus: { ...loaded.citus, workers: s.citus.workers } };
      throughput = planForQps(config, o.qps, { serviceRpsPerCpu: o.serviceRpsPerCpu, gatewayRpsPerCpu: o.gatewayRpsPerCpu, dbMsPerRequest: o.dbMs });
    }
    if (o.json) {
      console.log(JSON.stringify({ tenants: o.tenants, dataMbPerTenant: o.dataMbPerTenant, totalDataGb, ...s, ...(throughput ? { throughput: { environment: o.env, ...throughput } } : {}) }, null, 2));
      if (throughput?.checks.some((c) => !c.ok)) process.exitCode = 1;
      return;
    }
    console.log(`${o.tenants.toLocaleString()} tenants x ${o.dataMbPerTenant} MB = ${totalDataGb.toFixed(0)} GB of tenant data (tier ${s.tier})`);
    console.log(`Citus: coordinator ${s.citus.coordinator.machineType} (${s.citus.coordinator.dataDiskGb} GB), ${s.citus.workers} workers ${s.citus.worker.machineType} with ${s.citus.worker.dataDiskGb} GB each`);
    console.log(`shards: ${s.citus.shardCount} (about ${Math.round(s.citus.shardCount / s.citus.workers)} shard groups per worker, ${Math.round(o.tenants / s.citus.shardCount).toLocaleString()} tenants per group)`);
    console.log(`GKE pool: ${s.gkeNodePool.machineType}, ${s.gkeNodePool.minNodesPerZone}-${s.gkeNodePool.maxNodesPerZone} nodes per zone; Memorystore ${s.redisMemorySizeGb} GB`);
    console.log("set these for an environment with tenants.target in config/src/environments.ts (or PLATFORM_<ENV>_TENANT_TARGET)");
    if (!throughput || !config) return;
    console.log(
      `\n${o.qps!.toLocaleString()} requests/s against ${o.env} (assuming ${o.serviceRpsPerCpu}/s per service vCPU, ${o.gatewayRpsPerCpu}/s per Kong vCPU, ${o.dbMs} ms per request on a connection):`,
    );
    console.log(`  tenant-service replicas ${throughput.serviceReplicas}, Kong replicas ${throughput.gatewayReplicas}, pool ${tenantServicePoolSize(config)} per replica`);
    console.log(`  database connections in use ${throughput.busyConnections}; about ${throughput.perWorkerQps.toLocaleString()} requests/s per Citus worker if tenants spread evenly`);
    for (const c of throughput.checks) console.log(`  ${c.ok ? "ok  " : "FAIL"} ${c.name}: needs ${c.needed}, has ${c.available}${c.ok ? "" : `; ${c.advice}`}`);
    if (throughput.checks.some((c) => !c.ok)) process.exitCode = 1;
  });

// Everything that goes wrong here is bad input (exit 2); help and version exit 0.
await main("capacity", program, 2);
