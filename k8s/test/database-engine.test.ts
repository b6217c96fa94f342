/**
 * The manifests on the postgres engine (config database.engine, docs/SCALING.md "Phase 1"): the same charts, pointed
 * at Cloud SQL through the names the config derives, and none of the Citus VMs' monitoring. dev with the override
 * PLATFORM_DEV_DATABASE_ENGINE=postgres, next to dev as checked in.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { afterAll, describe, expect, it } from "vitest";
import { admittedImagePatterns, loadEnvironment, platformNames, type EnvironmentConfig } from "@platform/config";
import { POSTGRES_EXPORTER_PORT } from "@platform/monitoring/exporter-queries";
import { renderMonitoring } from "@platform/monitoring";
import { synthesizeEnvironment } from "../src/app.js";
import { MANIFEST_RULES, checkManifests } from "../src/policy/index.js";

const dir = mkdtempSync(join(tmpdir(), "k8s-engine-"));
writeFileSync(join(dir, "empty.json"), "{}");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const load = (env: Record<string, string>): EnvironmentConfig => loadEnvironment("dev", { env, overrideFile: join(dir, "empty.json") });
type Obj = { kind: string; metadata: { name: string; namespace?: string }; spec?: Record<string, unknown> };
const citusConfig = load({});
const postgresConfig = load({ PLATFORM_DEV_DATABASE_ENGINE: "postgres" });
const citus = synthesizeEnvironment(citusConfig, join(dir, "citus")).objects as Obj[];
const postgres = synthesizeEnvironment(postgresConfig, join(dir, "postgres")).objects as Obj[];
const names = platformNames(postgresConfig);

/** Every container env value and command line of the objects, as text. */
const containerText = (objects: Obj[]) => JSON.stringify(objects.filter((o) => o.kind === "Deployment" || o.kind === "Job" || o.kind === "StatefulSet"));
/** The CIDRs a NetworkPolicy lets its pods reach on a port. */
const egressCidrs = (objects: Obj[], policy: string, port: number): string[] => {
  const p = objects.find((o) => o.kind === "NetworkPolicy" && o.metadata.name === policy);
  if (!p) throw new Error(`no NetworkPolicy ${policy}`);
  const rules = (p.spec!.egress ?? []) as { to?: { ipBlock?: { cidr: string } }[]; ports?: { port: number }[] }[];
  return rules.filter((r) => r.ports?.some((x) => x.port === port)).flatMap((r) => (r.to ?? []).flatMap((t) => (t.ipBlock ? [t.ipBlock.cidr] : [])));
};

describe("dev on the postgres engine", () => {
  it("connects the service, the worker and Hydra to Cloud SQL's name, verified as before (verify-full, the db CA file)", () => {
    const text = containerText(postgres);
    expect(names.database.host).toBe(names.cloudSql.host);
    expect(text).toContain(`postgresql://${names.databaseRoles.app}@${names.database.host}:${names.postgresPort}/${names.citusDatabase}`);
    expect(text).toContain(`@${names.database.host}:${names.postgresPort}/${names.hydraDatabase}?sslmode=verify-full`);
    expect(text).not.toContain(names.citus.coordinator.host);
    // Only the database's address changed: the same objects, the same secrets mounted.
    expect(postgres.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(citus.map((o) => `${o.kind}/${o.metadata.name}`).sort());
  });

  it.each(["tenant-service", "tenant-worker", "hydra"])("lets %s reach PostgreSQL only in Cloud SQL's Private Service Access range", (policy) => {
    expect(egressCidrs(postgres, policy, names.postgresPort)).toEqual([postgresConfig.network.privateServiceAccessCidr]);
    expect(egressCidrs(citus, policy, names.postgresPort)).toEqual([citusConfig.network.dataCidr]);
  });

  it("does not let Prometheus scrape the Citus VMs' exporters, which do not exist", () => {
    expect(egressCidrs(postgres, "prometheus", POSTGRES_EXPORTER_PORT)).toEqual([]);
    expect(egressCidrs(citus, "prometheus", POSTGRES_EXPORTER_PORT)).toEqual([citusConfig.network.dataCidr]);
  });

  it("leaves out the Citus scrape jobs, the Citus alerts and the Citus dashboard, and keeps the rest", () => {
    const jobs = (config: EnvironmentConfig) => (parse(renderMonitoring(config).files["prometheus.yml"]!) as { scrape_configs: { job_name: string }[] }).scrape_configs.map((j) => j.job_name);
    const alerts = (config: EnvironmentConfig) =>
      (parse(renderMonitoring(config).files["platform.rules.yml"]!) as { groups: { rules: { alert?: string }[] }[] }).groups.flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r.alert] : [])));
    const citusJobs = ["citus-postgres", "citus-node", "patroni"];
    expect(jobs(citusConfig)).toEqual(expect.arrayContaining(citusJobs));
    expect(jobs(postgresConfig).filter((j) => citusJobs.includes(j))).toEqual([]);
    expect(jobs(postgresConfig)).toEqual(jobs(citusConfig).filter((j) => !citusJobs.includes(j)));
    expect(alerts(citusConfig).filter((a) => a.startsWith("Citus")).length).toBeGreaterThan(10);
    expect(alerts(postgresConfig).filter((a) => a.startsWith("Citus") || a.startsWith("Patroni"))).toEqual([]);
    expect(alerts(postgresConfig)).toEqual(expect.arrayContaining(["TenantServiceErrorRateHigh", "DatabasePoolSaturated", "RedisDown", "Watchdog"]));
    expect(Object.keys(renderMonitoring(citusConfig).files)).toContain("dashboard-platform-citus.json");
    expect(Object.keys(renderMonitoring(postgresConfig).files).filter((f) => f.startsWith("dashboard-"))).toEqual(
      Object.keys(renderMonitoring(citusConfig).files).filter((f) => f.startsWith("dashboard-") && f !== "dashboard-platform-citus.json"),
    );
  });

  it("passes every manifest rule that stops synthesis", () => {
    const findings = checkManifests(postgres as never, { admittedImages: admittedImagePatterns(postgresConfig) }).filter((f) => f.blocks === "synth");
    expect(MANIFEST_RULES.length).toBeGreaterThan(0);
    expect(findings).toEqual([]);
  });
});

