import { beforeAll, describe, expect, it } from "vitest";
import type { SynthesizedStack, TerraformJson } from "../src/app.js";
import { POLICY_RULES, checkPolicies, formatViolations, resourcesOf } from "../src/policy/index.js";
import { synthesizedAlongsideStack, synthesizedPostgresStack, synthesizedStacks } from "./synthesized.js";

/** production on the postgres engine (Cloud SQL), which test/global-setup.ts synthesizes beside the three. */
const POSTGRES = "production-postgres";
const ALONGSIDE = "production-citus-alongside";
let stacks: SynthesizedStack[];
beforeAll(() => {
  stacks = [...synthesizedStacks(), { ...synthesizedPostgresStack(), name: POSTGRES }, { ...synthesizedAlongsideStack(), name: ALONGSIDE }];
});

/** The platform's own rules; the rules Checkov checks run in checkov.test.ts. */
const REQUIRED = [
  "PLATFORM_GKE_PRIVATE_NODES", "PLATFORM_GKE_NODE_SERVICE_ACCOUNT", "PLATFORM_PROJECT_OS_LOGIN", "PLATFORM_NO_PUBLIC_DATABASE_PORTS",
  "PLATFORM_FIREWALL_LOGGING", "PLATFORM_NO_SERVICE_ACCOUNT_KEYS", "PLATFORM_REFERENCES_IN_STACK", "PLATFORM_TEMPLATE_LITERALS", "PLATFORM_CMEK",
  "PLATFORM_BINAUTHZ_DENY_BY_DEFAULT", "PLATFORM_CLOUD_SQL_PRIVATE_TLS", "PLATFORM_CLOUD_SQL_LOGS", "PLATFORM_CLOUD_SQL_PITR",
];

it("covers every platform rule, and no rule that Checkov checks", () => {
  expect(POLICY_RULES.map((r) => r.id).sort()).toEqual([...REQUIRED].sort());
  expect(POLICY_RULES.filter((r) => /^CKV/.test(r.id))).toEqual([]);
});

describe.each(["dev", "staging", "production", POSTGRES, ALONGSIDE])("%s passes every policy", (env) => {
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
const SQL = "google_sql_database_instance";

/** Each rule, shown to fail (with the resource address) on a stack broken in exactly the way it guards against. */
const BREAKS: [string, string, (c: Conf) => void, string?][] = [
  ["PLATFORM_GKE_PRIVATE_NODES", CLUSTER, (c) => { c.private_cluster_config.enable_private_nodes = false; }],
  ["PLATFORM_GKE_NODE_SERVICE_ACCOUNT", POOL, (c) => { c.node_config.service_account = "123-compute@developer.gserviceaccount.com"; }],
  ["PLATFORM_GKE_NODE_SERVICE_ACCOUNT", CLUSTER, (c) => { delete c.node_config.service_account; }],
  ["PLATFORM_PROJECT_OS_LOGIN", "google_compute_project_metadata_item", (c) => { c.value = "FALSE"; }],
  ["PLATFORM_NO_PUBLIC_DATABASE_PORTS", FIREWALL, (c) => { c.source_ranges = ["0.0.0.0/0"]; c.allow = [{ protocol: "tcp", ports: ["6379"] }]; }],
  ["PLATFORM_NO_PUBLIC_DATABASE_PORTS", FIREWALL, (c) => { c.source_ranges = ["::/0"]; c.allow = [{ protocol: "tcp", ports: ["5000-6000"] }]; }],
  ["PLATFORM_FIREWALL_LOGGING", FIREWALL, (c) => { delete c.log_config; }],
  ["PLATFORM_CMEK", "google_compute_disk", (c) => { delete c.disk_encryption_key; }],
  ["PLATFORM_CMEK", "google_compute_disk", (c) => { c.disk_encryption_key = { raw_key: "c2VjcmV0LWtleS1pbi10aGUtY29uZmln" }; }],
  ["PLATFORM_CMEK", VM, (c) => { delete c.boot_disk.kms_key_self_link; }],
  ["PLATFORM_CMEK", VM, (c) => { c.boot_disk.kms_key_self_link = "projects/other/locations/global/keyRings/r/cryptoKeys/k"; }],
  ["PLATFORM_CMEK", CLUSTER, (c) => { c.database_encryption.state = "DECRYPTED"; }],
  ["PLATFORM_CMEK", CLUSTER, (c) => { delete c.node_config.boot_disk_kms_key; }],
  ["PLATFORM_CMEK", POOL, (c) => { delete c.node_config.boot_disk_kms_key; }],
  ["PLATFORM_CMEK", "google_redis_instance", (c) => { delete c.customer_managed_key; }],
  ["PLATFORM_CMEK", "google_storage_bucket", (c) => { delete c.encryption; }],
  ["PLATFORM_BINAUTHZ_DENY_BY_DEFAULT", "google_binary_authorization_policy", (c) => { c.default_admission_rule.evaluation_mode = "ALWAYS_ALLOW"; }, "production"],
  ["PLATFORM_BINAUTHZ_DENY_BY_DEFAULT", "google_binary_authorization_policy", (c) => { c.admission_whitelist_patterns.push({ name_pattern: "docker.io/**" }); }, "production"],
  ["PLATFORM_CMEK", SQL, (c) => { delete c.encryption_key_name; }, POSTGRES],
  ["PLATFORM_CLOUD_SQL_PRIVATE_TLS", SQL, (c) => { c.settings.ip_configuration.ssl_mode = "ALLOW_UNENCRYPTED_AND_ENCRYPTED"; }, POSTGRES],
  ["PLATFORM_CLOUD_SQL_PRIVATE_TLS", SQL, (c) => { delete c.settings.ip_configuration.private_network; }, POSTGRES],
  ["PLATFORM_CLOUD_SQL_LOGS", SQL, (c) => { c.settings.database_flags = c.settings.database_flags.filter((f: Conf) => f.name !== "log_lock_waits"); }, POSTGRES],
  ["PLATFORM_CLOUD_SQL_LOGS", SQL, (c) => { c.settings.database_flags.find((f: Conf) => f.name === "log_parameter_max_length").value = "-1"; }, POSTGRES],
  ["PLATFORM_CLOUD_SQL_PITR", SQL, (c) => { c.settings.backup_configuration.point_in_time_recovery_enabled = false; }, POSTGRES],
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

  it("PLATFORM_PROJECT_OS_LOGIN also fails when no project-level OS Login setting exists at all", () => {
    const dev = stacks.find((s) => s.name === "dev")!;
    const json = structuredClone(dev.json) as { resource: Record<string, Record<string, Record<string, unknown>>> };
    delete json.resource.google_compute_project_metadata_item;
    expect(checkPolicies({ name: "dev", json }).filter((v) => v.rule === "PLATFORM_PROJECT_OS_LOGIN").length).toBe(1);
  });
});
