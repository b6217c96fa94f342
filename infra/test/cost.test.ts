import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scratchDirs } from "@platform/testing";
import type { SynthesizedStack } from "../src/app.js";
import { CostError, byComponent, estimateStack, priceTableSchema, type PriceTable, type TerraformJson } from "../src/cost/estimate.js";
import { POSTGRES_ENGINE_OVERRIDE, hermeticConfigs } from "./helpers.js";
import { synthesizedPostgresStack, synthesizedStacks } from "./synthesized.js";

// Throwaway directories, removed when this file's tests end.
const scratch = scratchDirs();
afterAll(() => scratch.removeAll());

const infraDir = join(import.meta.dirname, "..");
const table: PriceTable = priceTableSchema.parse(JSON.parse(readFileSync(join(infraDir, "pricing", "gcp-list-prices.json"), "utf8")));
const configs = hermeticConfigs();
let stacks: Record<string, SynthesizedStack>;
beforeAll(() => {
  stacks = Object.fromEntries(synthesizedStacks().map((s) => [s.name, s]));
});
const json = (env: string) => stacks[env]!.json as unknown as TerraformJson;

describe("the price table", () => {
  it("is dated and names its sources", () => {
    expect(new Date(table.asOf).toString()).not.toBe("Invalid Date");
    for (const source of Object.values(table.sources)) expect(source).toMatch(/^https:\/\/cloud\.google\.com\//);
  });

  it("prices the region of every environment", () => {
    for (const config of configs) expect(Object.keys(table.regions)).toContain(config.gcp.region);
  });
});

describe("pnpm cost", () => {
  it("prices the postgres engine's Cloud SQL from its tier and disk, twice over where it is regional, and its CA by tier", () => {
    const config = hermeticConfigs(POSTGRES_ENGINE_OVERRIDE).find((c) => c.name === "production")!;
    const stack = synthesizedPostgresStack().json as unknown as TerraformJson;
    const sql = table.regions[config.gcp.region]!.cloudSql;
    const [, vcpus, memoryMb] = /^db-custom-(\d+)-(\d+)$/.exec(config.database.cloudSql.tier)!;
    const zonal = (Number(vcpus) * sql.vcpuPerHour + (Number(memoryMb) / 1024) * sql.memoryGbPerHour) * table.hoursPerMonth + config.database.cloudSql.diskGb * sql.ssdGbPerMonth;
    const estimate = estimateStack(stack, table);
    const line = estimate.lines.find((l) => l.address.startsWith("google_sql_database_instance."))!;
    expect(config.database.cloudSql.highAvailability).toBe(true);
    expect(line.monthly.min).toBeCloseTo(2 * zonal, 6);
    expect(line.what).toMatch(/regional/);
    // The same instance zonal costs half: HA is what doubles it.
    const zonalStack = structuredClone(stack) as { resource: Record<string, Record<string, { settings: { availability_type: string } }>> };
    for (const r of Object.values(zonalStack.resource.google_sql_database_instance!)) r.settings.availability_type = "ZONAL";
    expect(estimateStack(zonalStack as unknown as TerraformJson, table).lines.find((l) => l.address === line.address)!.monthly.min).toBeCloseTo(zonal, 6);
    expect(estimate.lines.find((l) => l.address.startsWith("google_privateca_certificate_authority."))!.monthly.min).toBe(table.global.certificateAuthorityPerMonth.DEVOPS);
    expect(estimate.usageBased.some((u) => u.startsWith(`${line.address}: Cloud SQL backups`))).toBe(true);
    // No Citus VM remains to price.
    expect(estimate.lines.filter((l) => l.component.startsWith("Citus") || l.component.startsWith("Failover"))).toEqual([]);
  });

  it("prices every Citus VM from its machine type: vCPUs and memory at the family's rates, plus the boot disk", () => {
    const config = configs.find((c) => c.name === "production")!;
    const estimate = estimateStack(json("production"), table);
    const region = table.regions[config.gcp.region]!;
    const [, family, kind, vcpus] = /^(\w+)-(standard|highmem)-(\d+)$/.exec(config.citus.worker.machineType)!;
    const memory = Number(vcpus) * (kind === "highmem" ? 8 : 4);
    const hourly = Number(vcpus) * region.machineFamilies[family!]!.vcpuPerHour + memory * region.machineFamilies[family!]!.memoryGbPerHour;
    const workerVms = estimate.lines.filter((l) => l.address.startsWith("google_compute_instance.") && l.what.startsWith(config.citus.worker.machineType));
    // Each worker and, in production, its standby.
    expect(workerVms).toHaveLength(config.citus.workers * 2);
    const boot = workerVms[0]!.what.match(/(\d+) GB (\S+) boot disk/)!;
    expect(workerVms[0]!.monthly.min).toBeCloseTo(hourly * table.hoursPerMonth + Number(boot[1]) * region.diskGbPerMonth[boot[2]!]!, 6);
  });

  it("prices what failover adds: the three etcd VMs (e2-small) with their disks and the coordinator load balancer's forwarding rule", () => {
    for (const config of configs) {
      const estimate = estimateStack(json(config.name), table);
      const region = table.regions[config.gcp.region]!;
      const failover = estimate.lines.filter((l) => l.component === "Failover (etcd, coordinator load balancer)");
      const vms = failover.filter((l) => l.address.startsWith("google_compute_instance."));
      expect(vms, config.name).toHaveLength(3);
      // e2-small: 0.5 vCPU and 2 GB at the e2 rates, plus its 10 GB pd-balanced boot disk.
      const e2 = region.machineFamilies.e2!;
      expect(vms[0]!.what).toBe(`${config.citus.etcd.machineType}, 10 GB pd-balanced boot disk`);
      expect(vms[0]!.monthly.min).toBeCloseTo((0.5 * e2.vcpuPerHour + 2 * e2.memoryGbPerHour) * table.hoursPerMonth + 10 * region.diskGbPerMonth["pd-balanced"]!, 6);
      expect(failover.filter((l) => l.address.startsWith("google_compute_disk."))).toHaveLength(3);
      const rule = failover.filter((l) => l.address.startsWith("google_compute_forwarding_rule."));
      expect(rule).toHaveLength(1);
      expect(rule[0]!.monthly.min).toBeCloseTo(table.global.forwardingRulePerHour * table.hoursPerMonth, 6);
      expect(estimate.usageBased).toContain("the coordinator load balancer's data processing (per GB)");
    }
  });

  it("gives the GKE node pool a range from its autoscaling bounds over the cluster's zones", () => {
    const config = configs.find((c) => c.name === "staging")!;
    const pool = estimateStack(json("staging"), table).lines.find((l) => l.address.startsWith("google_container_node_pool."))!;
    const zones = config.gcp.zones.length;
    expect(pool.what).toContain(`${config.gke.nodePool.minNodesPerZone * zones}-${config.gke.nodePool.maxNodesPerZone * zones} x ${config.gke.nodePool.machineType}`);
    expect(pool.monthly.max / pool.monthly.min).toBeCloseTo(config.gke.nodePool.maxNodesPerZone / config.gke.nodePool.minNodesPerZone, 6);
  });

  it("totals the lines, and production costs more than staging, staging more than dev", () => {
    const totals = ["dev", "staging", "production"].map((env) => {
      const e = estimateStack(json(env), table);
      const sum = e.lines.reduce((n, l) => n + l.monthly.min, 0);
      expect(e.total.min).toBeCloseTo(sum, 6);
      expect([...byComponent(e.lines).values()].reduce((n, r) => n + r.max, 0)).toBeCloseTo(e.total.max, 6);
      return e.total.min;
    });
    expect(totals[0]).toBeLessThan(totals[1]!);
    expect(totals[1]).toBeLessThan(totals[2]!);
  });

  it("refuses a resource type it has no rule for, naming it, instead of leaving it out", () => {
    const stack = structuredClone(json("dev")) as { resource: Record<string, Record<string, Record<string, unknown>>> };
    stack.resource.google_alloydb_cluster = { Db: { cluster_id: "platform" } };
    expect(() => estimateStack(stack, table)).toThrow(/no price rule for google_alloydb_cluster\.Db/);
    // A Cloud SQL tier it cannot read is refused too, not priced at nothing.
    stack.resource = { ...json("dev").resource, google_sql_database_instance: { Db: { settings: { tier: "db-perf-optimized-N-8" } } } } as typeof stack.resource;
    expect(() => estimateStack(stack, table)).toThrow(/google_sql_database_instance\.Db: no price for Cloud SQL tier "db-perf-optimized-N-8"/);
  });

  it("refuses a machine type or a region the table has no price for", () => {
    const stack = structuredClone(json("dev")) as { provider: { google: { region: string }[] }; resource: Record<string, Record<string, Record<string, unknown>>> };
    const [name, vm] = Object.entries(stack.resource.google_compute_instance!)[0]!;
    vm.machine_type = "c3-standard-8";
    expect(() => estimateStack(stack, table)).toThrow(new RegExp(`google_compute_instance\\.${name}: no price for machine type "c3-standard-8"`));
    stack.provider.google[0]!.region = "asia-south2";
    expect(() => estimateStack(stack, table)).toThrow(CostError);
    expect(() => estimateStack(stack, table)).toThrow(/no prices for region asia-south2/);
  });

  it("runs from the command line on a synthesized stack, and says what to do when there is none", async () => {
    const dir = scratch.make("cost-");
    const file = join(dir, "cdk.tf.json");
    writeFileSync(file, JSON.stringify(stacks.dev!.json));
    const run = (...args: string[]) =>
      promisify(execFile)(join(infraDir, "node_modules", ".bin", "tsx"), [join(infraDir, "src", "cost", "cli.ts"), ...args]).then(
        (r) => ({ code: 0, out: r.stdout + r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
      );
    const ok = await run("dev", "--stack", file, "--json");
    expect(ok.code, ok.out).toBe(0);
    const parsed = JSON.parse(ok.out) as { asOf: string; total: { min: number }; lines: unknown[] };
    expect(parsed.asOf).toBe(table.asOf);
    expect(parsed.total.min).toBeCloseTo(estimateStack(json("dev"), table).total.min, 6);
    const missing = await run("dev", "--stack", join(dir, "none.json"));
    expect(missing.code).toBe(2);
    expect(missing.out).toMatch(/does not exist: run `pnpm synth` first/);
    const unknown = await run("qa");
    expect(unknown.code).toBe(2);
    expect(unknown.out).toMatch(/unknown environment "qa"/);
  });
});
