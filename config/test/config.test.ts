import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { scratchDirs } from "@platform/testing";
import { ConfigError, ENVIRONMENT_NAMES, deriveSizing, loadAllEnvironments, loadEnvironment, platformNames, shardCountFor, workersFor } from "../src/index.js";

// Throwaway directories, removed when this file's tests end.
const scratch = scratchDirs();
afterAll(() => scratch.removeAll());

function overrideFile(content: unknown): string {
  const dir = scratch.make("platform-config-");
  const path = join(dir, "platform.config.json");
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
}

/** No overrides: an empty file, so an operator's own platform.config.json at the repo root never leaks into tests. */
const EMPTY = overrideFile({});
const clean = { env: {}, overrideFile: EMPTY } as const;
const load = (name: string, env: Record<string, string> = {}) => loadEnvironment(name, { env, overrideFile: EMPTY });

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error("expected a ConfigError");
}

describe("sizing follows the tenant target (infra seed's scaling table)", () => {
  it.each([
    [1, 3],
    [10_000, 3],
    [10_001, 6],
    [55_000, 8],
    [100_000, 10],
    [100_001, 20],
    [1_000_000, 20],
    [3_200_000, 64],
  ])("%i tenants -> %i Citus workers", (tenants, workers) => {
    expect(workersFor(tenants)).toBe(workers);
  });

  it("gives about 16 shard groups per worker, a power of two, never under 32", () => {
    expect(shardCountFor(3)).toBe(64);
    expect(shardCountFor(20)).toBe(512);
    expect(shardCountFor(64)).toBe(1024);
    expect(shardCountFor(1)).toBe(32);
  });

  it("sizes worker disks for their share of the data with headroom", () => {
    const s = deriveSizing(1_000_000, 20);
    // 1M tenants x 20 MB / 20 workers = 977 GB each, x2 headroom = 1,953, rounded up to 50 GB.
    expect(s.citus.worker.dataDiskGb).toBe(2_000);
    expect(s.tier).toBe("large");
  });

  it("rejects a tenant target that is not a positive whole number", () => {
    expect(() => deriveSizing(0, 20)).toThrow(/positive whole number/);
  });
});

describe("environment definitions", () => {
  it("loads dev, staging and production with no overrides", () => {
    const all = loadAllEnvironments(clean);
    expect(all.map((c) => c.name)).toEqual([...ENVIRONMENT_NAMES]);
  });

  it("derives production sizing from its 1M tenant target", () => {
    const production = load("production");
    expect(production.tenants.target).toBe(1_000_000);
    expect(production.citus.workers).toBe(20);
    expect(production.citus.shardCount).toBe(512);
    expect(production.citus.standby).toBe(true);
    expect(production.redis.tier).toBe("STANDARD_HA");
  });

  it("keeps an explicit choice of the definition over the derived default (dev's small machines)", () => {
    expect(load("dev").citus.worker.machineType).toBe("e2-standard-4");
    expect(load("dev").citus.workers).toBe(3);
  });

  it("gives each environment its own address block and prefix", () => {
    const all = loadAllEnvironments(clean);
    expect(new Set(all.map((c) => c.network.gkeNodesCidr)).size).toBe(3);
    expect(new Set(all.map((c) => c.prefix)).size).toBe(3);
  });

  it("marks the checked-in example project ids as placeholders", () => {
    expect(load("dev").gcp.placeholder).toBe(true);
    expect(load("dev", { PLATFORM_DEV_PROJECT_ID: "acme-dev-1234", PLATFORM_DEV_STATE_BUCKET: "acme-dev-state" }).gcp.placeholder).toBe(false);
  });
});

