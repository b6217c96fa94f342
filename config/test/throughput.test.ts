import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { scratchDirs } from "@platform/testing";
import { DEFAULT_THROUGHPUT, ENVIRONMENT_NAMES, HPA_TARGET_CPU_PERCENT, RETIRED_PER_POOL_CONNECTION, SERVICE_CONNECTION_SHARE, cpuCores, loadEnvironment, machineVcpus, planForQps, retiredConnectionBudget, tenantServicePoolSize } from "../src/index.js";

// Throwaway directories, removed when this file's tests end.
const scratch = scratchDirs();
afterAll(() => scratch.removeAll());

const empty = join(scratch.make("throughput-"), "empty.json");
writeFileSync(empty, "{}");
const production = loadEnvironment("production", { env: {}, overrideFile: empty });
const dev = loadEnvironment("dev", { env: {}, overrideFile: empty });
const check = (plan: ReturnType<typeof planForQps>, prefix: string) => plan.checks.find((c) => c.name.startsWith(prefix))!;

describe("capacity --qps (planForQps)", () => {
  it("keeps every replica's pool together within the coordinator's share of connections", () => {
    for (const config of [dev, production]) {
      const pool = tenantServicePoolSize(config);
      expect(pool).toBeGreaterThanOrEqual(2);
      expect(pool * config.kubernetes.workloads.tenantService.maxReplicas).toBeLessThanOrEqual(config.citus.coordinatorMaxConnections * SERVICE_CONNECTION_SHARE);
    }
  });

  it("keeps the pools and the sessions they may close while still busy (a lost Citus worker) within a quarter more", () => {
    for (const config of ENVIRONMENT_NAMES.map((name) => loadEnvironment(name, { env: {}, overrideFile: empty }))) {
      const pool = tenantServicePoolSize(config);
      const sessions = (pool + retiredConnectionBudget(pool)) * config.kubernetes.workloads.tenantService.maxReplicas;
      expect(sessions, config.name).toBeLessThanOrEqual(config.citus.coordinatorMaxConnections * SERVICE_CONNECTION_SHARE * (1 + RETIRED_PER_POOL_CONNECTION));
    }
  });

  it("sizes tenant-service replicas so each pod runs at the HPA target of its CPU request", () => {
    const w = production.kubernetes.workloads.tenantService;
    const perPod = DEFAULT_THROUGHPUT.serviceRpsPerCpu * cpuCores(w.cpuRequest) * (HPA_TARGET_CPU_PERCENT / 100);
    const plan = planForQps(production, 20_000);
    expect(plan.serviceReplicas).toBe(Math.ceil(20_000 / perPod));
    expect((plan.serviceReplicas - 1) * perPod).toBeLessThan(20_000);
    // Never fewer than the HPA's floor.
    expect(planForQps(production, 1).serviceReplicas).toBe(w.minReplicas);
  });

  it("counts connections in use by Little's law and passes a rate the production config carries", () => {
    const plan = planForQps(production, 20_000, { ...DEFAULT_THROUGHPUT, dbMsPerRequest: 5 });
    expect(plan.busyConnections).toBe(100);
    expect(plan.checks.every((c) => c.ok)).toBe(true);
    expect(plan.perWorkerQps).toBe(Math.ceil(20_000 / production.citus.workers));
  });

  it("fails the replica check with the config field to raise when the HPA ceiling is too low", () => {
    const plan = planForQps(dev, 5_000);
    const replicas = check(plan, "tenant-service replicas");
    expect(replicas.ok).toBe(false);
    expect(replicas.advice).toBe(`raise kubernetes.workloads.tenantService.maxReplicas to ${plan.serviceReplicas} (the pool per replica shrinks to keep within the coordinator's connections)`);
  });

  it("points at PgBouncer when the rate needs more connections than the coordinator allows", () => {
    // 200,000 requests a second holding a connection 10 ms each: 2,000 busy connections against 400.
    const plan = planForQps(production, 200_000, { ...DEFAULT_THROUGHPUT, dbMsPerRequest: 10 });
    const connections = check(plan, "database connections");
    expect(connections.needed).toBe(2_000);
    expect(connections.ok).toBe(false);
    expect(connections.advice).toMatch(/PgBouncer/);
  });

  it("rejects a rate that is not positive and machine types it cannot read", () => {
    expect(() => planForQps(production, 0)).toThrow(/--qps must be a positive number/);
    expect(machineVcpus("n2-standard-16")).toBe(16);
    expect(machineVcpus("e2-medium")).toBe(2);
    expect(() => machineVcpus("custom")).toThrow(/cannot tell the vCPUs/);
    expect(() => cpuCores("lots")).toThrow(/not a CPU quantity/);
  });
});
