/**
 * Phases 2-3 (config database.citusAlongside, docs/SCALING.md "Phase 2-3"): production on the postgres engine with the
 * Citus cluster beside it, as an operator turns it on (PLATFORM_PRODUCTION_DATABASE_CITUS_ALONGSIDE=true), so tenants
 * can move into Citus with tenantctl while Cloud SQL stays home. One stack holds both, and nothing of one may take
 * the other's name.
 */
import { describe, expect, it } from "vitest";
import { platformNames, runsCitusCluster } from "@platform/config";
import type { SynthesizedStack } from "../src/app.js";
import { CITUS_ALONGSIDE_OVERRIDE, POSTGRES_ENGINE_OVERRIDE, hermeticConfigs, only, renderedStartupScript, resourcesOf } from "./helpers.js";
import { synthesizedAlongsideStack, synthesizedPostgresStack } from "./synthesized.js";

const config = hermeticConfigs(CITUS_ALONGSIDE_OVERRIDE).find((c) => c.name === "production")!;
const names = platformNames(config);
const alongside = names.citusAlongside!;
const stack = synthesizedAlongsideStack();
const all = (type: string) => resourcesOf(stack.json, type);

describe("the config", () => {
  it("is off in every checked-in environment, and on only where an operator turns it on with the postgres engine", () => {
    expect(hermeticConfigs().map((c) => c.database.citusAlongside)).toEqual([false, false, false]);
    expect(config.database).toMatchObject({ engine: "postgres", citusAlongside: true });
    expect(runsCitusCluster(config)).toBe(true);
    expect(platformNames(hermeticConfigs(POSTGRES_ENGINE_OVERRIDE)[2]!).citusAlongside).toBeNull();
  });
  it("refuses Citus alongside the citus engine, and a value that is not true or false, saying what to do", () => {
    expect(() => hermeticConfigs({ PLATFORM_PRODUCTION_DATABASE_CITUS_ALONGSIDE: "true" })).toThrow(/database\.citusAlongside: runs Citus beside Cloud SQL, so it needs engine postgres/);
    expect(() => hermeticConfigs({ ...POSTGRES_ENGINE_OVERRIDE, PLATFORM_PRODUCTION_DATABASE_CITUS_ALONGSIDE: "yes" })).toThrow(/PLATFORM_PRODUCTION_DATABASE_CITUS_ALONGSIDE must be true or false \(got "yes"\)/);
  });
  it("names the Citus cluster's secrets apart from Cloud SQL's, and keeps the ones only one side holds", () => {
    for (const key of ["dbSuperuser", "dbMigrator", "dbApp", "dbCaCert", "dbCaKey", "hydraDbPassword", "etcdRootPassword", "patroniRestApiPassword"] as const) {
      expect(alongside.secrets[key], key).not.toBe(names.secrets[key]);
      expect(alongside.secrets[key], key).toContain("-citus-");
    }
    for (const key of ["redisAuth", "redisCa", "apiTlsCert", "alertReceiver"] as const) expect(alongside.secrets[key], key).toBe(names.secrets[key]);
    expect(alongside).toMatchObject({ name: "citus", host: names.citus.coordinator.host, cidr: config.network.dataCidr });
  });
});

describe("production on Cloud SQL with Citus alongside", () => {
  it("runs both: the Cloud SQL instance, and the Citus VMs, etcd, the coordinator's load balancer and pgBackRest's bucket", () => {
    expect(only(stack, "google_sql_database_instance").conf.name).toBe(names.cloudSql.instance);
    const vms = all("google_compute_instance").map((i) => String(i.conf.name));
    expect(vms).toEqual(expect.arrayContaining([names.citus.coordinator.instance, ...names.citus.workers.map((w) => w.instance), ...names.patroni.etcd.map((e) => e.instance)]));
    expect(all("google_compute_forwarding_rule").map((r) => r.conf.name)).toContain(names.coordinatorLoadBalancer.forwardingRule);
    expect(all("google_storage_bucket").map((b) => b.conf.name)).toContain(names.backupsBucket);
    // Cloud SQL stays home: the client name is the instance's, not the coordinator's.
    expect(names.database.host).toBe(names.cloudSql.host);
  });
  it("creates every secret once: no two secrets share an id", () => {
    const ids = all("google_secret_manager_secret").map((s) => String(s.conf.secret_id));
    const repeated = ids.filter((id, i) => ids.indexOf(id) !== i);
    expect(repeated).toEqual([]);
    for (const id of [alongside.secrets.dbApp, alongside.secrets.dbCaCert, alongside.secrets.dbMigrator, names.secrets.dbApp, names.secrets.dbCaCert]) expect(ids).toContain(id);
  });
  it("has the Citus VMs bootstrap with the Citus cluster's secrets, never Cloud SQL's", () => {
    const coordinator = all("google_compute_instance").find((i) => i.conf.name === names.citus.coordinator.instance)!;
    const script = renderedStartupScript(stack.json, coordinator.conf);
    expect(script).toContain(alongside.secrets.dbApp);
    expect(script).toContain(alongside.secrets.dbMigrator);
    expect(script).not.toContain(`${names.secrets.dbApp}"`);
    expect(script).not.toMatch(new RegExp(`[^-]${names.secrets.dbMigrator.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
  });
  it("lets the tenant service and worker read both databases' application password and CA, and nothing more than on Cloud SQL alone", () => {
    const readers = (s: SynthesizedStack) => {
      const byRef = new Map(resourcesOf(s.json, "google_secret_manager_secret").map((r) => [`\${${r.address}.secret_id}`, String(r.conf.secret_id)]));
      return resourcesOf(s.json, "google_secret_manager_secret_iam_member")
        .map((m) => `${byRef.get(String(m.conf.secret_id))} ${String(m.conf.member)}`)
        .filter((line) => /(TenantService|TenantWorker)Identity_/.test(line))
        .sort();
    };
    const before = readers(synthesizedPostgresStack());
    const extra = readers(stack).filter((line) => !before.includes(line));
    for (const workload of ["TenantServiceIdentity_", "TenantWorkerIdentity_"]) {
      expect(extra.filter((line) => line.includes(workload)).map((line) => line.split(" ")[0]).sort(), workload).toEqual([alongside.secrets.dbApp, alongside.secrets.dbCaCert].sort());
    }
    expect(extra).toHaveLength(4);
  });
  it("turns on logical decoding in Cloud SQL, with slots for tenantctl's waves; Cloud SQL alone keeps it off", () => {
    const flags = (s: SynthesizedStack) => {
      const settings = resourcesOf(s.json, "google_sql_database_instance")[0]!.conf.settings as Record<string, unknown>;
      const list = (Array.isArray(settings) ? settings[0] : settings).database_flags as { name: string; value: string }[];
      return Object.fromEntries(list.map((f) => [f.name, f.value]));
    };
    expect(flags(stack)).toMatchObject({ "cloudsql.logical_decoding": "on", max_replication_slots: "20" });
    expect(flags(synthesizedPostgresStack())["cloudsql.logical_decoding"]).toBeUndefined();
  });
  it("outputs the coordinator beside Cloud SQL, its workers and its secrets' ids", () => {
    const output = stack.json.output!;
    expect(output.coordinator_host!.value).toBe(names.cloudSql.host);
    expect(output.citus_alongside_host!.value).toBe(alongside.host);
    expect(output.citus_alongside_secret_ids!.value).toEqual(alongside.secrets);
    expect(output.worker_hosts!.value).toEqual(names.citus.workers.map((w) => w.host));
    expect(output.backups_bucket!.value).toBeDefined();
  });
});