describe("operator overrides", () => {
  it("reads project id, region, zones and state bucket from PLATFORM_<ENV>_* variables", () => {
    const c = load("staging", {
      PLATFORM_STAGING_PROJECT_ID: "acme-staging-42",
      PLATFORM_STAGING_REGION: "us-central1",
      PLATFORM_STAGING_ZONES: "us-central1-a, us-central1-b,us-central1-c",
      PLATFORM_STAGING_STATE_BUCKET: "acme-staging-tfstate",
    });
    expect(c.gcp).toMatchObject({ projectId: "acme-staging-42", region: "us-central1", zones: ["us-central1-a", "us-central1-b", "us-central1-c"], stateBucket: "acme-staging-tfstate" });
  });

  it("applies one environment's variables to that environment only", () => {
    const env = { PLATFORM_PRODUCTION_PROJECT_ID: "acme-prod-1" };
    expect(loadEnvironment("production", { env, overrideFile: EMPTY }).gcp.projectId).toBe("acme-prod-1");
    expect(loadEnvironment("dev", { env, overrideFile: EMPTY }).gcp.projectId).toBe("example-saas-dev");
  });

  it("re-derives sizing when the tenant target is overridden", () => {
    const c = load("staging", { PLATFORM_STAGING_TENANT_TARGET: "100000" });
    expect(c.citus.workers).toBe(10);
    expect(c.citus.shardCount).toBe(256);
  });

  it("lets an operator fix the worker count, and derives shard count from it", () => {
    const c = load("production", { PLATFORM_PRODUCTION_CITUS_WORKERS: "24" });
    expect(c.citus.workers).toBe(24);
    expect(c.citus.shardCount).toBe(512);
  });

  it("reads a JSON override file keyed by environment, and variables win over it", () => {
    const file = overrideFile({ dev: { gcp: { projectId: "from-file-dev" }, citus: { workers: 4 } } });
    const fromFile = loadEnvironment("dev", { env: {}, overrideFile: file });
    expect(fromFile.gcp.projectId).toBe("from-file-dev");
    expect(fromFile.citus.workers).toBe(4);
    const both = loadEnvironment("dev", { env: { PLATFORM_DEV_PROJECT_ID: "from-env-dev" }, overrideFile: file });
    expect(both.gcp.projectId).toBe("from-env-dev");
  });

  it("finds the override file through PLATFORM_CONFIG", () => {
    const file = overrideFile({ production: { gcp: { projectId: "via-variable-prod" } } });
    expect(loadEnvironment("production", { env: { PLATFORM_CONFIG: file } }).gcp.projectId).toBe("via-variable-prod");
  });
});