/**
 * Phases 2-3 (database.citusAlongside): dev on the postgres engine with the Citus cluster beside it. Cloud SQL stays
 * home; the service and the worker get Citus as the database `citus` (DATABASE_URL_CITUS, citus/src/databases.ts),
 * its password and CA from the Citus cluster's own secrets, and may reach it; Hydra does not.
 */
describe("dev on the postgres engine with Citus alongside", () => {
  const alongsideConfig = load({ PLATFORM_DEV_DATABASE_ENGINE: "postgres", PLATFORM_DEV_DATABASE_CITUS_ALONGSIDE: "true" });
  const alongside = synthesizeEnvironment(alongsideConfig, join(dir, "alongside")).objects as Obj[];
  const alongsideNames = platformNames(alongsideConfig);
  const citusSide = alongsideNames.citusAlongside!;
  const envOf = (deployment: string): Record<string, string> => {
    const d = alongside.find((o) => o.kind === "Deployment" && o.metadata.name === deployment)!;
    return Object.fromEntries((d.spec as any).template.spec.containers[0].env.map((e: { name: string; value: string }) => [e.name, e.value])); // eslint-disable-line @typescript-eslint/no-explicit-any
  };

  it.each(["tenant-service", "tenant-worker"])("gives %s Cloud SQL as home and Citus as the database citus, each with its own password and CA file", (deployment) => {
    const env = envOf(deployment);
    expect(env.DATABASE_URL).toBe(`postgresql://${names.databaseRoles.app}@${alongsideNames.cloudSql.host}:${names.postgresPort}/${names.citusDatabase}`);
    expect(env.DATABASE_URL_CITUS).toBe(`postgresql://${names.databaseRoles.app}@${citusSide.host}:${names.postgresPort}/${names.citusDatabase}`);
    expect(env.DATABASE_PASSWORD_FILE_CITUS).not.toBe(env.DATABASE_PASSWORD_FILE);
    expect(env.DATABASE_CA_FILE_CITUS).not.toBe(env.DATABASE_CA_FILE);
    // Only with Citus alongside.
    const plain = postgres.find((o) => o.kind === "Deployment" && o.metadata.name === deployment)!;
    expect(JSON.stringify(plain)).not.toContain("DATABASE_URL_CITUS");
  });

  it("mounts the Citus cluster's application password and CA from their own Secret Manager ids, beside Cloud SQL's", () => {
    const providers = alongside.filter((o) => o.kind === "SecretProviderClass" && o.metadata.namespace === alongsideConfig.kubernetes.tenantService.namespace);
    const text = JSON.stringify(providers);
    for (const id of [citusSide.secrets.dbApp, citusSide.secrets.dbCaCert, alongsideNames.secrets.dbApp, alongsideNames.secrets.dbCaCert]) expect(text).toContain(`/secrets/${id}/versions/latest`);
    expect(citusSide.secrets.dbApp).not.toBe(alongsideNames.secrets.dbApp);
  });

  it.each(["tenant-service", "tenant-worker"])("lets %s reach PostgreSQL in Cloud SQL's range and the Citus subnet, and Hydra only Cloud SQL's", (policy) => {
    expect(egressCidrs(alongside, policy, names.postgresPort).sort()).toEqual([alongsideConfig.network.privateServiceAccessCidr, alongsideConfig.network.dataCidr].sort());
    expect(egressCidrs(alongside, "hydra", names.postgresPort)).toEqual([alongsideConfig.network.privateServiceAccessCidr]);
  });

  it("scrapes and alerts on the Citus VMs again, which run beside Cloud SQL", () => {
    const jobs = (parse(renderMonitoring(alongsideConfig).files["prometheus.yml"]!) as { scrape_configs: { job_name: string }[] }).scrape_configs.map((j) => j.job_name);
    expect(jobs).toEqual(expect.arrayContaining(["citus-postgres", "citus-node", "patroni"]));
    expect(egressCidrs(alongside, "prometheus", POSTGRES_EXPORTER_PORT)).toEqual([alongsideConfig.network.dataCidr]);
    expect(Object.keys(renderMonitoring(alongsideConfig).files)).toContain("dashboard-platform-citus.json");
  });

  it("passes every manifest rule that stops synthesis", () => {
    expect(checkManifests(alongside as never, { admittedImages: admittedImagePatterns(alongsideConfig) }).filter((f) => f.blocks === "synth")).toEqual([]);
  });
});
