import { beforeAll, describe, expect, it } from "vitest";
import type { SynthesizedStack, TerraformJson } from "../src/app.js";
import { POLICY_RULES, checkPolicies, formatViolations, resourcesOf } from "../src/policy/index.js";
import { synthesizeAll } from "./helpers.js";

let stacks: SynthesizedStack[];
beforeAll(() => {
  stacks = synthesizeAll();
});

const REQUIRED = [
  "CKV_GCP_1", "CKV_GCP_7", "CKV_GCP_8", "CKV_GCP_9", "CKV_GCP_10", "CKV_GCP_12", "CKV_GCP_13", "CKV_GCP_18", "CKV_GCP_20",
  "CKV_GCP_21", "CKV_GCP_23", "CKV_GCP_25", "PLATFORM_GKE_PRIVATE_NODES", "CKV_GCP_61", "CKV_GCP_66", "CKV_GCP_68", "CKV_GCP_69",
  "CKV_GCP_70", "CKV_GCP_71", "CKV_GCP_72", "CKV_GCP_123", "CKV2_GCP_1", "CKV_GCP_30", "CKV_GCP_31", "CKV_GCP_32", "CKV_GCP_33",
  "CKV_GCP_34", "CKV_GCP_35", "CKV_GCP_36", "CKV_GCP_38", "CKV_GCP_39", "CKV_GCP_40", "CKV_GCP_2", "CKV_GCP_3", "CKV_GCP_26",
  "CKV_GCP_74", "CKV_GCP_95", "CKV_GCP_97", "CKV_GCP_29", "CKV_GCP_78", "CKV_GCP_114", "PLATFORM_NO_SERVICE_ACCOUNT_KEYS",
  "PLATFORM_NO_PUBLIC_DATABASE_PORTS", "PLATFORM_GKE_SECRETS_ENCRYPTION",
];

it("covers every rule the issue asks for", () => {
  expect(REQUIRED.filter((id) => !POLICY_RULES.some((r) => r.id === id))).toEqual([]);
});

describe.each(["dev", "staging", "production"])("%s passes every policy", (env) => {
  it.each(POLICY_RULES.map((r) => [`${r.id}: ${r.title}`, r.id]))("%s", (_label, id) => {
    const stack = stacks.find((s) => s.name === env)!;
    const violations = checkPolicies(stack, POLICY_RULES.filter((r) => r.id === id));
    expect(violations, formatViolations(violations)).toEqual([]);
  });
});

/** A deep copy of one stack with one resource's configuration changed. */
function mutate(env: string, type: string, change: (conf: Record<string, unknown>) => void, pick = 0): { stack: SynthesizedStack; address: string } {
  const original = stacks.find((s) => s.name === env)!;
  const json = structuredClone(original.json) as TerraformJson;
  const resource = resourcesOf(json, type)[pick];
  if (!resource) throw new Error(`${env} has no ${type}`);
  change(resource.conf);
  return { stack: { name: env, json }, address: resource.address };
}

type Conf = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const CLUSTER = "google_container_cluster";
const POOL = "google_container_node_pool";
const VM = "google_compute_instance";
const FIREWALL = "google_compute_firewall";