describe("invalid configuration fails at load, naming the field and the environment", () => {
  it("names a bad project id", () => {
    const message = errorOf(() => load("production", { PLATFORM_PRODUCTION_PROJECT_ID: "Bad_Project" }));
    expect(message).toContain('environment "production"');
    expect(message).toContain("gcp.projectId");
    expect(message).toContain('"Bad_Project"');
  });

  it("names zones that do not belong to an overridden region", () => {
    const message = errorOf(() => load("dev", { PLATFORM_DEV_REGION: "us-east1" }));
    expect(message).toContain("gcp.zones.0");
    expect(message).toContain("not in region");
  });

  it("rejects overlapping address ranges", () => {
    const file = overrideFile({ staging: { network: { dataCidr: "10.64.0.0/24" } } });
    const message = errorOf(() => loadEnvironment("staging", { env: {}, overrideFile: file }));
    expect(message).toContain("network.dataCidr");
    expect(message).toContain("overlaps network.gkeNodesCidr");
  });

  it("rejects 0.0.0.0/0 as a control-plane authorized network", () => {
    const file = overrideFile({ dev: { network: { authorizedNetworks: [{ displayName: "anyone", cidrBlock: "0.0.0.0/0" }] } } });
    expect(errorOf(() => loadEnvironment("dev", { env: {}, overrideFile: file }))).toContain("network.authorizedNetworks.0.cidrBlock");
  });

  it("refuses a trusted proxy range wide enough to let clients choose their address, naming the entry", () => {
    const file = overrideFile({ production: { edge: { trustedProxyCidrs: ["130.211.0.0/22", "0.0.0.0/0"] } } });
    const message = errorOf(() => loadEnvironment("production", { env: {}, overrideFile: file }));
    expect(message).toContain("edge.trustedProxyCidrs.1");
    expect(message).toContain("lets clients choose their address");
    expect(message).toContain('"0.0.0.0/0"');
    const notACidr = overrideFile({ dev: { edge: { trustedProxyCidrs: ["35.191.0.0"] } } });
    expect(errorOf(() => loadEnvironment("dev", { env: {}, overrideFile: notACidr }))).toContain("edge.trustedProxyCidrs.0");
  });

  it("refuses a per-address minute limit below the per-second one, as Kong would", () => {
    const file = overrideFile({ staging: { edge: { perAddressLimit: { second: 500, minute: 300 } } } });
    expect(errorOf(() => loadEnvironment("staging", { env: {}, overrideFile: file }))).toContain("edge.perAddressLimit.minute");
  });

  it("refuses production without standbys or HA Redis", () => {
    const file = overrideFile({ production: { citus: { standby: false }, redis: { tier: "BASIC", readReplicas: 0 } } });
    const message = errorOf(() => loadEnvironment("production", { env: {}, overrideFile: file }));
    expect(message).toContain("citus.standby");
    expect(message).toContain("redis.tier");
  });

  it("refuses production traces on Jaeger's single writer, and keeps dev on it", () => {
    const file = overrideFile({ production: { monitoring: { traceBackend: "jaeger" } } });
    expect(errorOf(() => loadEnvironment("production", { env: {}, overrideFile: file }))).toContain("monitoring.traceBackend");
    const [dev, staging, production] = ENVIRONMENT_NAMES.map((name) => loadEnvironment(name, { env: {}, overrideFile: overrideFile({}) }));
    expect([dev!.monitoring.traceBackend, staging!.monitoring.traceBackend, production!.monitoring.traceBackend]).toEqual(["jaeger", "cloudTrace", "cloudTrace"]);
    expect(production!.kubernetes.workloads.otelCollector.minReplicas).toBeGreaterThanOrEqual(2);
  });

  it("refuses a backup lifecycle that would delete backups pgBackRest still keeps", () => {
    const file = overrideFile({ production: { backups: { maxAgeDays: 20, nearlineAfterDays: 10 } } });
    expect(errorOf(() => loadEnvironment("production", { env: {}, overrideFile: file }))).toContain("backups.maxAgeDays");
  });

  it("says which variable is not a number", () => {
    expect(errorOf(() => load("dev", { PLATFORM_DEV_CITUS_WORKERS: "three" }))).toContain("PLATFORM_DEV_CITUS_WORKERS must be a whole number");
  });

  it("rejects an unknown environment", () => {
    expect(errorOf(() => load("prod"))).toContain('Unknown environment "prod"');
  });

  it("rejects an override file that is not JSON, or keyed by something other than an environment", () => {
    expect(errorOf(() => loadEnvironment("dev", { env: {}, overrideFile: overrideFile("{ not json") }))).toContain("is not valid JSON");
    expect(errorOf(() => loadEnvironment("dev", { env: {}, overrideFile: overrideFile({ prod: {} }) }))).toContain('"prod" that is not an environment');
  });

  it("says a missing PLATFORM_CONFIG file does not exist", () => {
    expect(errorOf(() => loadEnvironment("dev", { env: { PLATFORM_CONFIG: "/nonexistent/platform.json" } }))).toContain("does not exist");
  });
});

describe("platform names", () => {
  it("spreads Citus workers across the three zones and puts each standby in another zone", () => {
    const names = platformNames(load("production"));
    const zones = names.citus.workers.map((w) => w.zone);
    expect(new Set(zones).size).toBe(3);
    for (const w of names.citus.workers) expect(w.standby?.zone).not.toBe(w.zone);
    expect(names.citus.coordinator.host).toBe("coordinator.db.internal");
  });

  it("keeps service-account ids within GCP's 30 characters for every environment", () => {
    for (const config of loadAllEnvironments(clean)) {
      for (const sa of Object.values(platformNames(config).serviceAccounts)) expect(sa.accountId.length).toBeLessThanOrEqual(30);
    }
  });
});
