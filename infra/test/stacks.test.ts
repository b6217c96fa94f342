import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { PORTS, admittedImagePatterns, imageRepository, platformNames, type EnvironmentConfig } from "@platform/config";
import { buildApp, type SynthesizedStack } from "../src/app.js";
import { at, block, blocks, allowsPort } from "../src/policy/index.js";
import { KUBERNETES_EXPECTS, StackOutputsSchema } from "../src/outputs.js";
import { NODE_EXPORTER_PORT, POSTGRES_EXPORTER_PORT } from "@platform/monitoring/exporter-queries";
import { GOOGLE_HEALTH_CHECK_RANGES, IAP_TCP_FORWARDING_RANGE } from "../src/constructs/firewall.js";
import { TERRAFORM_REQUIRED_VERSION } from "../src/stack.js";
import { hermeticConfigs, only, renderedStartupScript, resourcesOf, synthesizeAll } from "./helpers.js";
import { synthesizedStacks } from "./synthesized.js";

const configs = hermeticConfigs();
let stacks: SynthesizedStack[];
beforeAll(() => {
  stacks = synthesizedStacks();
});

const metadataOf = (conf: Record<string, unknown>): Record<string, string> => block(conf.metadata) as Record<string, string>;

describe.each(configs.map((c) => [c.name, c] as [string, EnvironmentConfig]))("%s stack", (name, config) => {
  const names = platformNames(config);
  const stack = (): SynthesizedStack => stacks.find((s) => s.name === name)!;
  const all = (type: string) => resourcesOf(stack().json, type);

  describe("state and providers", () => {
    it("keeps remote state in the environment's GCS bucket under its own prefix", () => {
      expect(at(stack().json.terraform, "backend", "gcs")).toEqual({ bucket: config.gcp.stateBucket, prefix: `platform/${name}` });
    });
    it("states the oldest Terraform it runs on, so an older CLI refuses at init rather than failing halfway", () => {
      expect(stack().json.terraform?.required_version).toBe(TERRAFORM_REQUIRED_VERSION);
    });
    it("pins the Google provider to an exact version", () => {
      const google = at(stack().json.terraform, "required_providers", "google") as { version: string };
      expect(google.version).toMatch(/^\d+\.\d+\.\d+$/);
    });
    it("uses the configured project and region, never a hard-coded one", () => {
      const provider = block((stack().json.provider as Record<string, unknown>).google)!;
      expect(provider).toMatchObject({ project: config.gcp.projectId, region: config.gcp.region });
      expect(JSON.stringify(stack().json)).not.toMatch(/example-saas-(?!dev|staging|production)/);
    });
  });

  describe("project APIs", () => {
    it("enables every API the stack's resources call, and leaves them on when the stack is destroyed", () => {
      const enabled = all("google_project_service").map((s) => s.conf);
      expect(enabled.map((s) => s.service)).toEqual(
        expect.arrayContaining(["compute.googleapis.com", "container.googleapis.com", "dns.googleapis.com", "iam.googleapis.com",
          "redis.googleapis.com", "secretmanager.googleapis.com", "servicenetworking.googleapis.com", "cloudkms.googleapis.com"]),
      );
      for (const service of enabled) expect(service).toMatchObject({ project: config.gcp.projectId, disable_on_destroy: false });
      expect(enabled.some((s) => s.service === "binaryauthorization.googleapis.com")).toBe(config.gke.binaryAuthorization);
    });
    it("creates every other resource only after all APIs are enabled, so a new project converges in one deploy", () => {
      const [gate, ...more] = all("terraform_data");
      expect(more).toEqual([]);
      const services = all("google_project_service").map((s) => s.address);
      expect([...(gate!.conf.depends_on as string[])].sort()).toEqual([...services].sort());
      const gateRef = gate!.address;
      const ungated = Object.entries(stack().json.resource!)
        .filter(([type]) => type !== "google_project_service" && type !== "terraform_data")
        .flatMap(([type, byName]) => Object.entries(byName).map(([name, conf]) => ({ address: `${type}.${name}`, dependsOn: conf.depends_on })))
        .filter((r) => !(r.dependsOn as string[] | undefined)?.includes(gateRef))
        .map((r) => r.address);
      expect(ungated).toEqual([]);
      // Data sources wait for nothing: a deferred read would leave the project number unknown at plan time.
      for (const byName of Object.values(stack().json.data ?? {})) for (const conf of Object.values(byName)) expect(conf.depends_on).toBeUndefined();
    });
  });

  describe("network", () => {
    it("is a custom-mode VPC", () => {
      expect(only(stack(), "google_compute_network").conf).toMatchObject({ name: names.network, auto_create_subnetworks: false });
    });
    it("gives the GKE subnet secondary ranges for pods and services, Private Google Access and flow logs", () => {
      const gke = all("google_compute_subnetwork").find((s) => s.conf.name === names.gkeSubnet)!;
      expect(gke.conf.ip_cidr_range).toBe(config.network.gkeNodesCidr);
      expect(gke.conf.secondary_ip_range).toEqual([
        { range_name: names.podsRange, ip_cidr_range: config.network.podsCidr },
        { range_name: names.servicesRange, ip_cidr_range: config.network.servicesCidr },
      ]);
      for (const subnet of all("google_compute_subnetwork")) {
        expect(subnet.conf.private_ip_google_access, subnet.address).toBe(true);
        expect(at(subnet.conf, "log_config", "flow_sampling"), subnet.address).toBe(config.network.flowLogSampling);
      }
    });
    it("sends egress through Cloud Router and NAT, with NAT logging", () => {
      expect(only(stack(), "google_compute_router").conf.name).toBe(names.router);
      expect(only(stack(), "google_compute_router_nat").conf).toMatchObject({ name: names.nat, log_config: { enable: true } });
    });
    it("reserves the Private Service Access range and peers it with servicenetworking", () => {
      const range = only(stack(), "google_compute_global_address").conf;
      expect(`${String(range.address)}/${String(range.prefix_length)}`).toBe(config.network.privateServiceAccessCidr);
      expect(range.purpose).toBe("VPC_PEERING");
      expect(only(stack(), "google_service_networking_connection").conf.service).toBe("servicenetworking.googleapis.com");
    });
    it("has a private DNS zone visible only inside the VPC, with a record per database host and Redis", () => {
      const zone = only(stack(), "google_dns_managed_zone").conf;
      expect(zone).toMatchObject({ dns_name: config.network.privateDnsDomain, visibility: "private" });
      const records = all("google_dns_record_set").map((r) => r.conf.name);
      // Each Citus and etcd VM's own name, and the coordinator's client name (its members' names differ from it).
      const hosts = [names.citus.coordinator, ...names.citus.workers].flatMap((n) => [n.member.host, ...(n.standby ? [n.standby.host] : [])]);
      const etcd = names.patroni.etcd.map((m) => m.host);
      expect(records.sort()).toEqual([names.citus.coordinator.host, ...hosts, ...etcd, names.redis.host].map((h) => `${h}.`).sort());
    });
  });

  describe("firewall", () => {
    const rules = () => all("google_compute_firewall").map((r) => r.conf);
    const allowing = (port: number) => rules().filter((r) => blocks(r.allow).some((a) => allowsPort(a, port)));
    it("allows SSH only from the IAP range", () => {
      const ssh = allowing(22);
      expect(ssh.length).toBe(1);
      expect(ssh[0]!.source_ranges).toEqual([IAP_TCP_FORWARDING_RANGE]);
    });
    it("allows PostgreSQL only from the cluster and database subnet ranges", () => {
      const pg = allowing(5432);
      expect(pg.length).toBe(1);
      expect(pg[0]!.source_ranges).toEqual([config.network.gkeNodesCidr, config.network.podsCidr, config.network.dataCidr]);
      expect(pg[0]!.target_tags).toEqual([names.networkTags.citus]);
    });
    it("opens the database VMs' exporters to the pod range only, where Prometheus runs", () => {
      for (const port of [POSTGRES_EXPORTER_PORT, NODE_EXPORTER_PORT]) {
        const metrics = allowing(port);
        expect(metrics.length, String(port)).toBe(1);
        expect(metrics[0]!.source_ranges).toEqual([config.network.podsCidr]);
        expect(metrics[0]!.target_tags).toEqual([names.networkTags.citus]);
      }
    });
    it("opens etcd's client port to the Citus VMs only and its peer port between the members only", () => {
      const client = allowing(PORTS.etcdClient).filter((r) => (r.source_tags as string[]).includes(names.networkTags.citus));
      expect(client).toHaveLength(1);
      expect(client[0]).toMatchObject({ source_tags: [names.networkTags.citus], target_tags: [names.networkTags.etcd] });
      expect(client[0]!.source_ranges).toBeUndefined();
      const peer = allowing(PORTS.etcdPeer);
      expect(peer).toHaveLength(1);
      expect(peer[0]).toMatchObject({ source_tags: [names.networkTags.etcd], target_tags: [names.networkTags.etcd] });
      // Nothing else reaches the etcd VMs but SSH through IAP.
      const toEtcd = rules().filter((r) => r.allow && (r.target_tags as string[] | undefined)?.includes(names.networkTags.etcd));
      expect(toEtcd.flatMap((r) => blocks(r.allow).flatMap((a) => a.ports as string[])).sort()).toEqual(["22", String(PORTS.etcdClient), String(PORTS.etcdClient), String(PORTS.etcdPeer)].sort());
    });
    it("opens Patroni's REST API to the Citus VMs and Prometheus's pod range, and Google's health checkers to that port only", () => {
      const rest = allowing(PORTS.patroniRestApi);
      const health = rest.find((r) => (r.source_ranges as string[] | undefined)?.includes(GOOGLE_HEALTH_CHECK_RANGES[0]))!;
      expect(health.source_ranges).toEqual([...GOOGLE_HEALTH_CHECK_RANGES]);
      expect(blocks(health.allow)).toEqual([{ protocol: "tcp", ports: [String(PORTS.patroniRestApi)] }]);
      // Every other rule to the REST port admits only the Citus VMs (Patroni's peers) and the pod range (Prometheus).
      const others = rest.filter((r) => r !== health);
      for (const r of others) {
        expect([...((r.source_ranges as string[] | undefined) ?? [])].every((s) => s === config.network.podsCidr), String(r.name)).toBe(true);
        expect([...((r.source_tags as string[] | undefined) ?? [])].every((s) => s === names.networkTags.citus), String(r.name)).toBe(true);
        expect(r.target_tags, String(r.name)).toEqual([names.networkTags.citus]);
      }
      expect(others.some((r) => (r.source_tags as string[] | undefined)?.includes(names.networkTags.citus))).toBe(true);
      expect(others.some((r) => (r.source_ranges as string[] | undefined)?.includes(config.network.podsCidr))).toBe(true);
    });
    it("never allows anything from 0.0.0.0/0, and denies the rest with logging", () => {
      for (const rule of rules().filter((r) => r.allow)) expect(rule.source_ranges ?? [], String(rule.name)).not.toContain("0.0.0.0/0");
      const deny = rules().find((r) => r.deny)!;
      expect(deny).toMatchObject({ priority: 65534, source_ranges: ["0.0.0.0/0"], deny: [{ protocol: "all" }] });
      for (const rule of rules()) expect(block(rule.log_config), String(rule.name)).toBeDefined();
    });
  });

  describe("GKE", () => {
    const cluster = () => only(stack(), "google_container_cluster").conf;
    const pool = () => only(stack(), "google_container_node_pool").conf;
    it("is regional across the three configured zones", () => {
      expect(cluster().location).toBe(config.gcp.region);
      expect(cluster().node_locations).toEqual(config.gcp.zones);
    });
    it("has private nodes and the control plane endpoint the config asks for", () => {
      expect(block(cluster().private_cluster_config)).toMatchObject({
        enable_private_nodes: true,
        enable_private_endpoint: config.network.privateEndpoint,
        master_ipv4_cidr_block: config.network.controlPlaneCidr,
      });
      expect(at(cluster(), "master_authorized_networks_config", "cidr_blocks")).toEqual(
        config.network.authorizedNetworks.map((n) => ({ display_name: n.displayName, cidr_block: n.cidrBlock })),
      );
    });
    it("uses Workload Identity and Dataplane V2 (network policy enforced by the datapath)", () => {
      expect(at(cluster(), "workload_identity_config", "workload_pool")).toBe(`${config.gcp.projectId}.svc.id.goog`);
      expect(cluster().datapath_provider).toBe("ADVANCED_DATAPATH");
    });
    it("has shielded nodes with secure boot and integrity monitoring, on the GKE metadata server", () => {
      expect(cluster().enable_shielded_nodes).toBe(true);
      for (const conf of [cluster(), pool()]) {
        expect(at(conf, "node_config", "shielded_instance_config")).toEqual({ enable_secure_boot: true, enable_integrity_monitoring: true });
        expect(at(conf, "node_config", "workload_metadata_config", "mode")).toBe("GKE_METADATA");
      }
    });
    it("follows the configured release channel and maintenance window", () => {
      expect(at(cluster(), "release_channel", "channel")).toBe(config.gke.releaseChannel);
      expect(at(cluster(), "maintenance_policy", "recurring_window")).toEqual({
        start_time: config.gke.maintenanceWindow.startTime,
        end_time: config.gke.maintenanceWindow.endTime,
        recurrence: config.gke.maintenanceWindow.recurrence,
      });
    });
    it("removes the default pool and runs one autoscaled, auto-repaired, surge-upgraded pool", () => {
      expect(cluster().remove_default_node_pool).toBe(true);
      expect(block(pool().autoscaling)).toMatchObject({ min_node_count: config.gke.nodePool.minNodesPerZone, max_node_count: config.gke.nodePool.maxNodesPerZone });
      expect(block(pool().management)).toEqual({ auto_repair: true, auto_upgrade: true });
      expect(block(pool().upgrade_settings)).toEqual({ strategy: "SURGE", max_surge: config.gke.nodePool.maxSurge, max_unavailable: config.gke.nodePool.maxUnavailable });
      expect(at(pool(), "node_config", "machine_type")).toBe(config.gke.nodePool.machineType);
    });
    it("runs nodes as a dedicated least-privilege service account, never the default compute one", () => {
      const nodeSa = all("google_service_account").find((s) => s.conf.account_id === names.serviceAccounts.gkeNodes.accountId)!;
      const ref = `\${${nodeSa.address}.email}`;
      expect(at(pool(), "node_config", "service_account")).toBe(ref);
      expect(at(cluster(), "node_config", "service_account")).toBe(ref);
      const roles = all("google_project_iam_member").filter((m) => m.conf.member === `\${${nodeSa.address}.member}`).map((m) => m.conf.role);
      expect(roles.sort()).toEqual(
        ["roles/artifactregistry.reader", "roles/autoscaling.metricsWriter", "roles/logging.logWriter", "roles/monitoring.metricWriter", "roles/monitoring.viewer", "roles/stackdriver.resourceMetadata.writer"].sort(),
      );
    });
    it("encrypts Kubernetes Secrets with the Cloud KMS key and keeps logging and monitoring on", () => {
      const key = all("google_kms_crypto_key").find((k) => k.conf.name === names.kmsKeys.gkeSecrets)!;
      expect(block(cluster().database_encryption)).toEqual({ state: "ENCRYPTED", key_name: `\${${key.address}.id}` });
      expect(cluster().logging_service).toBe("logging.googleapis.com/kubernetes");
      expect(cluster().monitoring_service).toBe("monitoring.googleapis.com/kubernetes");
    });
    it(`${config.gke.binaryAuthorization ? "admits only the platform's image repositories" : "defines no Binary Authorization policy"}`, () => {
      const policies = all("google_binary_authorization_policy");
      if (!config.gke.binaryAuthorization) return expect(policies).toEqual([]);
      expect(policies.length).toBe(1);
      const policy = policies[0]!.conf;
      expect(policy).toMatchObject({
        project: config.gcp.projectId,
        global_policy_evaluation_mode: "ENABLE",
        default_admission_rule: { evaluation_mode: "ALWAYS_DENY", enforcement_mode: "ENFORCED_BLOCK_AND_AUDIT_LOG" },
      });
      const patterns = blocks(policy.admission_whitelist_patterns).map((p) => p.name_pattern);
      expect(patterns).toEqual(admittedImagePatterns(config));
      expect(patterns).toContain(`${imageRepository(config.kubernetes.images.tenantService)}*`);
      // The cluster never enforces the project's allow-everything default, not even while the policy is created.
      expect(cluster().depends_on).toContain(policies[0]!.address);
    });
    it(`${name === "production" ? "has" : "does not force"} deletion protection and Binary Authorization`, () => {
      expect(cluster().deletion_protection).toBe(config.gke.deletionProtection);
      expect(at(cluster(), "binary_authorization", "evaluation_mode")).toBe(config.gke.binaryAuthorization ? "PROJECT_SINGLETON_POLICY_ENFORCE" : undefined);
      if (name === "production") expect(config.gke.deletionProtection && config.gke.binaryAuthorization).toBe(true);
    });
  });

  describe("Memorystore", () => {
    const redis = () => only(stack(), "google_redis_instance");
    it("requires AUTH and TLS and lives on Private Service Access", () => {
      expect(redis().conf).toMatchObject({ auth_enabled: true, transit_encryption_mode: "SERVER_AUTHENTICATION", connect_mode: "PRIVATE_SERVICE_ACCESS" });
    });
    it(`is ${config.redis.tier} with the configured size`, () => {
      expect(redis().conf).toMatchObject({ tier: config.redis.tier, memory_size_gb: config.redis.memorySizeGb });
      if (name !== "dev") expect(redis().conf.tier).toBe("STANDARD_HA");
      if (config.redis.tier === "STANDARD_HA") expect(redis().conf.alternative_location_id).toBe(config.gcp.zones[1]);
    });
    it("encrypts data at rest with its own regional KMS key, created only after Memorystore's service agent may use it", () => {
      const key = all("google_kms_crypto_key").find((k) => k.conf.name === names.kmsKeys.redis)!;
      expect(redis().conf.customer_managed_key).toBe(`\${${key.address}.id}`);
      expect(only(stack(), "google_kms_key_ring").conf.location).toBe(config.gcp.region);
      const grant = all("google_kms_crypto_key_iam_member").find((g) => g.conf.crypto_key_id === `\${${key.address}.id}`)!;
      expect(grant.conf).toMatchObject({ role: "roles/cloudkms.cryptoKeyEncrypterDecrypter" });
      expect(grant.conf.member).toMatch(/^serviceAccount:service-\$\{data\.google_project\.[A-Za-z0-9_]+\.number\}@cloud-redis\.iam\.gserviceaccount\.com$/);
      expect(redis().conf.depends_on).toContain(grant.address);
    });
    it("is updated by Google only in the configured weekly window (redis.maintenanceWindow)", () => {
      const { day, hour } = config.redis.maintenanceWindow;
      expect(at(redis().conf, "maintenance_policy", "weekly_maintenance_window")).toEqual([{ day, start_time: { hours: hour, minutes: 0 } }]);
      expect(config.redis.maintenanceWindow).toEqual({ day: "SUNDAY", hour: 3 });
    });
    it("publishes the AUTH string and CA to Secret Manager by reference, never as a literal", () => {
      const versions = all("google_secret_manager_secret_version").map((v) => v.conf.secret_data);
      expect(versions.sort()).toEqual([`\${${redis().address}.auth_string}`, `\${${redis().address}.server_ca_certs[0].cert}`].sort());
    });
  });

  describe("Citus", () => {
    const instances = () => all("google_compute_instance").filter((i) => (i.conf.labels as Record<string, string>)["citus-role"]);
    const primaries = () => instances().filter((i) => !String(i.conf.name).endsWith("-standby"));
    const script = (instance: string) => renderedStartupScript(stack().json, instances().find((i) => i.conf.name === instance)!.conf);
    it(`runs a coordinator and ${config.citus.workers} workers${config.citus.standby ? ", each with a standby" : ""}`, () => {
      expect(primaries().map((i) => i.conf.name).sort()).toEqual([names.citus.coordinator, ...names.citus.workers].map((n) => n.instance).sort());
      expect(instances().length).toBe((1 + config.citus.workers) * (config.citus.standby ? 2 : 1));
    });
    it("has no public IP, is shielded, uses OS Login, blocks project SSH keys and disables the serial port", () => {
      for (const vm of instances()) {
        expect(blocks(vm.conf.network_interface).every((ni) => ni.access_config === undefined), vm.address).toBe(true);
        expect(block(vm.conf.shielded_instance_config), vm.address).toEqual({ enable_secure_boot: true, enable_vtpm: true, enable_integrity_monitoring: true });
        expect(metadataOf(vm.conf), vm.address).toMatchObject({ "enable-oslogin": "TRUE", "block-project-ssh-keys": "true", "serial-port-enable": "false" });
        expect(vm.conf.can_ip_forward, vm.address).toBe(false);
        expect(vm.conf.metadata_startup_script, vm.address).toBeUndefined();
      }
    });
    it("runs each VM as the dedicated coordinator or worker service account", () => {
      const accounts = Object.fromEntries(all("google_service_account").map((s) => [s.conf.account_id, `\${${s.address}.email}`]));
      for (const vm of instances()) {
        const expected = String(vm.conf.name).includes("coordinator") ? names.serviceAccounts.citusCoordinator : names.serviceAccounts.citusWorker;
        expect(at(vm.conf, "service_account", "email"), vm.address).toBe(accounts[expected.accountId]);
      }
    });
    it("keeps data on a separate CMEK SSD disk with a snapshot schedule", () => {
      const disks = all("google_compute_disk").filter((d) => (d.conf.labels as Record<string, string>)["citus-role"]);
      expect(disks.length).toBe(instances().length);
      for (const disk of disks) {
        expect(disk.conf.type, disk.address).toBe(config.citus.dataDiskType);
        expect(at(disk.conf, "disk_encryption_key", "kms_key_self_link"), disk.address).toMatch(/google_kms_crypto_key\..*\.id/);
      }
      const workerDisks = disks.filter((d) => /worker-\d+-data$/.test(String(d.conf.name)));
      for (const d of workerDisks) expect(d.conf.size).toBe(config.citus.worker.dataDiskGb);
      const attachments = all("google_compute_disk_resource_policy_attachment");
      expect(attachments.length).toBe(disks.length);
      const policy = only(stack(), "google_compute_resource_policy").conf;
      expect(at(policy, "snapshot_schedule_policy", "retention_policy", "max_retention_days")).toBe(config.citus.snapshotRetentionDays);
      for (const vm of instances()) expect(blocks(vm.conf.attached_disk)[0]?.device_name).toBe("pgdata");
    });
    it("spreads nodes across the zones and puts each standby in another zone than its primary", () => {
      const zones = new Set(primaries().map((i) => i.conf.zone));
      expect(zones.size).toBe(Math.min(3, primaries().length));
      for (const node of [names.citus.coordinator, ...names.citus.workers]) {
        if (node.standby) expect(node.standby.zone).not.toBe(node.zone);
      }
    });
    it("generates startup scripts that bash parses, install Citus and Patroni, and hand Patroni its configuration", () => {
      for (const vm of instances()) {
        const text = renderedStartupScript(stack().json, vm.conf);
        execFileSync("bash", ["-n"], { input: text });
        expect(text).toContain(`readonly CITUS_PACKAGE='postgresql-${config.citus.postgresMajor}-citus-${config.citus.citusVersion}'`);
        expect(text).toContain("readonly PATRONI_CONFIG=");
      }
      const body = script(names.citus.coordinator.instance);
      for (const line of ["packagecloud.io/citusdata/community", "pgbackrest patroni python3-idna", "install_patroni_unit", "write_patroni_config"]) expect(body).toContain(line);
    });
    it("gives each group's members Patroni's Citus mode: the same scope, their group, their own name; one member generates the secrets", () => {
      const patroniOf = (instance: string) => {
        const text = script(instance);
        return JSON.parse(/^readonly PATRONI_CONFIG='(.*)'$/m.exec(text)![1]!.replace(/'\\''/g, "'")) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      };
      for (const node of [names.citus.coordinator, ...names.citus.workers]) {
        for (const m of [node.member, ...(node.standby ? [node.standby] : [])]) {
          const c = patroniOf(m.instance);
          expect(c.scope, m.instance).toBe(names.patroni.scope);
          expect(c.name, m.instance).toBe(m.instance);
          expect(c.citus, m.instance).toEqual({ group: node.group, database: names.citusDatabase });
          expect(c.postgresql.connect_address, m.instance).toBe(`${m.host}:${names.postgresPort}`);
          expect(c.bootstrap.dcs.synchronous_mode, m.instance).toBe(config.citus.standby);
          expect(c.watchdog.mode, m.instance).toBe(config.citus.standby ? "required" : "automatic");
          expect(JSON.stringify(c), m.instance).not.toMatch(/"password"/);
          expect(script(m.instance)).toContain(`readonly GENERATES_SECRETS='${m === names.citus.coordinator.member ? 1 : 0}'`);
        }
      }
      // Clients verify the coordinator's load-balanced name: both coordinator members carry it.
      expect(script(names.citus.coordinator.instance)).toContain(`readonly CERT_HOSTS='${names.citus.coordinator.member.host} ${names.citus.coordinator.host}'`);
    });
    it("labels each Citus VM with its group, which Prometheus's Patroni job reads", () => {
      for (const node of [names.citus.coordinator, ...names.citus.workers]) {
        for (const m of [node.member, ...(node.standby ? [node.standby] : [])]) {
          const vm = instances().find((i) => i.conf.name === m.instance)!;
          expect((vm.conf.labels as Record<string, string>)["citus-group"], m.instance).toBe(String(node.group));
        }
      }
    });
    it("keeps each VM's metadata within Compute Engine's limits (256 KB a value, 512 KB in all)", () => {
      // A startup script over the limit fails the apply, not the synth: this keeps the bootstrap's growth visible.
      for (const vm of instances()) {
        const metadata = (Array.isArray(vm.conf.metadata) ? vm.conf.metadata[0] : vm.conf.metadata) as Record<string, string>;
        const values = Object.entries(metadata).map(([key, value]) => [key, key === "startup-script" ? renderedStartupScript(stack().json, vm.conf) : value] as const);
        for (const [key, value] of values) expect(Buffer.byteLength(value), `${vm.address} metadata ${key}`).toBeLessThan(256 * 1024);
        expect(values.reduce((sum, [key, value]) => sum + Buffer.byteLength(key) + Buffer.byteLength(value), 0), vm.address).toBeLessThan(512 * 1024);
      }
    });
    it("boots every VM only after Cloud NAT exists: the bootstrap installs packages from the internet", () => {
      const nat = only(stack(), "google_compute_router_nat").address;
      expect(instances().filter((vm) => !(vm.conf.depends_on as string[]).includes(nat)).map((vm) => vm.address)).toEqual([]);
    });
    it("keeps database passwords out of the synthesized JSON: Secret Manager secrets without versions", () => {
      const ids = all("google_secret_manager_secret").map((s) => s.conf.secret_id);
      for (const id of [names.secrets.dbSuperuser, names.secrets.dbReplication, names.secrets.dbMigrator, names.secrets.dbApp, names.secrets.dbCaKey, names.secrets.hydraDbPassword, names.secrets.hydraSystemSecret, names.secrets.grafanaAdminPassword]) {
        expect(ids).toContain(id);
      }
      const versioned = all("google_secret_manager_secret_version").map((v) => String(v.conf.secret));
      expect(versioned.every((ref) => /Redis_/.test(ref))).toBe(true);
      // Any attribute that carries a credential must be a reference to another resource, never a literal.
      const literals: string[] = [];
      const visit = (value: unknown, path: string): void => {
        if (value && typeof value === "object") {
          for (const [k, v] of Object.entries(value)) visit(v, `${path}.${k}`);
        } else if (/(password|secret_data|auth_string|private_key)$/i.test(path) && typeof value === "string" && !/^\$\{[^}]+\}$/.test(value)) {
          literals.push(path);
        }
      };
      visit(stack().json.resource, "resource");
      expect(literals).toEqual([]);
    });
    if (config.citus.standby) {
      it("puts each group's second member in another zone, with its own DNS name", () => {
        for (const node of [names.citus.coordinator, ...names.citus.workers]) {
          expect(node.standby!.zone).not.toBe(node.member.zone);
          expect(script(node.standby!.instance)).toContain(`readonly NODE_HOST='${node.standby!.host}'`);
        }
      });
    }
  });

  describe("Patroni's DCS: etcd", () => {
    const members = () => all("google_compute_instance").filter((i) => (i.conf.labels as Record<string, string>)["etcd-member"]);
    it("runs three members, one per zone, on the configured machine type", () => {
      expect(members().map((m) => m.conf.name).sort()).toEqual(names.patroni.etcd.map((m) => m.instance).sort());
      expect(new Set(members().map((m) => m.conf.zone))).toEqual(new Set(config.gcp.zones));
      for (const m of members()) expect(m.conf.machine_type).toBe(config.citus.etcd.machineType);
    });
    it("has no public address, is shielded, uses OS Login, and keeps its data on a CMEK disk of its own", () => {
      for (const vm of members()) {
        expect(blocks(vm.conf.network_interface).every((ni) => ni.access_config === undefined), vm.address).toBe(true);
        expect(block(vm.conf.shielded_instance_config), vm.address).toEqual({ enable_secure_boot: true, enable_vtpm: true, enable_integrity_monitoring: true });
        expect(metadataOf(vm.conf), vm.address).toMatchObject({ "enable-oslogin": "TRUE", "block-project-ssh-keys": "true", "serial-port-enable": "false" });
        expect(at(vm.conf, "boot_disk", "kms_key_self_link"), vm.address).toMatch(/google_kms_crypto_key\..*\.id/);
      }
      const disks = all("google_compute_disk").filter((d) => String(d.conf.name).includes("-etcd-"));
      expect(disks).toHaveLength(3);
      for (const d of disks) expect(at(d.conf, "disk_encryption_key", "kms_key_self_link"), d.address).toMatch(/google_kms_crypto_key\..*\.id/);
    });
    it("runs as its own service account: logs and metrics in the project, and only the CA and etcd's two secrets", () => {
      const account = all("google_service_account").find((s) => s.conf.account_id === names.serviceAccounts.etcd.accountId)!;
      const member = `\${${account.address}.member}`;
      expect(all("google_project_iam_member").filter((m) => m.conf.member === member).map((m) => m.conf.role).sort()).toEqual(["roles/logging.logWriter", "roles/monitoring.metricWriter"]);
      const secretAddress = Object.fromEntries(all("google_secret_manager_secret").map((s) => [`\${${s.address}.secret_id}`, s.conf.secret_id]));
      const readable = all("google_secret_manager_secret_iam_member").filter((m) => m.conf.member === member).map((m) => `${m.conf.role} ${secretAddress[String(m.conf.secret_id)]}`);
      const { dbCaKey, dbCaCert, etcdRootPassword, etcdPatroniPassword } = names.secrets;
      expect(readable.sort()).toEqual([dbCaKey, dbCaCert, etcdRootPassword, etcdPatroniPassword].map((s) => `roles/secretmanager.secretAccessor ${s}`).sort());
      for (const vm of members()) expect(at(vm.conf, "service_account", "email")).toBe(`\${${account.address}.email}`);
    });
  });

  describe("the coordinator's load balancer", () => {
    it("is an internal TCP forwarding rule for PostgreSQL, with the address the coordinator's client name points at", () => {
      const rule = only(stack(), "google_compute_forwarding_rule").conf;
      expect(rule).toMatchObject({ load_balancing_scheme: "INTERNAL", ip_protocol: "TCP", ports: [String(names.postgresPort)], allow_global_access: false });
      const record = all("google_dns_record_set").find((r) => r.conf.name === `${names.citus.coordinator.host}.`)!;
      expect(record.conf.rrdatas).toEqual([rule.ip_address]);
    });
    it("health-checks Patroni's /primary over HTTP on the REST port, so only the group's leader receives connections", () => {
      const check = only(stack(), "google_compute_region_health_check").conf;
      expect(block(check.http_health_check)).toMatchObject({ port: PORTS.patroniRestApi, request_path: "/primary" });
      const backend = only(stack(), "google_compute_region_backend_service").conf;
      expect(backend).toMatchObject({ load_balancing_scheme: "INTERNAL", protocol: "TCP" });
      const groups = all("google_compute_instance_group");
      expect(blocks(backend.backend).length).toBe(groups.length);
      // Every coordinator member, and nothing else, behind it.
      const coordinatorVms = all("google_compute_instance").filter((i) => String(i.conf.name).startsWith(names.citus.coordinator.instance));
      expect(groups.flatMap((g) => g.conf.instances as string[]).sort()).toEqual(coordinatorVms.map((vm) => `\${${vm.address}.self_link}`).sort());
    });
  });

  /** The stack's bucket of that name (config/ names each: names.backupsBucket, names.exportsBucket). */
  const bucketNamed = (bucketName: string) => {
    const found = all("google_storage_bucket").filter((b) => b.conf.name === bucketName);
    if (found.length !== 1) throw new Error(`expected one google_storage_bucket named ${bucketName} in ${name}, found ${found.length}`);
    return found[0]!;
  };

  it("has exactly the buckets config/ names: the database backups and the tenant exports", () => {
    expect(all("google_storage_bucket").map((b) => b.conf.name).sort()).toEqual([names.backupsBucket, names.exportsBucket].sort());
  });

  describe("backups bucket", () => {
    const bucket = () => bucketNamed(names.backupsBucket).conf;
    it("is private: uniform access and public access prevention enforced", () => {
      expect(bucket()).toMatchObject({ name: names.backupsBucket, uniform_bucket_level_access: true, public_access_prevention: "enforced" });
    });
    it("is versioned and encrypted with its own KMS key", () => {
      expect(block(bucket().versioning)).toEqual({ enabled: true });
      expect(at(bucket(), "encryption", "default_kms_key_name")).toMatch(/google_kms_crypto_key\.Keys_backups_/);
    });
    it("has lifecycle rules: Nearline, a maximum age beyond pgBackRest retention, noncurrent cleanup, aborted uploads", () => {
      const rules = blocks(bucket().lifecycle_rule).map((r) => ({ action: block(r.action), condition: block(r.condition) }));
      expect(rules).toContainEqual({ action: { type: "SetStorageClass", storage_class: "NEARLINE" }, condition: { age: config.backups.nearlineAfterDays, matches_storage_class: ["STANDARD"] } });
      expect(rules).toContainEqual({ action: { type: "Delete" }, condition: { age: config.backups.maxAgeDays } });
      expect(rules).toContainEqual({ action: { type: "Delete" }, condition: { days_since_noncurrent_time: config.backups.noncurrentVersionDays, with_state: "ARCHIVED" } });
      expect(rules.some((r) => r.action?.type === "AbortIncompleteMultipartUpload")).toBe(true);
      expect(config.backups.maxAgeDays).toBeGreaterThan(config.citus.fullBackupRetention * 7);
    });
  });

  describe("exports bucket", () => {
    const bucket = () => bucketNamed(names.exportsBucket);
    const keyOf = (keyName: string) => all("google_kms_crypto_key").find((k) => k.conf.name === keyName)!;
    const gsaMember = (key: "tenantService" | "tenantWorker") => `\${${all("google_service_account").find((s) => s.conf.account_id === names.serviceAccounts[key].accountId)!.address}.member}`;
    const grantsOnBucket = () =>
      all("google_storage_bucket_iam_member")
        .filter((m) => m.conf.bucket === `\${${bucket().address}.name}`)
        .map((m) => ({ role: m.conf.role, member: m.conf.member }))
        .sort((a, b) => String(a.role).localeCompare(String(b.role)));

    it("is private: uniform access and public access prevention enforced", () => {
      expect(bucket().conf).toMatchObject({ uniform_bucket_level_access: true, public_access_prevention: "enforced", location: config.gcp.region, force_destroy: false });
    });
    it("is encrypted with a key of its own, granted to the Cloud Storage agent before the bucket uses it", () => {
      const key = keyOf(names.kmsKeys.exports);
      expect(at(bucket().conf, "encryption", "default_kms_key_name")).toBe(`\${${key.address}.id}`);
      expect(key.address).not.toBe(keyOf(names.kmsKeys.backups).address);
      const grant = all("google_kms_crypto_key_iam_member").find((g) => g.conf.crypto_key_id === `\${${key.address}.id}`)!;
      expect(grant.conf).toMatchObject({ role: "roles/cloudkms.cryptoKeyEncrypterDecrypter", member: expect.stringMatching(/@gs-project-accounts\.iam\.gserviceaccount\.com$/) });
      expect(bucket().conf.depends_on).toContain(grant.address);
    });
    it("deletes objects exports.retentionDays after they are written and aborts stale uploads", () => {
      const rules = blocks(bucket().conf.lifecycle_rule).map((r) => ({ action: block(r.action), condition: block(r.condition) }));
      expect(rules).toEqual([
        { action: { type: "Delete" }, condition: { age: config.exports.retentionDays } },
        { action: { type: "AbortIncompleteMultipartUpload" }, condition: { age: 1 } },
      ]);
    });
    it("keeps no copy after a delete: no versioning and no soft delete, so an erased tenant's exports are gone (skip justified)", () => {
      expect(block(bucket().conf.versioning)).toEqual({ enabled: false });
      expect(block(bucket().conf.soft_delete_policy)).toEqual({ retention_duration_seconds: 0 });
      const skips = JSON.stringify(bucket().conf["//"] ?? {});
      expect(skips).toContain("CKV_GCP_78");
      expect(skips).toContain("GCP-0078");
    });
    it("lets the worker write and delete objects and the service read them and sign as itself, on this bucket only", () => {
      expect(grantsOnBucket()).toEqual([
        { role: "roles/storage.objectUser", member: gsaMember("tenantWorker") },
        { role: "roles/storage.objectViewer", member: gsaMember("tenantService") },
      ]);
      // signBlob: the service's account on its own account, and nobody else's.
      const service = all("google_service_account").find((s) => s.conf.account_id === names.serviceAccounts.tenantService.accountId)!;
      const creators = all("google_service_account_iam_member").filter((b) => b.conf.role === "roles/iam.serviceAccountTokenCreator");
      expect(creators.map((b) => ({ on: b.conf.service_account_id, member: b.conf.member }))).toEqual([{ on: `\${${service.address}.name}`, member: gsaMember("tenantService") }]);
      // No project-wide storage role for either.
      for (const key of ["tenantService", "tenantWorker"] as const) {
        expect(all("google_project_iam_member").filter((m) => m.conf.member === gsaMember(key) && String(m.conf.role).startsWith("roles/storage"))).toEqual([]);
      }
    });
  });

  describe("IAM", () => {
    const gsa = (accountId: string) => all("google_service_account").find((s) => s.conf.account_id === accountId)!;
    it.each([
      ["tenant service", "tenantService"],
      ["tenant worker", "tenantWorker"],
    ] as const)("binds the %s Kubernetes service account to its own Google service account", (_label, key) => {
      const account = gsa(names.serviceAccounts[key].accountId);
      const binding = all("google_service_account_iam_member").find((b) => b.conf.service_account_id === `\${${account.address}.name}` && b.conf.role === "roles/iam.workloadIdentityUser")!;
      const k8s = config.kubernetes[key];
      expect(binding.conf).toMatchObject({ role: "roles/iam.workloadIdentityUser", member: `serviceAccount:${config.gcp.projectId}.svc.id.goog[${k8s.namespace}/${k8s.serviceAccount}]` });
    });
    it("lets the tenant workloads read only their own secrets, and grants them no broad project role", () => {
      const secretAddress = Object.fromEntries(all("google_secret_manager_secret").map((s) => [`\${${s.address}.secret_id}`, s.conf.secret_id]));
      for (const key of ["tenantService", "tenantWorker"] as const) {
        const member = `\${${gsa(names.serviceAccounts[key].accountId).address}.member}`;
        const readable = all("google_secret_manager_secret_iam_member").filter((m) => m.conf.member === member).map((m) => secretAddress[String(m.conf.secret_id)]);
        expect(readable.sort()).toEqual([names.secrets.dbApp, names.secrets.dbCaCert, names.secrets.redisAuth, names.secrets.redisCa].sort());
        const roles = all("google_project_iam_member").filter((m) => m.conf.member === member).map((m) => m.conf.role);
        expect(roles).toEqual(["roles/cloudtrace.agent"]);
      }
    });
    it("lets the OpenTelemetry Collector's account write spans to Cloud Trace and nothing else, where the environment traces there", () => {
      const account = all("google_service_account").find((s) => s.conf.account_id === names.serviceAccounts.otelCollector.accountId);
      const traceApi = all("google_project_service").some((s) => s.conf.service === "cloudtrace.googleapis.com");
      if (config.monitoring.traceBackend !== "cloudTrace") {
        expect([account, traceApi]).toEqual([undefined, false]);
        return;
      }
      expect(traceApi).toBe(true);
      const binding = all("google_service_account_iam_member").find((b) => b.conf.service_account_id === `\${${account!.address}.name}`)!;
      const k8s = config.kubernetes.otelCollector;
      expect(binding.conf).toMatchObject({ role: "roles/iam.workloadIdentityUser", member: `serviceAccount:${config.gcp.projectId}.svc.id.goog[${k8s.namespace}/${k8s.serviceAccount}]` });
      const member = `\${${account!.address}.member}`;
      expect(all("google_project_iam_member").filter((m) => m.conf.member === member).map((m) => m.conf.role)).toEqual(["roles/cloudtrace.agent"]);
      expect(all("google_secret_manager_secret_iam_member").filter((m) => m.conf.member === member)).toEqual([]);
    });
    it("lets Citus workers read only the secrets their bootstrap reads, and add versions to none", () => {
      const secretAddress = Object.fromEntries(all("google_secret_manager_secret").map((s) => [`\${${s.address}.secret_id}`, s.conf.secret_id]));
      const grants = (accountId: string, role: string) => {
        const member = `\${${gsa(accountId).address}.member}`;
        return all("google_secret_manager_secret_iam_member")
          .filter((m) => m.conf.member === member && m.conf.role === role)
          .map((m) => secretAddress[String(m.conf.secret_id)])
          .sort();
      };
      const worker = names.serviceAccounts.citusWorker.accountId;
      const { dbSuperuser, dbReplication, dbMigrator, dbApp, dbCaKey, dbCaCert, hydraDbPassword, hydraSystemSecret, grafanaAdminPassword, etcdRootPassword, etcdPatroniPassword, patroniRestApiPassword } = names.secrets;
      expect(grants(worker, "roles/secretmanager.secretAccessor")).toEqual([dbSuperuser, dbReplication, dbMigrator, dbApp, dbCaKey, dbCaCert, etcdPatroniPassword, patroniRestApiPassword].sort());
      expect(grants(worker, "roles/secretmanager.secretVersionAdder")).toEqual([]);
      // The coordinator generates every Citus-made secret, Hydra's and Grafana's included.
      const coordinator = names.serviceAccounts.citusCoordinator.accountId;
      const generated = [dbSuperuser, dbReplication, dbMigrator, dbApp, dbCaKey, dbCaCert, hydraDbPassword, hydraSystemSecret, grafanaAdminPassword, etcdRootPassword, etcdPatroniPassword, patroniRestApiPassword].sort();
      expect(grants(coordinator, "roles/secretmanager.secretAccessor")).toEqual(generated);
      expect(grants(coordinator, "roles/secretmanager.secretVersionAdder")).toEqual(generated);
    });
    it("grants no basic roles and creates no service account keys", () => {
      for (const m of all("google_project_iam_member")) expect(m.conf.role, m.address).not.toMatch(/^roles\/(owner|editor|viewer)$/);
      expect(all("google_service_account_key")).toEqual([]);
    });
  });

  it("exports the typed outputs `pnpm outputs` reads, with the config's names where the manifests carry them", () => {
    const output = stack().json.output ?? {};
    // The Citus-alongside outputs exist only with Citus beside Cloud SQL (test/citus-alongside.test.ts).
    const alongsideOnly = ["citus_alongside_host", "citus_alongside_secret_ids"];
    expect(Object.keys(output).sort()).toEqual(Object.keys(StackOutputsSchema.shape).filter((k) => !alongsideOnly.includes(k)).sort());
    // Known only once deployed (Terraform references): `pnpm outputs` holds them to the config then.
    const atDeploy = ["cluster_name", "redis_port", "tenant_service_account", "tenant_worker_account"];
    for (const [key, { expected }] of Object.entries(KUBERNETES_EXPECTS)) {
      if (atDeploy.includes(key)) expect(output[key]!.value, key).toMatch(/^\$\{[a-z_]+\.[A-Za-z0-9_]+\.[a-z_]+\}$/);
      else if (alongsideOnly.includes(key)) expect(expected(config, names), key).toBeUndefined();
      else expect(output[key]!.value, key).toEqual(expected(config, names));
    }
  });
});

describe("sizing flows from the tenant target into the stacks", () => {
  it("adds Citus workers when an operator raises the production worker count", () => {
    const configs = hermeticConfigs({ PLATFORM_PRODUCTION_CITUS_WORKERS: "24" });
    const production = synthesizeAll(configs.filter((c) => c.name === "production"))[0]!;
    const primaries = resourcesOf(production.json, "google_compute_instance").filter((i) => /worker-\d+$/.test(String(i.conf.name)));
    expect(primaries.length).toBe(24);
  });
  it("sizes a 1M-tenant production at 20 or more workers and dev at 3", () => {
    expect(configs.find((c) => c.name === "production")!.citus.workers).toBeGreaterThanOrEqual(20);
    expect(configs.find((c) => c.name === "dev")!.citus.workers).toBe(3);
  });
});

describe("pnpm synth, as operators run it", () => {
  const infraDir = join(dirname(fileURLToPath(import.meta.url)), "..");
  const tsx = join(infraDir, "node_modules", ".bin", "tsx");
  // No operator override file or PLATFORM_* variable from the shell, as hermeticConfigs loads them.
  const hermeticEnv = (extra: Record<string, string>) => {
    const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PLATFORM_")));
    const dir = mkdtempSync(join(tmpdir(), "platform-config-"));
    writeFileSync(join(dir, "empty.json"), "{}");
    return { dir, env: { ...env, PLATFORM_CONFIG: join(dir, "empty.json"), ...extra } };
  };

  it("writes through tsx the same Terraform JSON as the synthesis the tests read", { timeout: 120_000 }, () => {
    const outdir = mkdtempSync(join(tmpdir(), "platform-synth-tsx-"));
    const { dir, env } = hermeticEnv({ CDKTF_OUTDIR: outdir });
    try {
      const out = execFileSync(tsx, [join(infraDir, "src", "main.ts")], { cwd: infraDir, env, encoding: "utf8" });
      for (const stack of stacks) {
        expect(out).toContain(`synthesized ${stack.name}:`);
        const written = JSON.parse(readFileSync(join(outdir, "stacks", stack.name, "cdk.tf.json"), "utf8")) as Record<string, unknown>;
        expect(written, stack.name).toEqual(stack.json);
      }
    } finally {
      rmSync(outdir, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("gives tsx's require hook back after loading the provider bindings past it", () => {
    // src/google.ts loads the bindings with Node's own CommonJS loader; everything after must go through tsx again.
    const probe = join(mkdtempSync(join(tmpdir(), "platform-loader-")), "probe.mts");
    writeFileSync(
      probe,
      [
        `import Module from "node:module";`,
        `const loaders = (Module as unknown as { _extensions: Record<string, unknown> })._extensions;`,
        `const before = loaders[".js"];`,
        `await import(${JSON.stringify(join(infraDir, "src", "google.ts"))});`,
        `process.stdout.write(JSON.stringify({ restored: loaders[".js"] === before, sourceMaps: process.sourceMapsEnabled }));`,
      ].join("\n"),
    );
    try {
      const result = JSON.parse(execFileSync(tsx, [probe], { cwd: infraDir, encoding: "utf8" })) as { restored: boolean; sourceMaps: boolean };
      // tsx turns source maps on for TypeScript stack traces; the bindings load with them off, then they are back.
      expect(result).toEqual({ restored: true, sourceMaps: true });
    } finally {
      rmSync(dirname(probe), { recursive: true, force: true });
    }
  });
});

describe("synthesis needs nothing but Node.js", () => {
  it("runs no construct validation that needs the terraform CLI (pnpm synth works on a machine without it)", () => {
    // cdktf's DataResource, import blocks and moves validate by running `terraform version`; with PATH empty such a
    // validation reports that it could not run, which is what `pnpm synth` would hit on a fresh machine.
    const outdir = mkdtempSync(join(tmpdir(), "platform-validate-"));
    const path = process.env.PATH;
    try {
      const app = buildApp(configs, outdir);
      process.env.PATH = outdir;
      const errors = app.node.findAll().flatMap((c) => c.node.validate().map((e) => `${c.node.path}: ${e}`));
      expect(errors).toEqual([]);
    } finally {
      process.env.PATH = path;
      rmSync(outdir, { recursive: true, force: true });
    }
  });
});