/** Each rule, shown to fail (with the resource address) on a stack broken in exactly the way it guards against. */
const BREAKS: [string, string, (c: Conf) => void, string?][] = [
  ["CKV_GCP_1", CLUSTER, (c) => { c.logging_service = "none"; }],
  ["CKV_GCP_7", CLUSTER, (c) => { c.enable_legacy_abac = true; }],
  ["CKV_GCP_8", CLUSTER, (c) => { c.monitoring_service = "none"; }],
  ["CKV_GCP_9", POOL, (c) => { c.management.auto_repair = false; }],
  ["CKV_GCP_10", POOL, (c) => { c.management.auto_upgrade = false; }],
  ["CKV_GCP_12", CLUSTER, (c) => { c.datapath_provider = "LEGACY_DATAPATH"; }],
  ["CKV_GCP_13", CLUSTER, (c) => { c.master_auth.client_certificate_config.issue_client_certificate = true; }],
  ["CKV_GCP_18", CLUSTER, (c) => { c.master_authorized_networks_config.cidr_blocks = [{ cidr_block: "0.0.0.0/0", display_name: "all" }]; }],
  ["CKV_GCP_20", CLUSTER, (c) => { delete c.master_authorized_networks_config; }],
  ["CKV_GCP_21", CLUSTER, (c) => { c.resource_labels = {}; }],
  ["CKV_GCP_23", CLUSTER, (c) => { delete c.ip_allocation_policy; }],
  ["CKV_GCP_25", CLUSTER, (c) => { delete c.private_cluster_config; }],
  ["PLATFORM_GKE_PRIVATE_NODES", CLUSTER, (c) => { c.private_cluster_config.enable_private_nodes = false; }],
  ["CKV_GCP_61", CLUSTER, (c) => { c.enable_intranode_visibility = false; }],
  ["CKV_GCP_66", CLUSTER, (c) => { delete c.binary_authorization; }, "production"],
  ["CKV_GCP_68", POOL, (c) => { c.node_config.shielded_instance_config.enable_secure_boot = false; }],
  ["CKV_GCP_69", POOL, (c) => { c.node_config.workload_metadata_config.mode = "GCE_METADATA"; }],
  ["CKV_GCP_70", CLUSTER, (c) => { delete c.release_channel; }],
  ["CKV_GCP_71", CLUSTER, (c) => { c.enable_shielded_nodes = false; }],
  ["CKV_GCP_72", CLUSTER, (c) => { c.node_config.shielded_instance_config.enable_integrity_monitoring = false; }],
  ["CKV_GCP_123", CLUSTER, (c) => { c.remove_default_node_pool = false; }],
  ["CKV2_GCP_1", POOL, (c) => { c.node_config.service_account = "123-compute@developer.gserviceaccount.com"; }],
  ["PLATFORM_GKE_SECRETS_ENCRYPTION", CLUSTER, (c) => { c.database_encryption.state = "DECRYPTED"; }],
  ["CKV_GCP_30", VM, (c) => { c.service_account.email = "123-compute@developer.gserviceaccount.com"; }],
  ["CKV_GCP_31", VM, (c) => { c.service_account.email = "123-compute@developer.gserviceaccount.com"; }],
  ["CKV_GCP_32", VM, (c) => { c.metadata["block-project-ssh-keys"] = "false"; }],
  ["CKV_GCP_33", "google_compute_project_metadata_item", (c) => { c.value = "FALSE"; }],
  ["CKV_GCP_34", VM, (c) => { delete c.metadata["enable-oslogin"]; }],
  ["CKV_GCP_35", VM, (c) => { c.metadata["serial-port-enable"] = "true"; }],
  ["CKV_GCP_36", VM, (c) => { c.can_ip_forward = true; }],
  ["CKV_GCP_38", VM, (c) => { delete c.boot_disk.kms_key_self_link; }],
  ["CKV_GCP_39", VM, (c) => { c.shielded_instance_config.enable_vtpm = false; }],
  ["CKV_GCP_40", VM, (c) => { c.network_interface[0].access_config = [{}]; }],
  ["CKV_GCP_2", FIREWALL, (c) => { c.source_ranges = ["0.0.0.0/0"]; c.allow = [{ protocol: "tcp", ports: ["20-30"] }]; }],
  ["CKV_GCP_3", FIREWALL, (c) => { c.source_ranges = ["0.0.0.0/0"]; c.allow = [{ protocol: "all" }]; }],
  ["PLATFORM_NO_PUBLIC_DATABASE_PORTS", FIREWALL, (c) => { c.source_ranges = ["0.0.0.0/0"]; c.allow = [{ protocol: "tcp", ports: ["6379"] }]; }],
  ["PLATFORM_FIREWALL_LOGGING", FIREWALL, (c) => { delete c.log_config; }],
  ["CKV_GCP_26", "google_compute_subnetwork", (c) => { delete c.log_config; }],
  ["CKV_GCP_74", "google_compute_subnetwork", (c) => { c.private_ip_google_access = false; }],
  ["CKV_GCP_95", "google_redis_instance", (c) => { c.auth_enabled = false; }],
  ["CKV_GCP_97", "google_redis_instance", (c) => { c.transit_encryption_mode = "DISABLED"; }],
  ["CKV_GCP_29", "google_storage_bucket", (c) => { c.uniform_bucket_level_access = false; }],
  ["CKV_GCP_78", "google_storage_bucket", (c) => { c.versioning.enabled = false; }],
  ["CKV_GCP_114", "google_storage_bucket", (c) => { c.public_access_prevention = "inherited"; }],
  ["PLATFORM_CMEK_DISKS", "google_compute_disk", (c) => { delete c.disk_encryption_key; }],
  ["PLATFORM_CMEK_REDIS", "google_redis_instance", (c) => { delete c.customer_managed_key; }],
  ["PLATFORM_BINAUTHZ_DENY_BY_DEFAULT", "google_binary_authorization_policy", (c) => { c.default_admission_rule.evaluation_mode = "ALWAYS_ALLOW"; }, "production"],
  ["PLATFORM_BINAUTHZ_DENY_BY_DEFAULT", "google_binary_authorization_policy", (c) => { c.admission_whitelist_patterns.push({ name_pattern: "docker.io/**" }); }, "production"],
];

it("has a failing example for every rule", () => {
  const covered = new Set([...BREAKS.map(([id]) => id), "PLATFORM_NO_SERVICE_ACCOUNT_KEYS", "PLATFORM_REFERENCES_IN_STACK", "PLATFORM_TEMPLATE_LITERALS"]);
  expect(POLICY_RULES.map((r) => r.id).filter((id) => !covered.has(id))).toEqual([]);
});

