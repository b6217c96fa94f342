/**
 * The postgres engine (config database.engine, docs/SCALING.md "Phase 1"): production synthesized with
 * PLATFORM_PRODUCTION_DATABASE_ENGINE=postgres (test/global-setup.ts), each invariant of its Cloud SQL instance by
 * name, and what the rest of the stack reads of it the same as of the Citus engine.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DATABASE_ROLES, loadEnvironment, platformNames } from "@platform/config";
import type { SynthesizedStack } from "../src/app.js";
import { block, blocks } from "../src/policy/index.js";
import { cloudSqlFlags } from "../src/constructs/cloud-sql-postgres.js";
import { POSTGRES_ENGINE_SERVICES, TERRAFORM_REQUIRED_VERSION_POSTGRES } from "../src/stack.js";
import { POSTGRES_ENGINE_OVERRIDE, hermeticConfigs, only, resourcesOf } from "./helpers.js";
import { synthesizedPostgresStack, synthesizedStack } from "./synthesized.js";

const config = hermeticConfigs(POSTGRES_ENGINE_OVERRIDE).find((c) => c.name === "production")!;
const names = platformNames(config);
const stack = () => synthesizedPostgresStack();
const all = (type: string) => resourcesOf(stack().json, type);
const instance = () => only(stack(), "google_sql_database_instance").conf;
const settings = () => block(instance().settings)!;
const ref = (type: string, pick: (r: ReturnType<typeof all>[number]) => boolean, attribute = "id") => {
  const found = all(type).filter(pick);
  if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
  return `\${${found[0]!.address}.${attribute}}`;
};

describe("the engine is chosen in the config", () => {
  it("is citus in every checked-in environment, and postgres where an operator's override says so", () => {
    expect(hermeticConfigs().map((c) => c.database.engine)).toEqual(["citus", "citus", "citus"]);
    expect(config.database.engine).toBe("postgres");
    expect(names.database.host).toBe(names.cloudSql.host);
    expect(platformNames(hermeticConfigs()[2]!).database.host).toBe(platformNames(hermeticConfigs()[2]!).citus.coordinator.host);
  });
  it("refuses an engine it does not know, and production without a regional instance, naming the field", () => {
    const dir = mkdtempSync(join(tmpdir(), "platform-engine-"));
    const load = (env: Record<string, string>, overrides = {}) => () => {
      const overrideFile = join(dir, "overrides.json");
      writeFileSync(overrideFile, JSON.stringify(overrides));
      return loadEnvironment("production", { env, overrideFile });
    };
    try {
      expect(load({ PLATFORM_PRODUCTION_DATABASE_ENGINE: "mysql" })).toThrow(/database\.engine: .*\(got "mysql"\)/);
      expect(load(POSTGRES_ENGINE_OVERRIDE, { production: { database: { cloudSql: { highAvailability: false } } } })).toThrow(/database\.cloudSql\.highAvailability: production requires a regional/);
      expect(load(POSTGRES_ENGINE_OVERRIDE, { production: { database: { cloudSql: { tier: "db-custom-4-40000" } } } })).toThrow(/database\.cloudSql\.tier: memory must be a multiple of 256 MB/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("production on the postgres engine", () => {
  it("runs no Citus: no VM, no data disk, no etcd, no load balancer, no pgBackRest bucket", () => {
    for (const type of ["google_compute_instance", "google_compute_disk", "google_compute_forwarding_rule", "google_compute_resource_policy"]) expect(all(type), type).toEqual([]);
    expect(all("google_storage_bucket").map((b) => b.conf.name)).not.toContain(names.backupsBucket);
  });
  it("is Cloud SQL for PostgreSQL 15, Enterprise edition, on the tier and disk of the config", () => {
    expect(instance().database_version).toBe("POSTGRES_15");
    expect(instance().name).toBe(names.cloudSql.instance);
    expect(settings()).toMatchObject({ tier: config.database.cloudSql.tier, edition: "ENTERPRISE", disk_type: "PD_SSD", disk_size: config.database.cloudSql.diskGb, disk_autoresize: true });
  });
  it("has a private address only, from the VPC's Private Service Access range", () => {
    const ip = block(settings().ip_configuration)!;
    expect(ip.ipv4_enabled).toBe(false);
    expect(ip.private_network).toBe(ref("google_compute_network", () => true));
    expect(ip.allocated_ip_range).toBe(ref("google_compute_global_address", () => true, "name"));
    expect(instance().depends_on).toContain(only(stack(), "google_service_networking_connection").address);
    expect(ip.authorized_networks).toBeUndefined();
  });
  it("requires TLS, with a server certificate for the host clients use, signed by the stack's own CA", () => {
    const ip = block(settings().ip_configuration)!;
    expect(ip.ssl_mode).toBe("ENCRYPTED_ONLY");
    expect(ip.server_ca_mode).toBe("CUSTOMER_MANAGED_CAS_CA");
    expect(ip.server_ca_pool).toBe(ref("google_privateca_ca_pool", () => true));
    expect(ip.custom_subject_alternative_names).toEqual([names.database.host]);
    // The CA certificate is what clients verify against: it is the db CA secret's version, as on Citus.
    const caSecret = ref("google_secret_manager_secret", (s) => s.conf.secret_id === names.secrets.dbCaCert);
    const version = all("google_secret_manager_secret_version").find((v) => v.conf.secret === caSecret)!;
    expect(version.conf.secret_data).toMatch(/^\$\{google_privateca_certificate_authority\.[A-Za-z0-9_]+\.pem_ca_certificates\.0\}$/);
    expect(only(stack(), "google_privateca_ca_pool_iam_member").conf).toMatchObject({ role: "roles/privateca.certificateRequester", member: expect.stringMatching(/^serviceAccount:service-\$\{data\.google_project\.[A-Za-z0-9_]+\.number\}@gcp-sa-cloud-sql\.iam\.gserviceaccount\.com$/) });
  });
  it("points the client name at the instance's private address", () => {
    const record = all("google_dns_record_set").find((r) => r.conf.name === `${names.database.host}.`)!;
    expect(record.conf).toMatchObject({ type: "A", rrdatas: [`\${${only(stack(), "google_sql_database_instance").address}.private_ip_address}`] });
  });
  it("is regional, with its standby in another zone of the region", () => {
    expect(settings().availability_type).toBe("REGIONAL");
    const location = block(settings().location_preference)!;
    expect(location.zone).not.toBe(location.secondary_zone);
    expect(config.gcp.zones).toContain(location.secondary_zone);
  });
  it("backs up daily with point-in-time recovery and the retention of the config, in the region", () => {
    expect(block(settings().backup_configuration)).toEqual({
      enabled: true,
      point_in_time_recovery_enabled: true,
      start_time: "02:00",
      location: config.gcp.region,
      transaction_log_retention_days: config.database.cloudSql.pointInTimeRecoveryDays,
      backup_retention_settings: { retained_backups: config.database.cloudSql.backupRetentionCount, retention_unit: "COUNT" },
    });
  });
  it("is encrypted with its own key of the stack, granted to Cloud SQL's service agent, and created after the grant", () => {
    const key = all("google_kms_crypto_key").find((k) => k.conf.name === names.kmsKeys.cloudSql)!;
    expect(instance().encryption_key_name).toBe(`\${${key.address}.id}`);
    const grant = all("google_kms_crypto_key_iam_member").find((g) => g.conf.crypto_key_id === `\${${key.address}.id}`)!;
    expect(grant.conf).toMatchObject({ role: "roles/cloudkms.cryptoKeyEncrypterDecrypter", member: expect.stringMatching(/@gcp-sa-cloud-sql\.iam\.gserviceaccount\.com$/) });
    expect(instance().depends_on).toContain(grant.address);
    expect(block(key.conf.lifecycle)).toMatchObject({ prevent_destroy: true });
    expect(all("google_project_service").map((s) => s.conf.service)).toEqual(expect.arrayContaining(POSTGRES_ENGINE_SERVICES));
  });
  it("refuses deletion, in Terraform and in Cloud SQL's API", () => {
    expect(instance().deletion_protection).toBe(true);
    expect(settings().deletion_protection_enabled).toBe(true);
  });
  it("sets the flags: connections sized as the charts size their pools, slow statements without their parameters, pg_stat_statements", () => {
    const flags = Object.fromEntries(blocks(settings().database_flags).map((f) => [f.name, f.value]));
    expect(flags).toEqual(cloudSqlFlags(config.citus.coordinatorMaxConnections));
    expect(flags).toMatchObject({ max_connections: String(config.citus.coordinatorMaxConnections), log_min_duration_statement: "1000", log_parameter_max_length: "0", "pg_stat_statements.track": "top" });
  });
  it("updates in the weekly window of the config, and keeps Query Insights", () => {
    expect(block(settings().maintenance_window)).toEqual({ day: 7, hour: config.database.cloudSql.maintenanceWindow.hour, update_track: "stable" });
    expect(block(settings().insights_config)).toMatchObject({ query_insights_enabled: true, record_client_address: false });
  });
  it("creates the platform's database, Hydra's, and the login roles of DATABASE_ROLES as built-in users, with no password Terraform keeps", () => {
    expect(all("google_sql_database").map((d) => d.conf.name).sort()).toEqual([names.citusDatabase, names.hydraDatabase].sort());
    const users = all("google_sql_user");
    expect(users.map((u) => u.conf.name).sort()).toEqual([DATABASE_ROLES.app, DATABASE_ROLES.hydra, DATABASE_ROLES.migrator].sort());
    for (const u of users) {
      expect(u.conf.type).toBe("BUILT_IN");
      expect(u.conf.password, u.address).toBeUndefined();
      // Write-only: sent on create, never stored in state or plan (Terraform 1.11), which the stack requires.
      expect(u.conf).toMatchObject({ password_wo: "${uuid()}", password_wo_version: 1, deletion_policy: "ABANDON" });
    }
    expect(stack().json.terraform?.required_version).toBe(TERRAFORM_REQUIRED_VERSION_POSTGRES);
  });
  it("keeps the secret ids the workloads read, and gives each workload the same secrets as on Citus", () => {
    const ids = all("google_secret_manager_secret").map((s) => s.conf.secret_id);
    for (const id of [names.secrets.dbSuperuser, names.secrets.dbMigrator, names.secrets.dbApp, names.secrets.dbCaCert, names.secrets.hydraDbPassword, names.secrets.hydraSystemSecret, names.secrets.grafanaAdminPassword]) expect(ids).toContain(id);
    // Citus-only secrets are not created.
    for (const id of [names.secrets.dbReplication, names.secrets.dbCaKey, names.secrets.etcdRootPassword, names.secrets.patroniRestApiPassword]) expect(ids).not.toContain(id);
    const readers = (json: SynthesizedStack) => {
      const secretIdOf = new Map(resourcesOf(json.json, "google_secret_manager_secret").map((s) => [`\${${s.address}.secret_id}`, s.conf.secret_id]));
      return resourcesOf(json.json, "google_secret_manager_secret_iam_member")
        .map((m) => `${String(secretIdOf.get(String(m.conf.secret_id)))} ${String(m.conf.member)}`)
        .filter((line) => /(TenantService|TenantWorker|Hydra|Grafana)Identity_/.test(line))
        .sort();
    };
    expect(readers(stack())).toEqual(readers(synthesizedStack("production")));
  });
  it("gives its address as the database output, where the coordinator's was", () => {
    const output = stack().json.output!;
    expect(output.coordinator_host!.value).toBe(names.database.host);
    expect(output.coordinator_ip!.value).toBe(`\${${only(stack(), "google_sql_database_instance").address}.private_ip_address}`);
    expect(output.worker_hosts!.value).toEqual([]);
    expect(output.backups_bucket).toBeUndefined();
  });
});