describe("each rule fails, naming the resource address, when its invariant is broken", () => {
  it.each(BREAKS)("%s on %s", (id, type, change, env = "dev") => {
    const { stack, address } = mutate(env, type, change);
    const violations = checkPolicies(stack).filter((v) => v.rule === id);
    expect(violations.map((v) => v.address)).toContain(address);
    expect(formatViolations(violations)).toContain(address);
  });

  it("PLATFORM_BINAUTHZ_DENY_BY_DEFAULT on an enforcing cluster whose stack defines no policy", () => {
    const production = stacks.find((s) => s.name === "production")!;
    const json = structuredClone(production.json) as { resource: Record<string, Record<string, Record<string, unknown>>> };
    delete json.resource.google_binary_authorization_policy;
    const violations = checkPolicies({ name: "production", json }).filter((v) => v.rule === "PLATFORM_BINAUTHZ_DENY_BY_DEFAULT");
    expect(violations.map((v) => v.address)).toEqual(Object.keys(json.resource.google_container_cluster!).map((n) => `google_container_cluster.${n}`));
  });

  it("PLATFORM_NO_SERVICE_ACCOUNT_KEYS on google_service_account_key", () => {
    const dev = stacks.find((s) => s.name === "dev")!;
    const json = structuredClone(dev.json) as { resource: Record<string, Record<string, Record<string, unknown>>> };
    json.resource.google_service_account_key = { leaked: { service_account_id: "x" } };
    const violations = checkPolicies({ name: "dev", json }).filter((v) => v.rule === "PLATFORM_NO_SERVICE_ACCOUNT_KEYS");
    expect(violations.map((v) => v.address)).toEqual(["google_service_account_key.leaked"]);
  });

  it("PLATFORM_REFERENCES_IN_STACK on a reference to another stack's resource, and on remote state", () => {
    const { stack, address } = mutate("dev", FIREWALL, (c) => { c.network = "${google_compute_network.InStagingOnly.id}"; });
    (stack.json as { data?: Record<string, Record<string, unknown>> }).data!.terraform_remote_state = { staging: { backend: "gcs" } };
    const violations = checkPolicies(stack).filter((v) => v.rule === "PLATFORM_REFERENCES_IN_STACK");
    expect(violations.map((v) => [v.address, v.reason])).toEqual([
      ["data.terraform_remote_state.staging", "reads another stack's state"],
      [address, "refers to google_compute_network.InStagingOnly, which this stack does not declare"],
    ]);
  });

  it("PLATFORM_REFERENCES_IN_STACK reads every reference of the real stacks, and ignores the scripts' literal $${...}", () => {
    const production = stacks.find((s) => s.name === "production")!;
    const text = JSON.stringify(production.json);
    expect(text).toContain("$${"); // the embedded bootstrap scripts' shell expansions
    const references = [...text.matchAll(/(?<!\$)\$\{(data\.)?google_[a-z_]+\.[A-Za-z0-9_-]+/g)].length;
    expect(references).toBeGreaterThan(100);
    expect(checkPolicies(production).filter((v) => v.rule === "PLATFORM_REFERENCES_IN_STACK")).toEqual([]);
  });

  it("PLATFORM_TEMPLATE_LITERALS on a shell ${VAR} or a %{ left unescaped in a startup script", () => {
    const metadata = (c: Record<string, unknown>) => (Array.isArray(c.metadata) ? c.metadata[0] : c.metadata) as Record<string, string>;
    const shell = mutate("dev", "google_compute_instance", (c) => { metadata(c)["startup-script"] += '\necho "${PSQL[@]}"'; });
    const directive = mutate("dev", "google_compute_instance", (c) => { metadata(c)["startup-script"] += "\nprintf '%{x}'"; });
    for (const { stack, address } of [shell, directive]) {
      const violations = checkPolicies(stack).filter((v) => v.rule === "PLATFORM_TEMPLATE_LITERALS");
      expect(violations.map((v) => v.address)).toEqual([address]);
      expect(violations[0]!.reason).toMatch(/terraformLiteral/);
    }
  });

  it("CKV_GCP_33 also fails when no project-level OS Login setting exists at all", () => {
    const dev = stacks.find((s) => s.name === "dev")!;
    const json = structuredClone(dev.json) as { resource: Record<string, Record<string, Record<string, unknown>>> };
    delete json.resource.google_compute_project_metadata_item;
    expect(checkPolicies({ name: "dev", json }).filter((v) => v.rule === "CKV_GCP_33").length).toBe(1);
  });

  it("CKV_GCP_66 does not apply outside production", () => {
    const { stack } = mutate("dev", CLUSTER, (c) => { delete c.binary_authorization; });
    expect(checkPolicies(stack).filter((v) => v.rule === "CKV_GCP_66")).toEqual([]);
  });
});
